"""Everything a run needs before its first step, shared by training, benchmarks and planning.

`setup` validates the config, builds the mesh, tokenizer and stage, derives abstract state and
shardings, and jits the train and eval steps. It allocates no parameters: `init_state` does that
(sharded from birth), and the loop may instead restore a checkpoint into `abstract_state`.
"""

from __future__ import annotations

import dataclasses
import filecmp
import os
from typing import Any, Callable

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from ml_collections import ConfigDict

from xy_jax.config import validate
from xy_jax.data.tokenizer import Tokenizer, load_tokenizer
from xy_jax.models.factory import abstract_model, state_shardings
from xy_jax.models.lora import targeted as lora_targeted
from xy_jax.errors import ConfigError
from xy_jax.models.model_config import ModelConfig
from xy_jax.sharding import LogicalSharding, make_mesh, rules_with_overrides
from xy_jax.train import task as tasks
from xy_jax.train import adapters, trainable
from xy_jax.train.eval_tasks import eval_specs
from xy_jax.train.learner import Learner, StepContext, SupervisedLearner
from xy_jax.train.state import TrainState, state_shardings as train_state_shardings
from xy_jax.weights import layout
from xy_jax.weights.pins import PINS_META, Pins, run_pins
from xy_jax.weights.select import params_matching, selection
from xy_jax.weights.start import source_model_config


