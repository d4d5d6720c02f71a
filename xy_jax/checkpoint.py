"""Checkpoints: one orbax layout for every stage.

    CKPT/
      <step>/params/     model parameters (pure nested dict, HF-shaped names, stacked layers)
      <step>/meta/       JSON: model config, model kind, source dtype, stage info
      <step>/...         later items (optimizer state, data iterator) are added by the trainer
      tokenizer.model    the tokenizer the model was trained with

Parameters restore straight into sharded arrays: the target tree carries each leaf's sharding.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import jax
import orbax.checkpoint as ocp
from flax import nnx

from xy_jax.models.model_config import ModelConfig

TOKENIZER_FILE = "tokenizer.model"


class CheckpointError(RuntimeError):
  """A checkpoint is missing, partial or unreadable; the message names the path."""


def manager(path: str, **options) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(os.path.abspath(path), options=ocp.CheckpointManagerOptions(**options))


def save_model(path: str, params: Any, meta: dict[str, Any], step: int = 0,
               tokenizer_file: str | None = None) -> None:
  """Write `params` (a pure dict of arrays) and `meta` as step `step` of a checkpoint at `path`."""
  with manager(path) as mngr:
    mngr.save(step, args=ocp.args.Composite(params=ocp.args.StandardSave(params),
                                            meta=ocp.args.JsonSave(meta)))
    mngr.wait_until_finished()
  if tokenizer_file:
    shutil.copyfile(tokenizer_file, os.path.join(path, TOKENIZER_FILE))


def latest_step(path: str) -> int:
  if not os.path.isdir(path):
    raise CheckpointError(f"{path}: checkpoint directory not found")
  with manager(path) as mngr:
    step = mngr.latest_step()
  if step is None:
    raise CheckpointError(f"{path}: no finished checkpoint step in this directory")
  return step


def load_meta(path: str, step: int | None = None) -> dict[str, Any]:
  step = latest_step(path) if step is None else step
  with manager(path) as mngr:
    try:
      restored = mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
    except Exception as e:  # orbax raises several types for a missing or damaged item
      raise CheckpointError(f"{path}/{step}/meta: unreadable ({type(e).__name__}: {e})") from None
  return dict(restored["meta"])


def restore_params(path: str, abstract_params: Any, step: int | None = None) -> Any:
  """Restore into the shapes, dtypes and shardings of `abstract_params` (ShapeDtypeStructs)."""
  step = latest_step(path) if step is None else step
  with manager(path) as mngr:
    try:
      restored = mngr.restore(step, args=ocp.args.Composite(
          params=ocp.args.StandardRestore(abstract_params)))
    except Exception as e:
      raise CheckpointError(f"{path}/{step}/params: cannot restore ({type(e).__name__}: {e})") from None
  return restored["params"]


def abstract_pure_params(abs_state: nnx.State, shardings: Any) -> Any:
  """Pure-dict ShapeDtypeStructs (with shardings) for restoring into `abs_state`'s layout."""
  shapes = nnx.to_pure_dict(abs_state)
  sh = nnx.to_pure_dict(shardings) if shardings is not None else jax.tree.map(lambda _: None, shapes)
  return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), shapes, sh)


def tokenizer_path(path: str) -> str | None:
  p = os.path.join(path, TOKENIZER_FILE)
  return p if os.path.isfile(p) else None


def model_config_from_meta(meta: dict[str, Any], path: str) -> ModelConfig:
  if "model" not in meta:
    raise CheckpointError(f"{path}: meta has no 'model' config")
  return ModelConfig.from_dict(meta["model"], field=f"{path}:meta.model")
