"""XuanYuan-13B reward model (the seeds' reward and critic size): SFT body + value head,
pairwise loss on human preference pairs.

  python -m xy_jax.train --config configs/reward_xuanyuan13b.py --workdir runs/rm_xy13b \
      --config.init_from_checkpoint=runs/sft_xy13b/checkpoints
"""

from xy_jax.config import base_config, model_config


def get_config(arg=None):
  del arg
  c = base_config()
  c.stage = "reward"
  c.model = model_config("xuanyuan_13b", dtype="bfloat16", remat_policy="full")
  c.mesh.data, c.mesh.fsdp, c.mesh.tensor = 1, -1, 1
  c.data.tokenizer = "runs/tokenizers/xuanyuan/tokenizer.model"
  c.data.sources = {"pairs": {"paths": ("data/preference/*.jsonl",), "weight": 1.0,
                              "format": "preference"}}
  c.data.buckets = (2048,)
  c.data.tokens_per_step = 2048 * 128  # 64 pairs per step
  c.data.eval_fraction = 0.05
  c.optim.lr = 9e-6
  c.optim.warmup_steps = 50
  c.optim.weight_decay = 0.0
  c.train.steps = 2000
  c.train.eval_every = 100
  c.train.checkpoint_every = 200
  c.train.peak_flops_per_device = 459e12
  return c
