"""A model from either an HF directory or one of our checkpoints (any stage's, a LoRA one on its
base)."""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable

from flax import nnx

from xy_jax.convert.hf import load_hf
from xy_jax.convert.hf_config import model_kind
from xy_jax.errors import CheckpointError, ConfigError
from xy_jax.models.actor_critic import actor_critic_class
from xy_jax.models.factory import MODEL_CLASSES, abstract_model, model_from_values, state_shardings
from xy_jax.models.model_config import NUMERICS, ModelConfig
from xy_jax.sharding import LogicalSharding
from xy_jax.weights import layout
from xy_jax.weights.lora import with_adapters
from xy_jax.weights.pins import Pins, SourceChanged, check_pin
from xy_jax.weights.select import params_matching


@dataclasses.dataclass
class LoadedModel:
  cfg: ModelConfig
  model: nnx.Module
  kind: str
  tokenizer_file: str | None
  meta: dict[str, Any]
  step: int | None = None  # the checkpoint step it came from


def load_checkpoint(path: str, sharding: LogicalSharding, step: int | None = None,
                    part: str | None = None, log: Callable[[str], None] = layout.stderr,
                    **overrides) -> LoadedModel:
  """A checkpoint's model: `step`, or the newest readable step (a damaged newer one is reported
  and skipped). PPO checkpoints hold two: `part` picks "actor" (default) or "critic"."""
  step, (meta, model) = layout.newest_readable(
      path, lambda s: _restore(path, sharding, s, log, **overrides), step, log)
  cfg = layout.model_config_from_meta(meta, path).replace(**overrides)
  kind = meta.get("kind", "causal_lm")
  if kind == "ppo":
    part = part or "actor"
    if part not in ("actor", "critic"):
      raise ConfigError(f"--part={part!r}: a PPO checkpoint holds 'actor' and 'critic'")
    model, kind = getattr(model, part), ("causal_lm" if part == "actor" else "reward")
    if part == "critic":
      cfg = _critic_config(meta, path, overrides)
  elif part is not None:
    raise ConfigError(f"--part={part}: {path} holds one {kind} model, not a PPO actor/critic pair")
  return LoadedModel(cfg, model, kind, layout.tokenizer_path(path), meta, step)


def load_source(field: str, path: str, sharding: LogicalSharding, pins: Pins | None,
                log: Callable[[str], None] = layout.stderr, **overrides) -> LoadedModel:
  """The model a training run reads from another run's checkpoint `path` (config `field`): the
  step the run pinned (`pins`; None: a run with nothing pinned yet), checked."""
  pin = (pins if pins is not None else Pins(log)).checkpoint(field, path)
  return _load_step(pin["checkpoint"], pin["step"], field, "this run", sharding, log, **overrides)


def _load_step(path: str, step: int | None, field: str, user: str, sharding: LogicalSharding,
               log: Callable[[str], None], **overrides) -> LoadedModel:
  """A source's step; its damage is the source's fault (SourceChanged naming `field`), never a
  reason to fall back to an older step of `user`."""
  try:
    return load_checkpoint(path, sharding, step, log=log, **overrides)
  except CheckpointError as e:
    raise SourceChanged(f"{field}: {e}; {user} was built on it") from None


def _critic_config(meta: dict, path: str, overrides: dict) -> ModelConfig:
  return ModelConfig.from_dict(meta["stage_meta"]["critic_model"], field=f"{path}:critic").replace(
      **overrides)


