"""How a task's train state is made and advanced: the seam between a stage and the loop.

The loop and the planner call only this interface. Supervised stages (pretraining, SFT, reward
modelling) use `SupervisedLearner`: one loss, one gradient step through `make_train_step`. A stage
whose step is more (PPO: generate, score, several updates) brings its own subclass, built on the
same gradient step.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import optax
from ml_collections import ConfigDict

from xy_jax.models.model_config import ModelConfig
from xy_jax.sharding import LogicalSharding
from xy_jax.train import adapters
from xy_jax.train.optim import optimizer
from xy_jax.train.state import TrainState
from xy_jax.train.step import make_eval_step, make_train_step
from xy_jax.weights.pins import Pins
from xy_jax.weights.select import ADAPTER_PATTERN
from xy_jax.weights.start import starting_weights


@dataclasses.dataclass
class StepContext:
  """What a learner needs to build its step, once setup has derived it."""
  cfg: ConfigDict
  graphdef: Any
  tx: optax.GradientTransformation
  lr_schedule: optax.Schedule
  sharding: LogicalSharding
  state_shardings: TrainState
  trainable: Any  # optim.trainable's mask (None: everything trains)
  model_cfg: ModelConfig | None = None  # the model the state holds (PPO: the actor's, with adapters)


class Learner:
  supports_trainable = True  # optim.trainable may select a subset of the parameters
  estimates_time = True  # the planner may probe its step's cost (one program, no loops)
  lora_pattern = ADAPTER_PATTERN  # what trains in a LoRA run (a regex over parameter paths)
  pins: Pins | None = None  # the other runs' weights the run stands on (set by setup)

  def lora_base(self, cfg: ConfigDict, required: bool) -> dict:
    """Where a LoRA run's frozen base comes from (its checkpoints' meta `lora_base`)."""
    return adapters.base_reference(cfg, required)

  def optimizer(self, cfg: ConfigDict) -> tuple[optax.GradientTransformation, optax.Schedule]:
    return optimizer(cfg.optim, cfg.train.steps)

  def init_params(self, cfg: ConfigDict, model_cfg: ModelConfig, model_cls, sharding: LogicalSharding,
                  log) -> tuple[ModelConfig, dict]:
    """(model config, parameters pure dict): random init, or the starting weights."""
    return starting_weights(cfg, model_cfg, model_cls, sharding, self.pins, log)

  def init_extra(self, params) -> dict:
    """TrainState.extra: learner state beside the parameters (PPO: KL coefficient, EMA)."""
    return {}

  def extra_shardings(self, param_shardings, replicated) -> Any:
    return None  # replicated

  def build_step(self, ctx: StepContext) -> Callable[[TrainState, dict], tuple[TrainState, dict]]:
    raise NotImplementedError

  def build_eval_step(self, ctx: StepContext, loss_sums: Callable) -> Callable:
    """(params, device batch) -> the task's loss sums on held-out data, no gradients."""
    return jax.jit(make_eval_step(ctx.graphdef, loss_sums))

  def programs(self, step, abstract_state: TrainState, batch: dict) -> dict[str, Callable]:
    """name -> thunk compiling one program of a step for the planner (AOT, no data)."""
    return {"step": lambda: step.lower(abstract_state, batch).compile()}


class SupervisedLearner(Learner):
  """One loss over each batch, its gradient, one optax update (micro-batch accumulation, the
  non-finite skip, optim.trainable)."""

  def __init__(self, loss_sums: Callable):
    self.loss_sums = loss_sums

  def build_step(self, ctx: StepContext):
    o, lo = ctx.cfg.optim, ctx.cfg.lora
    dropout_seed = ctx.cfg.seed if lo.rank and lo.dropout else None
    return jax.jit(make_train_step(ctx.graphdef, self.loss_sums, ctx.tx, ctx.lr_schedule, o.grad_accum,
                                   o.z_loss, ctx.sharding, ctx.trainable, dropout_seed=dropout_seed),
                   donate_argnums=0, out_shardings=(ctx.state_shardings, None))
