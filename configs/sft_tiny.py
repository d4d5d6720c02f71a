"""Tiny mixed fine-tuning on CPU: answer-only loss on the shipped conversations, mixed with the
shipped pretraining text (the seeds' unsupervised LM task), each loss reported separately.

  python -m xy_jax.train --config configs/sft_tiny.py --workdir runs/sft_tiny \
      --config.init_from_checkpoint=runs/pretrain_tiny/checkpoints
"""

from xy_jax.config import base_config, model_config


def get_config(arg=None):
  del arg
  c = base_config()
  c.stage = "sft"
  c.model = model_config("tiny")
  c.data.prepared_dir = "runs/data/sft_tiny"
  c.data.auto_prepare = True
  c.data.sources = {
      "sft": {"paths": ("data/sft/finance_qa.jsonl",), "weight": 0.8, "format": "sft"},
      "lm": {"paths": ("data/pretrain/finance.jsonl",), "weight": 0.2},
  }
  c.data.buckets = (128,)
  c.data.tokens_per_step = 2048
  c.data.eval_fraction = 0.05
  c.data.eval_rows = 16
  c.optim.lr = 3e-3
  c.optim.warmup_steps = 10
  c.optim.weight_decay = 0.0
  c.train.steps = 200
  c.train.log_every = 10
  c.train.eval_every = 50
  c.train.checkpoint_every = 50
  return c
