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

from xy_jax import checkpoint
from xy_jax.config import validate
from xy_jax.data.tokenizer import Tokenizer, load_tokenizer
from xy_jax.models.factory import abstract_model, init_model, state_shardings
from xy_jax.models.model_config import ConfigError, ModelConfig
from xy_jax.sharding import LogicalSharding, make_mesh, rules_with_overrides
from xy_jax.rl import ppo
from xy_jax.train import pretrain, reward, trainable
from xy_jax.train.optim import optimizer
from xy_jax.train.stage import Stage
from xy_jax.train.state import TrainState, state_shardings as train_state_shardings
from xy_jax.train.step import make_eval_step, make_train_step

STAGE_BUILDERS = {"pretrain": pretrain.build, "sft": pretrain.build, "reward": reward.build,
                  "ppo": ppo.build}


NUMERICS = ("dtype", "scan_layers", "remat_policy", "attention_impl")
def _start_overrides(cfg: ConfigDict, model_cfg: ModelConfig) -> dict:
  """The fields of `model_cfg` that apply over the starting weights' own config."""
  return {k: getattr(model_cfg, k) for k in NUMERICS + tuple(cfg.model_from_config)}


def _initial_params(cfg: ConfigDict, model_cfg: ModelConfig, stage_cls, sharding, log):
  """Random init, or weights from init_from_hf / init_from_checkpoint.

  Parts the source lacks are freshly initialised and parts the target lacks are dropped, both
  logged: an SFT or causal-LM checkpoint gives a reward model its body with a new value head.
  """
  numerics = _start_overrides(cfg, model_cfg)
  if cfg.init_from_hf:
    from xy_jax.convert.hf import load_hf
    from xy_jax.convert.hf_config import model_kind
    kind = model_kind(os.path.join(cfg.init_from_hf, "config.json"))
    model_cfg, src = load_hf(cfg.init_from_hf, sharding, kind, model_cfg.param_dtype, log=log, **numerics)
    origin = cfg.init_from_hf
  elif cfg.init_from_checkpoint:
    from xy_jax.models.loading import load_checkpoint
    loaded = load_checkpoint(cfg.init_from_checkpoint, sharding, **numerics)
    model_cfg, src, origin = loaded.cfg, loaded.model, cfg.init_from_checkpoint
  else:
    model = init_model(stage_cls, model_cfg, sharding, seed=cfg.seed)
    return model_cfg, nnx.to_pure_dict(nnx.state(model))
  src_params = nnx.to_pure_dict(nnx.state(src))
  if isinstance(src, stage_cls):
    return model_cfg, src_params
  params = nnx.to_pure_dict(nnx.state(init_model(stage_cls, model_cfg, sharding, seed=cfg.seed)))
  for key in params:
    if key in src_params:
      params[key] = src_params[key]
    else:
      log(f"{key}: not in {origin}; freshly initialised")
  dropped = sorted(set(src_params) - set(params))
  if dropped:
    log(f"{', '.join(dropped)}: from {origin}, not used by this stage's model")
  return model_cfg, params


def _source_model_config(cfg: ConfigDict, model_cfg: ModelConfig) -> ModelConfig:
  """The model shape when starting from HF weights or a checkpoint is theirs, not the config's."""
  if cfg.init_from_hf:
    from xy_jax.convert.hf_config import model_config_from_hf
    return model_config_from_hf(os.path.join(cfg.init_from_hf, "config.json"),
                                param_dtype=model_cfg.param_dtype, **_start_overrides(cfg, model_cfg))
  if cfg.init_from_checkpoint:
    meta = checkpoint.load_meta(cfg.init_from_checkpoint)
    src = checkpoint.model_config_from_meta(meta, cfg.init_from_checkpoint)
    if src.quant != "none":
      raise ConfigError(f"init_from_checkpoint={cfg.init_from_checkpoint}: a {src.quant} quantised "
                        "checkpoint cannot be trained; start from the float checkpoint")
    return src.replace(**_start_overrides(cfg, model_cfg))
  return model_cfg


