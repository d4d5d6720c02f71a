"""Continued pretraining at CPU scale, the XuanYuan recipe in miniature (the demo runs it):
a base model on general text with a general-text tokenizer, its vocabulary extended with pieces
from the finance text, then stage 1 (embeddings and LM head only) and stage 2 (everything, the
finance share raised half-way).

  python -m xy_jax.train --config configs/continue_tiny.py:base --workdir runs/cpt_base \
      --config.data.tokenizer=runs/general_tokenizer.model
  python tools/extend_vocab.py --checkpoint runs/cpt_base/checkpoints \
      --corpus data/pretrain/finance.jsonl --new_pieces 256 --out runs/cpt_extended
  python -m xy_jax.train --config configs/continue_tiny.py:stage1 --workdir runs/cpt1 \
      --config.init_from_checkpoint=runs/cpt_extended
  python -m xy_jax.train --config configs/continue_tiny.py:stage2 --workdir runs/cpt2 \
      --config.init_from_checkpoint=runs/cpt1/checkpoints
"""

from xy_jax.config import base_config, model_config

GENERAL = {"paths": ("data/pretrain/general.txt",)}
FINANCE = {"paths": ("data/pretrain/finance.jsonl",)}


def get_config(arg="stage1"):
  if arg not in ("base", "stage1", "stage2"):
    raise ValueError(f"--config=...:{arg}: use base, stage1 or stage2")
  c = base_config()
  c.model = model_config("tiny", vocab_size=512)  # the general-text tokenizer's size (base)
  c.data.prepared_dir = f"runs/data/continue_tiny_{arg}"
  c.data.auto_prepare = True
  c.data.buckets = (64, 128)
  c.data.tokens_per_step = 2048
  c.data.eval_fraction = 0.05
  c.data.eval_rows = 16
  c.optim.warmup_steps = 5
  c.optim.weight_decay = 0.01
  c.train.log_every = 5
  if arg == "base":  # general text only
    c.data.sources = {"general": dict(GENERAL, weight=1.0)}
    c.optim.lr, c.train.steps = 3e-3, 60
  elif arg == "stage1":
    c.data.sources = {"general": dict(GENERAL, weight=0.9), "finance": dict(FINANCE, weight=0.1)}
    c.optim.trainable = r"embed_tokens|lm_head"
    c.optim.lr, c.train.steps = 1e-2, 40
  else:
    c.data.sources = {"general": dict(GENERAL, weight=0.9), "finance": dict(FINANCE, weight=0.1)}
    c.data.mixture_schedule = ((40, {"general": 0.7, "finance": 0.3}),)
    c.optim.lr, c.train.steps = 3e-3, 80
  c.train.eval_every = c.train.checkpoint_every = c.train.steps // 2
  return c
