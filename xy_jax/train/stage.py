"""What a stage hands the loop: a model class, a loss, a step-indexed batch source, eval sets."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from flax import nnx


@dataclasses.dataclass
class Stage:
  name: str
  model_cls: Callable[..., nnx.Module]
  kind: str  # checkpoint meta "kind" (causal_lm, ...)
  loss_sums: Callable  # (model, batch) -> {'nll_sum', 'z_sum', 'count', ...}
  train_source: Any  # grain random-access source: index = step
  eval_sets: dict[str, list[dict]]  # name -> batches (full global batches, numpy)
  flops_per_token: Callable[[int], float]  # row length -> training FLOPs per token
  meta: dict[str, Any]  # recorded in checkpoints (e.g. mixture weights)
  summary: list[str]  # lines printed at start
  model_config: Any = None  # the model shape when the stage fixes it (PPO: the actor's)
  frozen: Any = None  # models used but never trained (PPO: reference and reward)
  # label -> {batch key: (global shape, dtype)}: what one step consumes, for AOT planning
  plan_batches: Callable[[], dict] = lambda: {}
  summarize: Callable[[dict], dict] = lambda m: m  # step sums -> reported metrics
  summarize_eval: Callable[[dict], dict] = lambda totals: {}  # eval sums -> extra eval metrics
  tokens_in_batch: Callable[[dict], int] = lambda batch: int(batch["tokens"].size)
  # Stages whose update is not "one loss, one gradient step" (PPO) replace these:
  build_optimizer: Callable | None = None  # (cfg) -> (optax tx, lr schedule)
  init_params: Callable | None = None  # (setup) -> params pure dict
  init_extra: Callable[[Any], dict] = lambda params: {}  # params -> TrainState.extra
  extra_shardings: Callable | None = None  # (param shardings, replicated) -> shardings of extra
  build_step: Callable | None = None  # (setup) -> step(state, device batch) -> (state, metrics)
