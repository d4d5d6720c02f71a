"""Tiny reward model on CPU: the SFT model's body plus a fresh value head, trained on the shipped
preference pairs (pairwise loss; accuracy, margin and scores reported).

  python -m xy_jax.train --config configs/reward_tiny.py --workdir runs/reward_tiny \
      --config.init_from_checkpoint=runs/sft_tiny/checkpoints
"""

from xy_jax.config import base_config, model_config


def get_config(arg=None):
  del arg
  c = base_config()
  c.stage = "reward"
  c.model = model_config("tiny")
  c.data.sources = {"pairs": {"paths": ("data/preference/pairs.jsonl",), "weight": 1.0,
                              "format": "preference"}}
  c.data.buckets = (64,)
  c.data.tokens_per_step = 64 * 16  # 8 pairs per step
  c.data.eval_fraction = 0.2
  c.optim.lr = 1e-4  # 1e-3 overfits the 182 training pairs (held-out loss 0.5 -> 1.8)
  c.optim.warmup_steps = 10
  c.optim.weight_decay = 0.0
  c.train.steps = 400
  c.train.log_every = 10
  c.train.eval_every = 40
  c.train.checkpoint_every = 40
  return c
