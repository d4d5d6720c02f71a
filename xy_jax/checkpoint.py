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


class TrainCheckpointer:
  """Training checkpoints: params, optimizer/counters, data-iterator state and meta per step.

  Keeps the last `keep` steps plus (optionally) the one with the lowest eval loss. Restoring walks
  back from the newest step: a corrupt step is reported and the previous one used.
  """

  def __init__(self, directory: str, keep: int, keep_best: bool, async_save: bool = True,
               log=print):
    from orbax.checkpoint import checkpoint_managers as cm

    policies = [cm.LatestN(keep)]
    if keep_best:
      policies.append(cm.BestN(get_metric_fn=lambda m: m["eval_loss"], reverse=True, n=1,
                               keep_checkpoints_without_metrics=False))
    self.directory = os.path.abspath(directory)
    self.log = log
    self.mngr = ocp.CheckpointManager(self.directory, options=ocp.CheckpointManagerOptions(
        preservation_policy=cm.AnyPreservationPolicy(policies),
        enable_async_checkpointing=async_save, cleanup_tmp_directories=True))

  def save(self, step: int, params: Any, train: Any, data_state: dict, meta: dict,
           metrics: dict | None = None, force: bool = False) -> None:
    self.mngr.save(step, args=ocp.args.Composite(
        params=ocp.args.StandardSave(params), train=ocp.args.StandardSave(train),
        data=ocp.args.JsonSave(data_state), meta=ocp.args.JsonSave(meta)),
        metrics=metrics, force=force)

  def wait(self) -> None:
    self.mngr.wait_until_finished()

  def restore_latest(self, abstract_params: Any, abstract_train: Any):
    """(step, params, train, data_state, meta) from the newest readable step, or None."""
    steps = sorted(self.mngr.all_steps(), reverse=True)
    for i, step in enumerate(steps):
      try:
        r = self.mngr.restore(step, args=ocp.args.Composite(
            params=ocp.args.StandardRestore(abstract_params),
            train=ocp.args.StandardRestore(abstract_train),
            data=ocp.args.JsonRestore(), meta=ocp.args.JsonRestore()))
      except Exception as e:  # a damaged step raises many different error types
        detail = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        nxt = f"falling back to step {steps[i + 1]}" if i + 1 < len(steps) else "no older step left"
        self.log(f"checkpoint {self.directory}/{step} is corrupt or partial ({detail}); {nxt}")
        continue
      return step, r["params"], r["train"], dict(r["data"]), dict(r["meta"])
    if steps:
      raise CheckpointError(f"{self.directory}: no readable checkpoint among steps {steps}")
    return None

  def close(self) -> None:
    self.mngr.close()
