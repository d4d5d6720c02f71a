"""Tiny DPO on CPU: the SFT model as policy and (frozen) reference, the reward model's shipped
preference pairs; TRL's metrics (rewards/chosen, rewards/accuracies, ...) per step and held out.

  python -m xy_jax.train --config configs/dpo_tiny.py --workdir runs/dpo_tiny \
      --config.init_from_checkpoint=runs/sft_tiny/checkpoints
"""

from xy_jax.config import base_config, model_config


def get_config(arg=None):
  del arg
  c = base_config()
  c.stage = "dpo"
  c.model = model_config("tiny")
  c.data.sources = {"pairs": {"paths": ("data/preference/pairs.jsonl",), "weight": 1.0,
                              "format": "preference"}}
  c.data.buckets = (64,)
  c.data.tokens_per_step = 64 * 16  # 8 pairs per step
  c.data.eval_fraction = 0.2
  c.dpo.beta = 0.1
  c.dpo.loss = "sigmoid"
  c.dpo.reference_dtype = "float32"  # bfloat16 would shift the tiny model's log-probs noticeably
  c.optim.lr = 1e-4
  c.optim.warmup_steps = 10
  c.optim.weight_decay = 0.0
  c.train.steps = 200
  c.train.log_every = 10
  c.train.eval_every = 40
  c.train.checkpoint_every = 40
  return c
