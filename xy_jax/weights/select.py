"""Choosing parameters by a regex over their dotted paths ("model.layers.mlp.up_proj.lora_a")."""

from __future__ import annotations

import re
from typing import Any

import jax

from xy_jax.errors import ConfigError

ADAPTER_PATTERN = r"\.lora_[ab]$"  # a LoRA model's adapters

Mask = Any  # a tree of bools shaped like the parameters, or None (everything selected)


def path_of(key_path) -> str:
  return ".".join(str(getattr(k, "key", k)) for k in key_path)


def _compile(pattern: str, field: str) -> re.Pattern:
  try:
    return re.compile(pattern)
  except re.error as e:
    raise ConfigError(f"{field}={pattern!r}: not a regular expression ({e})") from None


def selection(params: Any, pattern: str, field: str = "optim.trainable") -> Mask:
  """The mask of parameters whose path matches `pattern` (None: an empty pattern, all selected)."""
  if not pattern:
    return None
  regex = _compile(pattern, field)
  mask = jax.tree_util.tree_map_with_path(lambda p, _: bool(regex.search(path_of(p))), params)
  if not any(jax.tree.leaves(mask)):
    names = ", ".join(path_of(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0][:4])
    raise ConfigError(f"{field}={pattern!r} matches no parameter (paths look like {names}, ...)")
  return mask


def params_matching(tree: dict, pattern: str, field: str = "trainable") -> dict:
  """The leaves of a pure-dict tree whose path `pattern` finds, empty branches dropped: what a LoRA
  run's checkpoint holds."""
  regex = _compile(pattern, field)

  def keep(branch: dict, prefix: str) -> dict:
    out = {}
    for k, v in branch.items():
      name = f"{prefix}{k}"
      if isinstance(v, dict):
        sub = keep(v, name + ".")
        if sub:
          out[k] = sub
      elif regex.search(name):
        out[k] = v
    return out

  return keep(tree, "")
