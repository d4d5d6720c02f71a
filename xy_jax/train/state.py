"""The one train state every stage uses, and its shardings."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding, PartitionSpec

from xy_jax.train.trainable import trainable_part


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
  def create(cls, params, tx: optax.GradientTransformation, extra=None, mask=None) -> "TrainState":
    """`mask` (optim.trainable): the optimizer holds state for the trainable parameters only."""
    zero = jnp.zeros((), jnp.int32)
    return cls(zero, params, tx.init(trainable_part(params, mask)), zero, zero, extra or {})


def state_shardings(abstract: TrainState, param_shardings: Any, tx: optax.GradientTransformation,
                    mesh, extra_shardings: Any = None, mask=None) -> TrainState:
  """Optimizer moments shard like their parameters; counters are replicated."""
  replicated = NamedSharding(mesh, PartitionSpec())
  try:
    opt = optax.tree_map_params(tx, lambda _, sh: sh, abstract.opt_state,
                                trainable_part(param_shardings, mask),
                                transform_non_params=lambda _: replicated,
                                is_leaf=lambda x: isinstance(x, NamedSharding))
  except (ValueError, TypeError):
    # Partitioned optimizers (multi_transform) defeat tree_map_params: a state leaf whose key path
    # ends with a parameter's path, and has its shape, shards like that parameter.
    by_path = {tuple(k.key for k in path): (sh, leaf.shape) for (path, sh), leaf in zip(
        jax.tree_util.tree_flatten_with_path(param_shardings)[0], jax.tree.leaves(abstract.params))}

    def pick(path, leaf):
      keys = tuple(getattr(k, "key", None) for k in path)
      for start in range(len(keys)):
        hit = by_path.get(keys[start:])
        if hit is not None and hit[1] == leaf.shape:
          return hit[0]
      return replicated

    opt = jax.tree_util.tree_map_with_path(pick, abstract.opt_state)
  if extra_shardings is None:
    extra_shardings = jax.tree.map(lambda _: replicated, abstract.extra)
  return TrainState(replicated, param_shardings, opt, replicated, replicated, extra_shardings)
