"""XuanYuan2-70B RLHF: 70B actor and reference (the SFT model), 13B critic and reward model.

  python -m xy_jax.train --config configs/ppo_xuanyuan2_70b.py --workdir /mnt/gcs/runs/ppo70b \
      --config.ppo.actor_checkpoint=/mnt/gcs/runs/sft_xy2_70b/checkpoints \
      --config.ppo.reward_checkpoint=/mnt/gcs/runs/rm_xy13b/checkpoints

Defaults are DeepSpeed-Chat's (../shared/rlhf.md); the frozen reference and reward models are held
in bfloat16. Shapes come from the checkpoints; `model` here sets numerics only.
"""

from xy_jax.config import base_config, model_config


def get_config(arg=None):
  del arg
  c = base_config()
  c.stage = "ppo"
  c.model = model_config("xuanyuan2_70b", dtype="bfloat16", remat_policy="full")
  c.mesh.rules = {"vocab": (), "act_vocab": ()}  # 39438 does not divide the tensor axis
  c.mesh.data, c.mesh.fsdp, c.mesh.tensor = 1, -1, 8
  c.data.tokenizer = "runs/tokenizers/xuanyuan/tokenizer.model"
  c.data.sources = {
      "prompts": {"paths": ("data/rl/*.jsonl",), "weight": 1.0, "format": "prompt"},
      "ptx": {"paths": ("data/finance/*.jsonl", "data/general/*.jsonl"), "weight": 1.0},
  }
  c.data.prepared_dir = "runs/data/ppo_ptx"
  c.data.buckets = (2048,)
  c.data.tokens_per_step = 2048 * 256
  c.ppo.prompts_per_step = 256
  c.ppo.mini_batches = 4
  c.ppo.max_prompt_len = 1024
  c.ppo.max_answer_len = 1024
  c.ppo.temperature = 1.0
  c.ppo.kl_ctl = 0.1
  c.ppo.ptx_coef = 27.8
  c.ppo.ema_beta = 0.992
  c.ppo.critic_preset = "xuanyuan_13b"  # the shape tools/plan.py uses (checkpoints decide in training)
  c.ppo.actor_lr = 9.65e-6
  c.ppo.critic_lr = 5e-6
  c.optim.warmup_steps = 100
  c.optim.weight_decay = 0.0
  c.optim.b2 = 0.95
  c.train.steps = 1000
  c.train.checkpoint_every = 50
  c.train.peak_flops_per_device = 459e12
  return c
