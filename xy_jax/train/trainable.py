"""Training a subset of the parameters: `optim.trainable`, a regex over parameter paths
("model.embed_tokens.weight", "lm_head.weight", "model.layers.mlp.up_proj.weight", ...).

Frozen parameters take no part in the gradient (it is taken with respect to the trainable ones
only, so no gradient buffer exists for them), get no optimizer state (the optimizer sees the
trainable tree, frozen leaves replaced by optax's empty `MaskedNode`) and are never written: they
stay bit-identical. `optim.frozen_dtype` may hold them in bfloat16. With an empty pattern every
parameter trains and nothing here changes the state's layout.
"""

from __future__ import annotations

from typing import Any

import jax
import optax

from xy_jax.weights.cast import cast_floats
from xy_jax.weights.select import Mask, path_of


def _is_masked(x) -> bool:
  return isinstance(x, optax.MaskedNode)


def trainable_part(tree: Any, mask: Mask) -> Any:
  """`tree` with frozen leaves replaced by MaskedNode (no leaves); `tree` itself when mask is None."""
  if mask is None:
    return tree
  return jax.tree.map(lambda x, m: x if m else optax.MaskedNode(), tree, mask)


def frozen_part(tree: Any, mask: Mask) -> Any:
  return jax.tree.map(lambda x, m: optax.MaskedNode() if m else x, tree, mask)


def merge(trainable: Any, frozen: Any, mask: Mask) -> Any:
  """The full tree from its two parts."""
  if mask is None:
    return trainable
  return jax.tree.map(lambda m, t, f: t if m else f, mask, trainable, frozen, is_leaf=_is_masked)


def cast_untrained(params: Any, mask: Mask, dtype: str | None) -> Any:
  """Frozen floating-point leaves in `dtype` (None: unchanged). Integer weights' scales keep their
  dtype: they are part of the quantised format (QLoRA), read the same way by every loader."""
  if mask is None or not dtype:
    return params
  trains = {path_of(p): m for p, m in jax.tree_util.tree_flatten_with_path(mask)[0]}
  return cast_floats(params, dtype, keep=lambda path: trains[path] or path.endswith("weight_scale"))


def count(params: Any, mask: Mask) -> tuple[int, int]:
  """(trainable, total) parameter counts."""
  sizes = [x.size for x in jax.tree.leaves(params)]
  if mask is None:
    return sum(sizes), sum(sizes)
  return sum(s for s, m in zip(sizes, jax.tree.leaves(mask)) if m), sum(sizes)


def carry_over(fresh: Any, old: Any) -> tuple[Any, int]:
  """Optimizer state for a new selection: every leaf of `fresh` whose path and shape exist in
  `old` (a parameter trainable before and now, and the counters) takes the old value.
  Returns (state, number of leaves started fresh)."""
  old_leaves = {jax.tree_util.keystr(p): x for p, x in jax.tree_util.tree_flatten_with_path(old)[0]}
  started = 0

  def pick(path, x):
    nonlocal started
    o = old_leaves.get(jax.tree_util.keystr(path))
    if o is not None and o.shape == x.shape:
      return o.astype(x.dtype)
    started += 1
    return x

  return jax.tree_util.tree_map_with_path(pick, fresh), started
