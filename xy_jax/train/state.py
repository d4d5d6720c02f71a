"""The one train state every stage uses, and its shardings."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding, PartitionSpec


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class TrainState:
  step: jax.Array  # [] int32: optimizer steps taken (skipped non-finite steps included)
  params: Any  # pure nested dict, HF-shaped names (as in checkpoints)
  opt_state: Any
  bad_streak: jax.Array  # [] int32: non-finite steps in a row
  bad_total: jax.Array  # [] int32

  @classmethod
  def create(cls, params, tx: optax.GradientTransformation) -> "TrainState":
    zero = jnp.zeros((), jnp.int32)
    return cls(zero, params, tx.init(params), zero, zero)


def state_shardings(abstract: TrainState, param_shardings: Any, tx: optax.GradientTransformation,
                    mesh) -> TrainState:
  """Optimizer moments shard like their parameters; counters are replicated."""
  replicated = NamedSharding(mesh, PartitionSpec())
  opt = optax.tree_map_params(tx, lambda _, sh: sh, abstract.opt_state, param_shardings,
                              transform_non_params=lambda _: replicated,
                              is_leaf=lambda x: isinstance(x, NamedSharding))
  return TrainState(replicated, param_shardings, opt, replicated, replicated)
