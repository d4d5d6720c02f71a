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
  extra: Any = dataclasses.field(default_factory=dict)  # stage state (PPO: KL coefficient, EMA)

  @classmethod
  def create(cls, params, tx: optax.GradientTransformation, extra=None) -> "TrainState":
    zero = jnp.zeros((), jnp.int32)
    return cls(zero, params, tx.init(params), zero, zero, extra or {})


def state_shardings(abstract: TrainState, param_shardings: Any, tx: optax.GradientTransformation,
                    mesh, extra_shardings: Any = None) -> TrainState:
  """Optimizer moments shard like their parameters; counters are replicated."""
  replicated = NamedSharding(mesh, PartitionSpec())
  try:
    opt = optax.tree_map_params(tx, lambda _, sh: sh, abstract.opt_state, param_shardings,
                                transform_non_params=lambda _: replicated,
                                is_leaf=lambda x: isinstance(x, NamedSharding))
  except (ValueError, TypeError):
    # Partitioned optimizers (multi_transform) defeat tree_map_params: let the compiler propagate
    # each parameter's sharding to the state that `init` builds from it.
    params = jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s),
                          abstract.params, param_shardings)
    compiled = jax.jit(tx.init).lower(params).compile().output_shardings
    mesh_devices = set(mesh.devices.flat)
    # Leaves built from constants (step counts) come back on one device: replicate them instead.
    opt = jax.tree.map(lambda sh: sh if set(sh.device_set) == mesh_devices else replicated, compiled)
  if extra_shardings is None:
    extra_shardings = jax.tree.map(lambda _: replicated, abstract.extra)
  return TrainState(replicated, param_shardings, opt, replicated, replicated, extra_shardings)
