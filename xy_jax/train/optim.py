"""optax optimizer and learning-rate schedule from `config.optim`."""

from __future__ import annotations

import jax
import optax
from ml_collections import ConfigDict


def schedule(o: ConfigDict, total_steps: int) -> optax.Schedule:
  peak, warmup = o.lr, o.warmup_steps
  end = peak * o.min_lr_ratio
  if o.schedule == "constant":
    return optax.warmup_constant_schedule(0.0, peak, max(warmup, 1)) if warmup else optax.constant_schedule(peak)
  decay_steps = max(total_steps - warmup, 1)
  if o.schedule == "cosine":
    return optax.warmup_cosine_decay_schedule(0.0, peak, warmup, warmup + decay_steps, end)
  decay = optax.linear_schedule(peak, end, decay_steps)
  return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), decay], [warmup]) if warmup else decay


def decay_mask(params) -> object:
  """Weight decay on matrices only: norms (1-D per layer) are exempt, as is usual for LLaMA."""
  return jax.tree_util.tree_map_with_path(lambda path, _: "norm" not in jax.tree_util.keystr(path),
                                          params)


def optimizer(o: ConfigDict, total_steps: int) -> tuple[optax.GradientTransformation, optax.Schedule]:
  lr = schedule(o, total_steps)
  tx = optax.chain(
      optax.clip_by_global_norm(o.clip_norm) if o.clip_norm > 0 else optax.identity(),
      optax.adamw(lr, b1=o.b1, b2=o.b2, eps=o.eps, weight_decay=o.weight_decay, mask=decay_mask),
  )
  return tx, lr
