"""Checkpoints: one orbax layout for every stage.

    CKPT/
      <step>/params/     model parameters (pure nested dict, HF-shaped names, stacked layers)
      <step>/meta/       JSON: model config, model kind, source dtype, stage info
      <step>/...         later items (optimizer state, data iterator) are added by the trainer
      tokenizer.model    the tokenizer the model was trained with

Parameters restore straight into sharded arrays: the target tree carries each leaf's sharding.

Readers take the newest *readable* step (and say which): a damaged newest step falls back to the
one before it. The trainer moves a step that fails to restore aside to `<step>.corrupt` (kept for
inspection) so the run can save over that step number again. A step whose arrays do not match the
run's config (another model shape, another optimizer) is a config error, never "corrupt": nothing
is moved.

The weights of other runs a run stands on are pinned: weights/pins.py.
"""

from __future__ import annotations

import os
import shutil
import sys
from typing import Any, Callable

import jax
import orbax.checkpoint as ocp
from absl import logging
from flax import nnx

from xy_jax.errors import CheckpointError, ConfigError
from xy_jax.models.model_config import ModelConfig
from xy_jax.orbax_errors import io_failure

TOKENIZER_FILE = "tokenizer.model"


def manager(path: str, **options) -> ocp.CheckpointManager:
  return ocp.CheckpointManager(os.path.abspath(path), options=ocp.CheckpointManagerOptions(**options))


def save_model(path: str, params: Any, meta: dict[str, Any], step: int = 0,
               tokenizer_file: str | None = None) -> None:
  """Write `params` (a pure dict of arrays) and `meta` as step `step` of a checkpoint at `path`."""
  try:
    with manager(path) as mngr:
      mngr.save(step, args=ocp.args.Composite(params=ocp.args.StandardSave(params),
                                              meta=ocp.args.JsonSave(meta)))
      mngr.wait_until_finished()
  except Exception as e:
    raise CheckpointError(f"writing {path} failed ({io_failure(e)})") from None
  if tokenizer_file:
    shutil.copyfile(tokenizer_file, os.path.join(path, TOKENIZER_FILE))


def stderr(msg: str) -> None:
  print(msg, file=sys.stderr, flush=True)


def steps_newest_first(path: str) -> list[int]:
  if not os.path.isdir(path):
    raise CheckpointError(f"{path}: checkpoint directory not found")
  with manager(path) as mngr:
    steps = sorted(mngr.all_steps(), reverse=True)
  if not steps:
    raise CheckpointError(f"{path}: no finished checkpoint step in this directory")
  return steps


def latest_step(path: str) -> int:
  return steps_newest_first(path)[0]


def newest_readable(path: str, read: Callable[[int], Any], step: int | None = None,
                    log: Callable[[str], None] = stderr) -> tuple[int, Any]:
  """(step, read(step)) for `step`, or for the newest step `read` succeeds on, saying which.

  `read` raises CheckpointError for a damaged step; older steps are tried in turn.
  """
  if step is not None:
    return step, read(step)
  steps = steps_newest_first(path)
  for i, s in enumerate(steps):
    try:
      value = read(s)
    except CheckpointError as e:
      log(f"checkpoint {path}/{s} is unreadable ({e}); "
          + (f"trying step {steps[i + 1]}" if i + 1 < len(steps) else "no older step left"))
      continue
    if i:
      log(f"using step {s} of {path}, the newest readable step")
    return s, value
  raise CheckpointError(f"{path}: no readable checkpoint among steps {steps}")


def read_meta(path: str, step: int) -> dict[str, Any]:
  with manager(path) as mngr:
    try:
      restored = mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
    except Exception as e:  # orbax raises several types for a missing or damaged item
      raise CheckpointError(f"{path}/{step}/meta: {io_failure(e)}") from None
  return dict(restored["meta"])


def load_meta(path: str, step: int | None = None, log: Callable[[str], None] = stderr) -> dict[str, Any]:
  """The meta of `step`, or of the newest step whose meta reads."""
  return newest_readable(path, lambda s: read_meta(path, s), step, log)[1]


def restore_params(path: str, abstract_params: Any, step: int) -> Any:
  """Restore into the shapes, dtypes and shardings of `abstract_params` (ShapeDtypeStructs)."""
  with manager(path) as mngr:
    try:
      restored = mngr.restore(step, args=ocp.args.Composite(
          params=ocp.args.StandardRestore(abstract_params)))
    except Exception as e:
      raise CheckpointError(f"{path}/{step}/params: {io_failure(e)}") from None
  return restored["params"]


def stored_arrays(step_dir: str, item: str) -> list[tuple[int, ...]]:
  """Shapes of the arrays saved in `step_dir/item`, in tree order (read from orbax metadata)."""
  verbosity = logging.get_verbosity()
  logging.set_verbosity(logging.ERROR)  # orbax warns about the step-level metadata it looks for
  try:
    md = ocp.StandardCheckpointer().metadata(os.path.join(step_dir, item))
    tree = md.item_metadata.tree if md is not None and md.item_metadata is not None else None
  except Exception as e:
    raise CheckpointError(f"{step_dir}/{item}: metadata unreadable ({io_failure(e)})") from None
  finally:
    logging.set_verbosity(verbosity)
  if tree is None:
    raise CheckpointError(f"{step_dir}/{item}: metadata unreadable")
  return [tuple(a.shape) for a in jax.tree.leaves(tree)]


