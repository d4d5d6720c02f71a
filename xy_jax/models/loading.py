"""Load a model from either an HF directory or one of our orbax checkpoints."""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable

from flax import nnx

from xy_jax import checkpoint
from xy_jax.convert.hf import load_hf
from xy_jax.convert.hf_config import model_kind
from xy_jax.models.factory import MODEL_CLASSES, abstract_model, state_shardings
from xy_jax.models.model_config import ConfigError, ModelConfig
from xy_jax.sharding import LogicalSharding


@dataclasses.dataclass
class LoadedModel:
  cfg: ModelConfig
  model: nnx.Module
  kind: str
  tokenizer_file: str | None
  meta: dict[str, Any]


def load_checkpoint(path: str, sharding: LogicalSharding, step: int | None = None,
                    part: str | None = None, **overrides) -> LoadedModel:
  """A checkpoint's model. PPO checkpoints hold two: `part` picks "actor" (default) or "critic"."""
  meta = checkpoint.load_meta(path, step)
  cfg = checkpoint.model_config_from_meta(meta, path).replace(**overrides)
  kind = meta.get("kind", "causal_lm")
  if kind == "ppo":
    from xy_jax.rl.ppo import ActorCritic
    critic_cfg = ModelConfig.from_dict(meta["stage_meta"]["critic_model"], field=f"{path}:critic").replace(
        **overrides)
    cls = lambda c, rngs, sharding: ActorCritic(cfg, critic_cfg, rngs, sharding)  # noqa: E731
  elif kind in MODEL_CLASSES:
    if part is not None:
      raise ConfigError(f"--part={part}: {path} holds one {kind} model, not a PPO actor/critic pair")
    cls = MODEL_CLASSES[kind]
  else:
    raise checkpoint.CheckpointError(f"{path}: unknown model kind {kind!r} in meta")
  graphdef, abs_state = abstract_model(cls, cfg, sharding)
  target = checkpoint.abstract_pure_params(abs_state, state_shardings(abs_state, sharding))
  params = checkpoint.restore_params(path, target, step)
  nnx.replace_by_pure_dict(abs_state, params)
  model = nnx.merge(graphdef, abs_state)
  if kind == "ppo":
    part = part or "actor"
    if part not in ("actor", "critic"):
      raise ConfigError(f"--part={part!r}: a PPO checkpoint holds 'actor' and 'critic'")
    model, kind = getattr(model, part), ("causal_lm" if part == "actor" else "reward")
    cfg = cfg if part == "actor" else critic_cfg
  return LoadedModel(cfg, model, kind, checkpoint.tokenizer_path(path), meta)


def load_model(*, hf: str | None, ckpt: str | None, sharding: LogicalSharding,
               allow_torch_bin: bool = False, log: Callable[[str], None] = print,
               **overrides) -> LoadedModel:
  """Exactly one of `hf` / `ckpt`. `overrides` replace ModelConfig fields (e.g. dtype)."""
  if bool(hf) == bool(ckpt):
    raise ConfigError("pass exactly one of --hf DIR or --checkpoint CKPT")
  if ckpt:
    return load_checkpoint(ckpt, sharding, **overrides)
  param_dtype = overrides.pop("param_dtype", "float32")
  kind = model_kind(os.path.join(hf, "config.json")) if os.path.isdir(hf) else "causal_lm"
  cfg, model = load_hf(hf, sharding, kind, param_dtype, allow_torch_bin, log, **overrides)
  tok = os.path.join(hf, checkpoint.TOKENIZER_FILE)
  return LoadedModel(cfg, model, kind, tok if os.path.isfile(tok) else None, {})
