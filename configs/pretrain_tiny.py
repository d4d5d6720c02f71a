"""Tiny bucketed pretraining on the shipped corpus: CPU, well under a minute.

  python -m xy_jax.train --config configs/pretrain_tiny.py --workdir runs/pretrain_tiny
"""

from xy_jax.config import base_config, model_config


def get_config(arg=None):
  del arg
  c = base_config()
  c.model = model_config("tiny")
  c.mesh.fsdp = -1
  c.data.prepared_dir = "runs/data/pretrain_tiny"
  c.data.auto_prepare = True
  c.data.sources = {
      "finance": {"paths": ("data/pretrain/finance.jsonl",), "weight": 0.5},
      "reports": {"paths": ("data/pretrain/reports",), "weight": 0.3},
      "general": {"paths": ("data/pretrain/general.txt",), "weight": 0.2},
  }
  c.data.buckets = (64, 128, 256)  # the 2k/4k/8k/16k ladder at CPU scale
  c.data.tokens_per_step = 2048
  c.data.eval_fraction = 0.05
  c.data.eval_rows = 16
  c.optim.lr = 3e-3
  c.optim.warmup_steps = 10
  c.optim.weight_decay = 0.01
  c.train.steps = 80
  c.train.log_every = 5
  c.train.eval_every = 40
  c.train.checkpoint_every = 40
  return c
