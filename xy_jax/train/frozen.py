"""Frozen models a stage reads but never trains (PPO's reference and reward, DPO's reference)."""

from __future__ import annotations

import jax
from flax import nnx

from xy_jax import checkpoint
from xy_jax.models.factory import abstract_model, state_shardings


def cast_frozen(params, dtype: str):
  """Parameters held in `dtype` (bfloat16 halves a frozen model's memory); float32 keeps them."""
  if dtype == "float32":
    return params
  return jax.jit(lambda p: jax.tree.map(lambda x: x.astype(dtype), p))(params)


def split_frozen(model: nnx.Module, dtype: str):
  """(graphdef, parameters pure dict in `dtype`) of a loaded model."""
  graphdef, state = nnx.split(model)
  return graphdef, cast_frozen(nnx.to_pure_dict(state), dtype)


def abstract_frozen(cls, cfg, sharding, dtype: str):
  """(graphdef, ShapeDtypeStruct parameters with shardings) of a frozen model: planning only."""
  graphdef, abs_state = abstract_model(cls, cfg, sharding)
  target = checkpoint.abstract_pure_params(abs_state, state_shardings(abs_state, sharding))
  cast = lambda a: jax.ShapeDtypeStruct(a.shape, dtype if dtype != "float32" else a.dtype,  # noqa: E731
                                        sharding=a.sharding)
  return graphdef, jax.tree.map(cast, target)