def _restore(path: str, sharding: LogicalSharding, step: int, log: Callable[[str], None],
             **overrides) -> tuple[dict, nnx.Module]:
  """(meta, model) of one step; CheckpointError when it cannot be read."""
  meta = layout.load_meta(path, step)
  cfg = layout.model_config_from_meta(meta, path).replace(**overrides)
  kind = meta.get("kind", "causal_lm")
  if meta.get("stage") == "quantize" and "lm_head" not in meta.get("quant", {}):
    raise ConfigError(f"{path}: quantised by an older xy_jax, which also quantised lm_head; quantise "
                      "its source again with tools/quantize.py")
  if kind == "ppo":
    cls = actor_critic_class(_critic_config(meta, path, overrides))
  elif kind in MODEL_CLASSES:
    cls = MODEL_CLASSES[kind]
  else:
    raise ConfigError(f"{path}/{step}: unknown model kind {kind!r} in meta")
  graphdef, abs_state = abstract_model(cls, cfg, sharding)
  target = layout.abstract_pure_params(abs_state, state_shardings(abs_state, sharding))
  if meta.get("lora_base"):
    return meta, _with_base(cls, cfg, meta, path, step, target, sharding, overrides, log)
  nnx.replace_by_pure_dict(abs_state, layout.restore_params(path, target, step))
  return meta, nnx.merge(graphdef, abs_state)


def _with_base(cls, cfg: ModelConfig, meta: dict, path: str, step: int, target: dict,
               sharding: LogicalSharding, overrides: dict, log: Callable[[str], None]) -> nnx.Module:
  """A LoRA checkpoint's model: what it stored (the parameters its `trainable` pattern selects:
  adapters, and a PPO critic) on the base its meta names (`lora_base`: the exact step and digest
  it was trained on). The base is read first: a missing or changed base stops with one line
  naming it, before anything blames this layout."""
  base = meta["lora_base"]
  numerics = {k: v for k, v in overrides.items() if k in NUMERICS}
  base_params = _base_params(base, cfg, sharding, numerics, f"the LoRA checkpoint {path}/{step}", log)
  stored = layout.restore_params(path, params_matching(target, meta["trainable"]), step)
  if base.get("part"):  # the base of one part (a PPO actor)
    base_params = {base["part"]: base_params}
  where = base.get("checkpoint") or base.get("hf")
  return model_from_values(cls, cfg, sharding, with_adapters(cls, cfg, base_params, sharding,
                                                             adapters=stored,
                                                             origin=f"lora_base: {where}"))


def _base_params(base: dict, cfg: ModelConfig, sharding: LogicalSharding, numerics: dict, user: str,
                 log: Callable[[str], None]) -> dict:
  """The float parameters of a LoRA checkpoint's base (pure dict)."""
  where = base.get("checkpoint") or base.get("hf")
  if "digest" in base:
    check_pin(base, "lora_base", user)
  elif not where or not os.path.exists(where):
    raise SourceChanged(f"lora_base: {where} is gone (moved or deleted?); {user} was "
                                   "built on it: put it back at that path")
  if base.get("hf"):
    src = load_hf(base["hf"], sharding, model_kind(os.path.join(base["hf"], "config.json")),
                  cfg.param_dtype, log=lambda _: None, **numerics)[1]
    return nnx.to_pure_dict(nnx.state(src))
  if base.get("step") is None:
    log(f"lora_base: {where}: {user} does not record which step it was trained on (written before "
        "bases were pinned); reading the newest readable step")
  src = _load_step(where, base.get("step"), "lora_base", user, sharding, log, **numerics).model
  return nnx.to_pure_dict(nnx.state(src))


def load_model(*, hf: str | None, ckpt: str | None, sharding: LogicalSharding,
               allow_torch_bin: bool = False, log: Callable[[str], None] = print,
               **overrides) -> LoadedModel:
  """Exactly one of `hf` / `ckpt`. `overrides` replace ModelConfig fields (e.g. dtype)."""
  if bool(hf) == bool(ckpt):
    raise ConfigError("pass exactly one of --hf DIR or --checkpoint CKPT")
  if ckpt:
    return load_checkpoint(ckpt, sharding, log=log, **overrides)
  param_dtype = overrides.pop("param_dtype", "float32")
  kind = model_kind(os.path.join(hf, "config.json")) if os.path.isdir(hf) else "causal_lm"
  cfg, model = load_hf(hf, sharding, kind, param_dtype, allow_torch_bin, log, **overrides)
  tok = os.path.join(hf, layout.TOKENIZER_FILE)
  return LoadedModel(cfg, model, kind, tok if os.path.isfile(tok) else None, {})
