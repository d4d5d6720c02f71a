"""Tiny PPO on CPU: actor and reference from the tiny SFT model, critic and reward from the tiny
reward model, on the shipped prompts.

  python -m xy_jax.train --config configs/ppo_tiny.py --workdir runs/ppo_tiny \
      --config.ppo.actor_checkpoint=runs/sft_tiny/checkpoints \
      --config.ppo.reward_checkpoint=runs/reward_tiny/checkpoints
"""

from xy_jax.config import base_config, model_config


def get_config(arg=None):
  del arg
  c = base_config()
  c.stage = "ppo"
  c.model = model_config("tiny")  # numerics only: shapes come from the checkpoints
  c.data.sources = {"prompts": {"paths": ("data/rl/prompts.jsonl",), "weight": 1.0, "format": "prompt"}}
  c.data.buckets = (64,)
  c.data.tokens_per_step = 64 * 16
  c.ppo.prompts_per_step = 16
  c.ppo.max_prompt_len = 32
  c.ppo.max_answer_len = 32
  c.ppo.frozen_dtype = "float32"
  # Tuned on the demo's models (docs/performance.md lists the settings tried). The tiny reward
  # model (held-out accuracy about 0.85) is easy to exploit: with actor lr >= 2e-4 or a KL
  # coefficient <= 0.05 the actor learns to answer every question with some other well-scored
  # sentence within 40 iterations. 1e-4 with kl_ctl 0.1 and a penalty for answers that never end
  # raise the RM reward (about 0.1 -> 2.4) at KL < 0.1 while the SFT answers survive.
  c.ppo.kl_ctl = 0.1
  c.ppo.no_eos_penalty = 1.0
  c.ppo.actor_lr = 1e-4
  c.ppo.critic_lr = 5e-4
  c.optim.schedule = "constant"
  c.optim.warmup_steps = 2
  c.optim.weight_decay = 0.0
  c.optim.b2 = 0.95
  c.train.steps = 40
  c.train.log_every = 1
  c.train.eval_every = 40
  c.train.checkpoint_every = 10
  return c
