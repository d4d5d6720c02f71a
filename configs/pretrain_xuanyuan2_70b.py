"""XuanYuan2-70B continued pretraining with 2k/4k/8k/16k length buckets (the seed's recipe).

  python tools/prepare_data.py --config configs/pretrain_xuanyuan2_70b.py
  python -m xy_jax.train --config configs/pretrain_xuanyuan2_70b.py --workdir /mnt/gcs/runs/xy2-70b \
      --config.init_from_hf=/models/XuanYuan-70B

Each step draws one bucket (by default with probability proportional to the tokens it has left)
and keeps 4M tokens per step: 2048 rows of 2k, 1024 of 4k, 512 of 8k or 256 of 16k.
"""

from xy_jax.config import base_config, model_config


def get_config(arg=None):
  del arg
  c = base_config()
  c.model = model_config("xuanyuan2_70b", dtype="bfloat16", remat_policy="full")
  c.mesh.rules = {"vocab": (), "act_vocab": ()}  # 39438 does not divide the tensor axis
  c.mesh.data, c.mesh.fsdp, c.mesh.tensor = 1, -1, 4
  c.data.prepared_dir = "runs/data/xuanyuan2_70b"
  c.data.tokenizer = "runs/tokenizers/xuanyuan/tokenizer.model"
  c.data.sources = {
      "finance": {"paths": ("data/finance/*.jsonl",), "weight": 0.35},
      "books": {"paths": ("data/books/",), "weight": 0.15},
      "papers": {"paths": ("data/papers/*.jsonl",), "weight": 0.10},
      "news": {"paths": ("data/news/*.jsonl",), "weight": 0.15},
      "general": {"paths": ("data/general/*.jsonl",), "weight": 0.25},
  }
  c.data.buckets = (2048, 4096, 8192, 16384)
  c.data.tokens_per_step = 16384 * 256
  c.data.eval_length = 2048
  # v5p-256 (v5p:4x4x8, 128 chips): fsdp 32 x tensor 4; 8 micro-batches keep the 16k bucket at
  # one row per data-parallel shard per micro-batch (tools/plan.py, docs/performance.md).
  c.optim.grad_accum = 8
  c.optim.lr = 3e-5
  c.optim.warmup_steps = 200
  c.optim.min_lr_ratio = 0.1
  c.train.steps = 75000  # ~300B tokens at 4M tokens per step, as in the report
  c.train.eval_every = 1000
  c.train.checkpoint_every = 500
  c.train.peak_flops_per_device = 459e12  # TPU v5p bf16
  return c
