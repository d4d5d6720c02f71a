"""Build models sharded from birth: abstract shapes, shardings from the rules, jitted init."""

from __future__ import annotations

from typing import Any, Callable

import jax
from flax import nnx

from xy_jax.models.llama import CausalLM
from xy_jax.models.reward import RewardModel
from xy_jax.models.model_config import ModelConfig
from xy_jax.sharding import LogicalSharding, check_divisible


# Checkpoint meta "kind" -> model class (reward models and PPO critics are "reward").
MODEL_CLASSES: dict[str, Callable[..., nnx.Module]] = {"causal_lm": CausalLM, "reward": RewardModel}


def _is_var(x) -> bool:
  return isinstance(x, nnx.Variable)


def param_paths(state: nnx.State) -> dict[str, nnx.Variable]:
  """Flat {'model.layers.self_attn.q_proj.weight': Variable} view of a state."""
  return {".".join(str(p) for p in path): v for path, v in nnx.to_flat_state(state)}


def state_shardings(abs_state: nnx.State, sharding: LogicalSharding) -> Any:
  """A tree of NamedShardings matching `abs_state`; raises ShardingError naming any misfit."""
  mesh = sharding.mesh
  assert mesh is not None
  for name, var in param_paths(abs_state).items():
    axes = var.get_metadata().get("logical_axes", (None,) * len(var.shape))
    check_divisible(name, var.shape, sharding.spec(axes), mesh, axes)
  return jax.tree.map(lambda v: sharding.named(v.get_metadata().get("logical_axes", ())),
                      abs_state, is_leaf=_is_var)


def abstract_model(cls: Callable[..., nnx.Module], cfg: ModelConfig,
                   sharding: LogicalSharding = LogicalSharding()):
  """(graphdef, abstract state) with no memory allocated."""
  model = nnx.eval_shape(lambda: cls(cfg, rngs=nnx.Rngs(0), sharding=sharding))
  return nnx.split(model)


def init_model(cls: Callable[..., nnx.Module], cfg: ModelConfig, sharding: LogicalSharding,
               seed: int = 0) -> nnx.Module:
  """Random init directly into sharded arrays (never materialised on one device)."""
  graphdef, abs_state = abstract_model(cls, cfg, sharding)
  shardings = state_shardings(abs_state, sharding) if sharding.mesh is not None else None

  def init():
    return nnx.state(cls(cfg, rngs=nnx.Rngs(seed), sharding=sharding))

  return nnx.merge(graphdef, jax.jit(init, out_shardings=shardings)())


def model_from_values(cls: Callable[..., nnx.Module], cfg: ModelConfig, sharding: LogicalSharding,
                      values: dict) -> nnx.Module:
  """A model of shape `cfg` holding `values` (a pure dict of host or device arrays of the right
  shapes), each placed with its sharding under `cfg`'s rules (device arrays are resharded on device)."""
  graphdef, abs_state = abstract_model(cls, cfg, sharding)
  shardings = nnx.to_pure_dict(state_shardings(abs_state, sharding))

  def place(value, target):
    if isinstance(value, jax.Array):
      return jax.device_put(value, target)
    return jax.make_array_from_callback(value.shape, target, lambda idx: value[idx])

  nnx.replace_by_pure_dict(abs_state, jax.tree.map(place, values, shardings))
  return nnx.merge(graphdef, abs_state)
