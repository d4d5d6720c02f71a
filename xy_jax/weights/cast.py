"""Holding weights in another dtype: one cast of the floating-point leaves, and the frozen models a
stage reads but never trains (PPO's reference and reward, DPO's reference)."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from flax import nnx

from xy_jax.models.factory import abstract_model, state_shardings
from xy_jax.weights import layout
from xy_jax.weights.select import path_of


def cast_floats(tree: Any, dtype, keep: Callable[[str], bool] | None = None) -> Any:
  """`tree` with its floating-point leaves in `dtype`, except those whose dotted path `keep`
  accepts; integer leaves (quantised weights) unchanged. ShapeDtypeStruct leaves keep their
  shardings (abstract trees, for planning)."""

  def cast(path, x):
    if not jnp.issubdtype(x.dtype, jnp.floating) or (keep is not None and keep(path_of(path))):
      return x
    if isinstance(x, jax.ShapeDtypeStruct):
      return jax.ShapeDtypeStruct(x.shape, dtype, sharding=x.sharding)
    return x.astype(dtype)

  return jax.tree_util.tree_map_with_path(cast, tree)


def split_frozen(model: nnx.Module, dtype: str):
  """(graphdef, parameters pure dict in `dtype`) of a loaded model; float32 keeps them as they are
  (bfloat16 halves a frozen model's memory)."""
  graphdef, state = nnx.split(model)
  params = nnx.to_pure_dict(state)
  if dtype == "float32":
    return graphdef, params
  return graphdef, jax.jit(lambda p: cast_floats(p, dtype))(params)


def abstract_frozen(cls, cfg, sharding, dtype: str):
  """(graphdef, ShapeDtypeStruct parameters with shardings) of a frozen model: planning only."""
  graphdef, abs_state = abstract_model(cls, cfg, sharding)
  target = layout.abstract_pure_params(abs_state, state_shardings(abs_state, sharding))
  return graphdef, target if dtype == "float32" else cast_floats(target, dtype)