@dataclasses.dataclass
class RunSetup:
  cfg: ConfigDict
  model_cfg: ModelConfig
  mesh: Mesh
  sharding: LogicalSharding
  tokenizer: Tokenizer
  stage: Stage
  graphdef: Any
  tx: Any
  lr_schedule: Callable
  state_shardings: TrainState
  abstract_state: TrainState  # ShapeDtypeStructs with shardings
  train_step: Callable  # jitted, donates the state
  eval_step: Callable
  batch_sharding: NamedSharding
  trainable: Any = None  # optim.trainable's mask over the parameters (None: all train)

  def init_state(self, log=print) -> TrainState:
    """Fresh state: random init, or weights from init_from_hf / init_from_checkpoint."""
    if self.stage.init_params is not None:
      params = self.stage.init_params(self)
    else:
      self.model_cfg, params = _initial_params(self.cfg, self.model_cfg, self.stage.model_cls,
                                               self.sharding, log)
    return jax.jit(self._create, out_shardings=self.state_shardings)(params)

  def _create(self, params) -> TrainState:
    params = trainable.cast_frozen(params, self.trainable, self.cfg.optim.frozen_dtype)
    return TrainState.create(params, self.tx, self.stage.init_extra(params), self.trainable)

  def abstract_train_state(self, pattern: str) -> TrainState:
    """The abstract state (with shardings) a run whose `optim.trainable` was `pattern` saved."""
    mask = trainable.selection(self.abstract_state.params, pattern)
    params = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), self.abstract_state.params)
    abstract = jax.eval_shape(lambda p: TrainState.create(
        trainable.cast_frozen(p, mask, self.cfg.optim.frozen_dtype), self.tx, self.stage.init_extra(p),
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
  start = cfg.init_from_checkpoint or (cfg.ppo.actor_checkpoint if cfg.stage == "ppo" else None)
  if start:
    theirs, where = checkpoint.tokenizer_path(start), start
  elif cfg.init_from_hf:
    theirs, where = os.path.join(cfg.init_from_hf, checkpoint.TOKENIZER_FILE), cfg.init_from_hf
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


def setup(cfg: ConfigDict, log=print, with_data: bool = True, devices=None) -> RunSetup:
  """`with_data=False` (planning) reads no data, tokenizer or checkpoint: shapes come from the
  config, and `devices` may be a TPU topology's abstract devices."""
  model_cfg = validate(cfg)
  mesh = make_mesh(cfg.mesh, devices)
  sharding = LogicalSharding(mesh, rules_with_overrides(cfg.mesh.get("rules", {})))
  tok = None
  if with_data:
    tok = load_tokenizer(tokenizer_file_for(cfg, log))
    model_cfg = _source_model_config(cfg, model_cfg)
    if tok.vocab_size > model_cfg.vocab_size:
      raise ConfigError(f"data.tokenizer: {tok.vocab_size} pieces exceed model.vocab_size="
                        f"{model_cfg.vocab_size}")
  stage = STAGE_BUILDERS[cfg.stage](cfg, model_cfg, tok, sharding, log)
  model_cfg = stage.model_config or model_cfg
  log(f"{stage.name}: {model_cfg.param_count() / 1e6:.2f}M params on mesh {dict(mesh.shape)} "
      f"({mesh.size} devices, {jax.process_count()} processes)")
  for line in stage.summary:
    log(line)

  graphdef, abs_model_state = abstract_model(stage.model_cls, model_cfg, sharding)
  param_sh = nnx.to_pure_dict(state_shardings(abs_model_state, sharding))
  abs_params = checkpoint.abstract_pure_params(abs_model_state, None)
  build_tx = stage.build_optimizer or (lambda c: optimizer(c.optim, c.train.steps))
  tx, lr_schedule = build_tx(cfg)
  mask = trainable.selection(abs_params, cfg.optim.trainable)
  if mask is not None and stage.build_step is not None:
    raise ConfigError(f"optim.trainable: stage {cfg.stage!r} has its own update and trains every "
                      "parameter of its models")
  if mask is not None:
    n, total = trainable.count(abs_params, mask)
    log(f"optim.trainable={cfg.optim.trainable!r}: {n / 1e6:.2f}M of {total / 1e6:.2f}M parameters "
        f"train; the rest are frozen" + (f" in {cfg.optim.frozen_dtype}" if cfg.optim.frozen_dtype else ""))
  abs_state = jax.eval_shape(lambda p: TrainState.create(
      trainable.cast_frozen(p, mask, cfg.optim.frozen_dtype), tx, stage.init_extra(p), mask), abs_params)
  replicated = NamedSharding(mesh, jax.sharding.PartitionSpec())
  extra_sh = stage.extra_shardings(param_sh, replicated) if stage.extra_shardings else None
  st_sh = train_state_shardings(abs_state, param_sh, tx, mesh, extra_sh, mask)
  with_sh = lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s)  # noqa: E731
  rs = RunSetup(
      cfg=cfg, model_cfg=model_cfg, mesh=mesh, sharding=sharding, tokenizer=tok, stage=stage,
      graphdef=graphdef, tx=tx, lr_schedule=lr_schedule, state_shardings=st_sh,
      abstract_state=jax.tree.map(with_sh, abs_state, st_sh), train_step=None,
      eval_step=jax.jit(make_eval_step(graphdef, stage.loss_sums)),
      batch_sharding=NamedSharding(mesh, sharding.spec(("act_batch",))), trainable=mask)
  if stage.build_step is not None:
    rs.train_step = stage.build_step(rs)
  else:
    rs.train_step = jax.jit(
        make_train_step(graphdef, stage.loss_sums, tx, lr_schedule, cfg.optim.grad_accum,
                        cfg.optim.z_loss, sharding, mask),
        donate_argnums=0, out_shardings=(st_sh, None))
  return rs
