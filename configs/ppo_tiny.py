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
  c.ppo.actor_lr = 1e-4
  c.ppo.critic_lr = 1e-4
  c.optim.warmup_steps = 2
  c.optim.weight_decay = 0.0
  c.optim.b2 = 0.95
  c.train.steps = 30
  c.train.log_every = 1
  c.train.eval_every = 30
  c.train.checkpoint_every = 10
  return c
