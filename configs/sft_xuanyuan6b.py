"""XuanYuan-6B chat SFT: answer-only loss on instruction conversations, mixed 80/20 with
pretraining text (the seeds' mixed fine-tuning), 2k rows.

  python tools/prepare_data.py --config configs/sft_xuanyuan6b.py
  python -m xy_jax.train --config configs/sft_xuanyuan6b.py --workdir runs/sft_xy6b \
      --config.init_from_checkpoint=runs/pretrain_xy6b/checkpoints
"""

from xy_jax.config import base_config, model_config


def get_config(arg=None):
  del arg
  c = base_config()
  c.stage = "sft"
  c.model = model_config("xuanyuan_6b", dtype="bfloat16", remat_policy="dots_with_no_batch_dims")
  c.mesh.data, c.mesh.fsdp, c.mesh.tensor = 1, -1, 1
  c.data.prepared_dir = "runs/data/sft_xuanyuan6b"
  c.data.tokenizer = "runs/tokenizers/xuanyuan/tokenizer.model"
  c.data.sources = {
      "sft": {"paths": ("data/sft/*.jsonl",), "weight": 0.8, "format": "sft"},
      "lm": {"paths": ("data/finance/*.jsonl", "data/general/*.jsonl"), "weight": 0.2},
  }
  c.data.buckets = (2048,)
  c.data.tokens_per_step = 2048 * 128
  c.optim.lr = 2e-5
  c.optim.warmup_steps = 100
  c.optim.weight_decay = 0.0
  c.train.steps = 3000
  c.train.eval_every = 200
  c.train.checkpoint_every = 500
  c.train.peak_flops_per_device = 459e12
  return c
