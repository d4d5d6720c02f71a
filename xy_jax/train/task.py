"""What a stage hands the loop: a `Task` (model, loss, step-indexed batches, eval sets) and the
`Learner` that makes and updates its state.

Stages are registered by name (`register`); `xy_jax.stages` registers every stage this package
ships, so `train` itself never imports the layers above it (`rl`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
from flax import nnx

from xy_jax.errors import ConfigError
from xy_jax.models.model_config import ModelConfig

# (cfg, model_cfg, tokenizer | None, sharding, log) -> Task; tokenizer None: shapes only (planning)
TaskBuilder = Callable[..., "Task"]
_BUILDERS: dict[str, TaskBuilder] = {}
# cfg -> None, raising ConfigError: the stage's own config section, checked beside its code
_VALIDATORS: dict[str, Callable[[Any], None]] = {}


# the config field naming the checkpoint a stage starts from when init_from_checkpoint is unset
_START_FIELDS: dict[str, str] = {}


_LORA: set[str] = set()  # stages whose (actor) model may train LoRA adapters


def register(name: str, builder: TaskBuilder, validate: Callable[[Any], None] | None = None,
             start_field: str | None = None, lora: bool = False) -> None:
  _BUILDERS[name] = builder
  if lora:
    _LORA.add(name)
  if validate is not None:
    _VALIDATORS[name] = validate
  if start_field is not None:
    _START_FIELDS[name] = start_field


def start_checkpoint(cfg) -> str | None:
  """The checkpoint the run's weights come from: init_from_checkpoint, or the stage's own field
  (PPO: ppo.actor_checkpoint)."""
  if cfg.init_from_checkpoint or cfg.stage not in _START_FIELDS:
    return cfg.init_from_checkpoint or None
  section, name = _START_FIELDS[cfg.stage].split(".")
  return cfg[section][name] or None


def validate_stage(cfg) -> None:
  """The config's stage is registered and its own section is valid (the common sections are
  config.validate's)."""
  builder(cfg.stage)
  if cfg.lora.rank and cfg.stage not in _LORA:
    raise ConfigError(f"lora.rank: stage {cfg.stage!r} trains whole models; LoRA applies to "
                      f"{', '.join(sorted(_LORA))}")
  if cfg.stage in _VALIDATORS:
    _VALIDATORS[cfg.stage](cfg)


def builder(name: str) -> TaskBuilder:
  if name not in _BUILDERS:
    known = ", ".join(sorted(_BUILDERS)) or "none (import xy_jax.stages first)"
    raise ConfigError(f"stage={name!r}: not a registered stage; registered: {known}")
  return _BUILDERS[name]


@dataclasses.dataclass
class Task:
  name: str
  model_cls: Callable[..., nnx.Module]
  kind: str  # checkpoint meta "kind" (causal_lm, ...)
  loss_sums: Callable | None  # (model, batch) -> {'nll_sum', 'z_sum', 'count', ...}
  train_source: Any  # data.step_source.StepSource: index = step, with row_length(step)
  eval_sets: dict[str, list[dict]]  # name -> batches (full global batches, numpy)
  flops_per_token: Callable[[int], float]  # row length -> training FLOPs per token
  meta: dict[str, Any]  # recorded in checkpoints (e.g. mixture weights)
  summary: list[str]  # lines printed at start
  model_config: ModelConfig | None = None  # the model shape when the task fixes it (PPO: the actor's)
  # label -> {batch key: (global shape, dtype)}: what one step consumes, for AOT planning
  plan_batches: Callable[[], dict] = lambda: {}
  summarize: Callable[[dict], dict] = lambda m: m  # step sums -> reported metrics
  summarize_eval: Callable[[dict], dict] = lambda totals: {}  # eval sums -> extra eval metrics
  tokens_in_batch: Callable[[dict], int] = lambda batch: int(batch["tokens"].size)
  learner: Any = None  # train.learner.Learner; None: the supervised learner over loss_sums
  # Stage hooks, so the loop knows no stage:
  # the stage's own fields that decide which batch comes at which step (checkpointed; a resume
  # under other values says so), beside the common data section's
  data_plan: dict = dataclasses.field(default_factory=dict)
  # (stage_meta recorded at the restored step, step, log): put the stage's data back on its course
  resume: Callable[[dict, int, Callable], None] = lambda stage_meta, step, log: None
  # per log window: add(batch) for each batch fed, metrics() -> extra metrics (then starts afresh)
  window: Any = None


def check_rows(field: str, value, rows: int, sharding, accum: int = 1, what: str = "rows") -> None:
  """One step's `rows` must split over the data-parallel devices, micro-batches and processes."""
  dp = sharding.data_parallel_size
  if rows % (dp * accum) or rows % jax.process_count():
    raise ConfigError(f"{field}={value}: {rows} {what} per step must divide by data-parallel size "
                      f"{dp} x {accum} micro-batch(es) (and by {jax.process_count()} processes)")

