"""XuanYuan-6B continued pretraining at 2k context (single bucket), e.g. on a v5p-8 slice.

  python tools/prepare_data.py --config configs/pretrain_xuanyuan6b.py
  python -m xy_jax.train --config configs/pretrain_xuanyuan6b.py --workdir /mnt/gcs/runs/xy6b \
      --config.init_from_hf=/models/XuanYuan-6B
"""

from xy_jax.config import base_config, model_config


def get_config(arg=None):
  del arg
  c = base_config()
  c.model = model_config("xuanyuan_6b", dtype="bfloat16", remat_policy="dots_with_no_batch_dims")
  c.mesh.data, c.mesh.fsdp, c.mesh.tensor = 1, -1, 1
  c.data.prepared_dir = "runs/data/xuanyuan6b"
  c.data.tokenizer = "runs/tokenizers/xuanyuan/tokenizer.model"
  c.data.sources = {
      "finance": {"paths": ("data/finance/*.jsonl",), "weight": 0.4},
      "general": {"paths": ("data/general/*.jsonl",), "weight": 0.6},
  }
  c.data.buckets = (2048,)
  c.data.tokens_per_step = 2048 * 256  # 0.5M tokens per step
  # tools/plan.py on v5p:2x2x1 (v5p-8): 16 micro-batches of 4 rows per chip with dots remat peak
  # at 76 GiB of 95 (full remat: 52 GiB, slower); see docs/performance.md.
  c.optim.grad_accum = 16
  c.optim.lr = 1e-4
  c.optim.warmup_steps = 500
  c.train.steps = 20000
  c.train.eval_every = 500
  c.train.checkpoint_every = 1000
  c.train.peak_flops_per_device = 459e12  # TPU v5p bf16
  return c