@dataclasses.dataclass
class RunSetup:
  cfg: ConfigDict
  model_cfg: ModelConfig
  mesh: Mesh
  sharding: LogicalSharding
  tokenizer: Tokenizer
  task: tasks.Task
  learner: Learner
  graphdef: Any
  tx: Any
  lr_schedule: Callable
  state_shardings: TrainState
  abstract_state: TrainState  # ShapeDtypeStructs with shardings
  train_step: Callable  # jitted, donates the state
  eval_step: Callable
  batch_sharding: NamedSharding
  trainable: Any = None  # optim.trainable's mask over the parameters (None: all train)
  trainable_pattern: str = ""  # optim.trainable, or the adapters' pattern in a LoRA run
  lora_base: dict | None = None  # a LoRA run's base (checkpoint meta); None: not a LoRA run
  pins: Pins | None = None  # the other runs' weights this run stands on

  def checkpointed(self, params):
    """What a checkpoint's params item holds: everything, or a LoRA run's adapters only."""
    return params if self.lora_base is None else params_matching(params, self.trainable_pattern)

  def init_state(self, log=print) -> TrainState:
    """Fresh state: random init, or weights from init_from_hf / init_from_checkpoint (a LoRA
    resume rebuilds its base here: the step and digest it pinned, recorded as `lora_base`)."""
    self.model_cfg, params = self.learner.init_params(self.cfg, self.model_cfg, self.task.model_cls,
                                                      self.sharding, log)
    if self.lora_base and self.pins is not None:
      self.lora_base = {**self.lora_base, **self.pins.of(self.lora_base)}
    return jax.jit(self._create, out_shardings=self.state_shardings)(params)

  def _create(self, params) -> TrainState:
    params = trainable.cast_untrained(params, self.trainable, self.cfg.optim.frozen_dtype)
    return TrainState.create(params, self.tx, self.learner.init_extra(params), self.trainable)

  def abstract_train_state(self, pattern: str) -> TrainState:
    """The abstract state (with shardings) a run whose `optim.trainable` was `pattern` saved."""
    mask = selection(self.abstract_state.params, pattern)
    params = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), self.abstract_state.params)
    abstract = jax.eval_shape(lambda p: TrainState.create(
        trainable.cast_untrained(p, mask, self.cfg.optim.frozen_dtype), self.tx, self.learner.init_extra(p),
        mask), params)
    param_sh = jax.tree.map(lambda a: a.sharding, self.abstract_state.params)
    extra_sh = jax.tree.map(lambda a: a.sharding, self.abstract_state.extra)
    shardings = train_state_shardings(abstract, param_sh, self.tx, self.mesh, extra_sh, mask)
    return jax.tree.map(lambda a, sh: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=sh), abstract,
                        shardings)

  def to_device(self, batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    """This process's rows -> global arrays sharded over the batch axes."""
    return {k: jax.make_array_from_process_local_data(self.batch_sharding, v) for k, v in batch.items()}

  @staticmethod
  def local_rows(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """This process's share of a global batch held by every process."""
    n = len(next(iter(batch.values()))) // jax.process_count()
    lo = jax.process_index() * n
    return {k: v[lo:lo + n] for k, v in batch.items()}


def tokenizer_file_for(cfg: ConfigDict, log) -> str | None:
  """The config's tokenizer, or (when unset) the one the starting weights were trained with.

  A set `data.tokenizer` that differs from the starting weights' tokenizer is refused: ids would
  silently mean different pieces.
  """
  start = tasks.start_checkpoint(cfg)
  if start:
    theirs, where = layout.tokenizer_path(start), start
  elif cfg.init_from_hf:
    theirs, where = os.path.join(cfg.init_from_hf, layout.TOKENIZER_FILE), cfg.init_from_hf
    theirs = theirs if os.path.isfile(theirs) else None
  else:
    theirs = where = None
  if cfg.data.tokenizer is None:
    if theirs:
      log(f"data.tokenizer: using {theirs} (from {where})")
    return theirs
  if theirs and not filecmp.cmp(cfg.data.tokenizer, theirs, shallow=False):
    raise ConfigError(f"data.tokenizer={cfg.data.tokenizer} differs from {theirs}, the tokenizer "
                      f"{where} was trained with; leave data.tokenizer unset to use that one")
  return cfg.data.tokenizer


def setup(cfg: ConfigDict, log=print, with_data: bool = True, devices=None,
          checkpoints: str | None = None) -> RunSetup:
  """`with_data=False` (planning) reads no data, tokenizer or checkpoint: shapes come from the
  config, and `devices` may be a TPU topology's abstract devices. `checkpoints`: the run's
  checkpoint directory, whose recorded pins a resume holds to."""
  model_cfg = validate(cfg)
  tasks.validate_stage(cfg)
  eval_specs(cfg)  # benchmark settings; their data is read before setup (train.eval_tasks.eval_splits)
  # Pinned as they are first read, or held to the ones a resumed run's checkpoints recorded; setup
  # itself reads only other runs' configs, never their weights.
  pins = run_pins(checkpoints, log) if with_data else None
  mesh = make_mesh(cfg.mesh, devices)
  sharding = LogicalSharding(mesh, rules_with_overrides(cfg.mesh.get("rules", {})))
  tok = None
  if with_data:
    tok = load_tokenizer(tokenizer_file_for(cfg, log))
    model_cfg = source_model_config(cfg, model_cfg)
    if tok.vocab_size > model_cfg.vocab_size:
      raise ConfigError(f"data.tokenizer: {tok.vocab_size} pieces exceed model.vocab_size="
                        f"{model_cfg.vocab_size}")
  task = tasks.builder(cfg.stage)(cfg, model_cfg, tok, sharding, log)
  if pins is not None:
    task.meta[PINS_META] = pins.pinned  # filled as sources are read; saved with each step
  learner = task.learner or SupervisedLearner(task.loss_sums)
  learner.pins = pins
  model_cfg = adapters.apply(cfg, task.model_config or model_cfg)
  lora_base = learner.lora_base(cfg, required=with_data) if adapters.enabled(cfg) else None
  log(f"{task.name}: {model_cfg.param_count() / 1e6:.2f}M params on mesh {dict(mesh.shape)} "
      f"({mesh.size} devices, {jax.process_count()} processes)")
  for line in task.summary:
    log(line)

  graphdef, abs_model_state = abstract_model(task.model_cls, model_cfg, sharding)
  param_sh = nnx.to_pure_dict(state_shardings(abs_model_state, sharding))
  abs_params = layout.abstract_pure_params(abs_model_state, None)
  tx, lr_schedule = learner.optimizer(cfg)
  pattern = learner.lora_pattern if lora_base is not None else cfg.optim.trainable
  mask = selection(abs_params, pattern)
  if cfg.optim.trainable and not learner.supports_trainable:
    raise ConfigError(f"optim.trainable: stage {cfg.stage!r} trains every parameter of its models")
  if mask is not None:
    n, total = trainable.count(abs_params, mask)
    what = (f"lora rank {cfg.lora.rank} on {', '.join(lora_targeted(cfg.lora.targets))}" if cfg.lora.rank
            else f"optim.trainable={pattern!r}")
    frozen = f" in {model_cfg.quant}" if model_cfg.quant != "none" else (
        f" in {cfg.optim.frozen_dtype}" if cfg.optim.frozen_dtype else "")
    log(f"{what}: {n / 1e6:.2f}M of {total / 1e6:.2f}M parameters train; the rest are frozen{frozen}")
  abs_state = jax.eval_shape(lambda p: TrainState.create(
      trainable.cast_untrained(p, mask, cfg.optim.frozen_dtype), tx, learner.init_extra(p), mask), abs_params)
  replicated = NamedSharding(mesh, jax.sharding.PartitionSpec())
  st_sh = train_state_shardings(abs_state, param_sh, tx, mesh, learner.extra_shardings(param_sh, replicated),
                                mask)
  with_sh = lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s)  # noqa: E731
  ctx = StepContext(cfg, graphdef, tx, lr_schedule, sharding, st_sh, mask, model_cfg)
  train_step = learner.build_step(ctx)
  return RunSetup(
      cfg=cfg, model_cfg=model_cfg, mesh=mesh, sharding=sharding, tokenizer=tok, task=task,
      learner=learner, graphdef=graphdef, tx=tx, lr_schedule=lr_schedule, state_shardings=st_sh,
      abstract_state=jax.tree.map(with_sh, abs_state, st_sh), train_step=train_step,
      eval_step=learner.build_eval_step(ctx, task.loss_sums) if task.loss_sums else None,
      batch_sharding=NamedSharding(mesh, sharding.spec(("act_batch",))), trainable=mask,
      trainable_pattern=pattern, lora_base=lora_base, pins=pins)
