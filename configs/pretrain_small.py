"""The 49M `small` preset pretrained on the shipped corpus, as configs/pretrain_tiny.py does the tiny
one: a CPU-sized model whose quantised variants are worth measuring (tools/quant_quality.py).

  python -m xy_jax.train --config configs/pretrain_small.py --workdir runs/pretrain_small

2,048 tokens a step: 4-5 s on 2 idle CPU cores (tools/bench.py's 500 tokens/s), 7-15 s on a
shared, loaded one (300 steps: 35 min there); 300 steps is about six passes over the corpus and
takes held-out perplexity to 5.2 (100 steps: 89.9; docs/performance.md).
"""

from xy_jax.config import base_config, model_config


def get_config(arg=None):
  del arg
  c = base_config()
  c.model = model_config("small")
  c.mesh.fsdp = -1
  c.data.prepared_dir = "runs/data/pretrain_small"
  c.data.auto_prepare = True
  c.data.sources = {
      "finance": {"paths": ("data/pretrain/finance.jsonl",), "weight": 0.5},
      "reports": {"paths": ("data/pretrain/reports",), "weight": 0.3},
      "general": {"paths": ("data/pretrain/general.txt",), "weight": 0.2},
  }
  c.data.buckets = (64, 128, 256)
  c.data.tokens_per_step = 2048
  c.data.eval_fraction = 0.05
  c.data.eval_rows = 16
  # 16 layers: a lower peak and a longer warm-up than the 2-layer tiny model's 3e-3 over 10 steps.
  c.optim.lr = 1e-3
  c.optim.warmup_steps = 20
  c.optim.weight_decay = 0.01
  c.train.steps = 300
  c.train.log_every = 10
  c.train.eval_every = 100
  c.train.checkpoint_every = 100
  return c
