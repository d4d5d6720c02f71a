"""A LoRA model's parameters: a float base, its adapters (fresh or stored) and, for QLoRA, the base
quantised."""

from __future__ import annotations

import jax
from flax import nnx

from xy_jax.errors import ConfigError
from xy_jax.models.factory import abstract_model, model_from_values, state_shardings
from xy_jax.models.model_config import ModelConfig
from xy_jax.quant.quantize_model import quantize_model
from xy_jax.sharding import LogicalSharding
from xy_jax.weights.select import ADAPTER_PATTERN, params_matching


def _fresh_adapters(cls, cfg: ModelConfig, sharding: LogicalSharding, seed: int) -> dict:
  """A new model's adapters, as `init_model` draws them: the init is jitted with only the adapters as
  outputs, so XLA drops the base's random weights (never allocated beside the loaded base)."""
  graphdef, abs_state = abstract_model(cls, cfg, sharding)
  shardings = (params_matching(nnx.to_pure_dict(state_shardings(abs_state, sharding)), ADAPTER_PATTERN)
               if sharding.mesh is not None else None)

  def init():
    model = cls(cfg, rngs=nnx.Rngs(seed), sharding=sharding)
    return params_matching(nnx.to_pure_dict(nnx.state(model)), ADAPTER_PATTERN)

  return jax.jit(init, out_shardings=shardings)()


def with_adapters(cls, cfg: ModelConfig, base: dict, sharding: LogicalSharding, seed: int = 0,
                  adapters: dict | None = None, origin: str = "the base model") -> dict:
  """Parameters (pure dict) of a LoRA model `cfg`: the float `base` (no adapters), `adapters`
  (None: freshly initialised), the base quantised to `cfg.quant` (QLoRA) when that is set.
  `origin` names the base in errors ("init_from_checkpoint: DIR")."""
  float_cfg = cfg.replace(quant="none")
  if adapters is None:
    adapters = _fresh_adapters(cls, float_cfg, sharding, seed)
  flat = {jax.tree_util.keystr(p): x for p, x in jax.tree_util.tree_flatten_with_path(base)[0]}
  extra = {jax.tree_util.keystr(p): x for p, x in jax.tree_util.tree_flatten_with_path(adapters)[0]}

  def pick(path, x):
    key = jax.tree_util.keystr(path)
    if key in extra:
      return extra[key]
    if key not in flat:
      raise ConfigError(f"{origin}: has no parameter {key}, which this LoRA model needs (another "
                        "kind of model?)")
    return flat[key].astype(x.dtype)

  params = jax.tree_util.tree_map_with_path(pick, nnx.to_pure_dict(abstract_model(cls, float_cfg, sharding)[1]))
  if cfg.quant == "none":
    return params
  model = model_from_values(cls, float_cfg, sharding, params)
  return nnx.to_pure_dict(nnx.state(quantize_model(model, float_cfg, cfg.quant, sharding).model))
