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


def adamw(o: ConfigDict, lr: optax.Schedule) -> optax.GradientTransformation:
  return optax.chain(
      optax.clip_by_global_norm(o.clip_norm) if o.clip_norm > 0 else optax.identity(),
      optax.adamw(lr, b1=o.b1, b2=o.b2, eps=o.eps, weight_decay=o.weight_decay, mask=decay_mask),
  )


def optimizer(o: ConfigDict, total_steps: int, groups: dict[str, float] | None = None
              ) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """AdamW with clipping, the warmup + schedule of `o`, and decay on matrices only.

  `groups` (top-level parameter name -> peak learning rate; PPO's actor and critic) gives each
  group its own AdamW and schedule, and clips each group's gradient norm on its own; the first
  group's schedule is returned.
  """
  if not groups:
    lr = schedule(o, total_steps)
    return adamw(o, lr), lr
  scheds = {name: schedule(ConfigDict({**o.to_dict(), "lr": peak}), total_steps)
            for name, peak in groups.items()}
  tx = optax.multi_transform({name: adamw(o, sched) for name, sched in scheds.items()},
                             {name: name for name in groups})  # a prefix of the params tree
  return tx, next(iter(scheds.values()))