SHAPE_FIELDS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                "num_attention_heads", "num_key_value_heads", "head_dim")


def model_shape_difference(stored: dict[str, Any], current: dict[str, Any]) -> str | None:
  """'hidden_size 128, the config says 64' for the first shape field that differs, else None."""
  for name in SHAPE_FIELDS:
    if stored.get(name) != current.get(name):
      return f"{name} {stored.get(name)}, the config says {current.get(name)}"
  return None


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
  back from the newest step: a step that fails to restore is moved aside to `<step>.corrupt` and
  the previous one used; a step that does not fit the run's config stops the run.
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
    try:  # an async save's failure surfaces at the next save or wait
      self.mngr.save(step, args=ocp.args.Composite(
          params=ocp.args.StandardSave(params), train=ocp.args.StandardSave(train),
          data=ocp.args.JsonSave(data_state), meta=ocp.args.JsonSave(meta)),
          metrics=metrics, force=force)
    except Exception as e:
      raise self._save_failed(e) from None

  def wait(self) -> None:
    try:
      self.mngr.wait_until_finished()
    except Exception as e:
      raise self._save_failed(e) from None

  def _save_failed(self, e: Exception) -> CheckpointError:
    steps = self.mngr.all_steps()
    kept = f"step {max(steps)} is the newest complete one" if steps else "no step was completed"
    return CheckpointError(f"saving a checkpoint in {self.directory} failed ({io_failure(e)}); "
                           f"{kept}")

  def _check_fits(self, step: int, meta: dict, expected_model: dict, abstract: dict) -> None:
    """ConfigError when the stored arrays are not the ones this run would restore into."""
    where = f"checkpoint step {step} in {self.directory}"
    if "model" in meta:
      diff = model_shape_difference(meta["model"], expected_model)
      if diff:
        raise ConfigError(f"{where} has {diff}; use a new workdir or the old model shape")
    step_dir = os.path.join(self.directory, str(step))
    for item, target in abstract.items():
      stored = stored_arrays(step_dir, item)
      wanted = [tuple(a.shape) for a in jax.tree.leaves(target)]
      if stored != wanted:
        what = "parameters" if item == "params" else "optimizer state and counters"
        raise ConfigError(
            f"{where}: its {what} hold {len(stored)} arrays, this config's hold {len(wanted)}"
            + ("" if len(stored) != len(wanted) else " of other shapes")
            + " (model, stage or optim settings changed); use a new workdir or the old settings")

  def _move_aside(self, step: int) -> str:
    """Rename a damaged step out of orbax's sight, keeping it for inspection."""
    src = os.path.join(self.directory, str(step))
    dst, n = f"{src}.corrupt", 1
    while os.path.exists(dst):
      dst, n = f"{src}.corrupt-{n}", n + 1
    if jax.process_index() == 0:
      os.rename(src, dst)
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils
      multihost_utils.sync_global_devices(f"move aside checkpoint {step}")
    return dst

  def restore_latest(self, abstract_params: Any, abstract_train: Any, expected_model: dict):
    """(step, params, train, data_state, meta) from the newest readable step, or None (no steps).

    `abstract_train` is the train item's abstract tree, or a function of the step's meta giving
    it (the layout can depend on how the step was saved). Unreadable newer steps are moved aside
    once an older one restores; when none restores, nothing is moved and the run stops (a
    systemic failure must not look like corruption).
    """
    steps = sorted(self.mngr.all_steps(), reverse=True)
    failed: list[tuple[int, str]] = []
    for step in steps:
      try:
        meta = dict(self.mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"])
        train_target = abstract_train(meta) if callable(abstract_train) else abstract_train
        self._check_fits(step, meta, expected_model, {"params": abstract_params, "train": train_target})
        r = self.mngr.restore(step, args=ocp.args.Composite(
            params=ocp.args.StandardRestore(abstract_params),
            train=ocp.args.StandardRestore(train_target),
            data=ocp.args.JsonRestore(), meta=ocp.args.JsonRestore()))
      except ConfigError:
        raise
      except Exception as e:  # a damaged step raises many different error types
        failed.append((step, io_failure(e)))
        continue
      for bad, why in failed:
        dst = self._move_aside(bad)
        self.log(f"checkpoint {self.directory}/{bad} is corrupt or partial ({why}); moved to "
                 f"{dst}; falling back to step {step}")
      if failed:
        self.mngr.reload()
      return step, r["params"], r["train"], dict(r["data"]), dict(r["meta"])
    if failed:
      bad, why = failed[0]
      raise CheckpointError(f"{self.directory}: no readable checkpoint among steps {steps} (step {bad}: "
                            f"{why}); move them away or use a new workdir")
    return None

  def close(self) -> None:
    self.mngr.close()
