"""Pins: exactly which weights of another run a run stands on.

A run that stands on another run's weights (a LoRA base, a DPO or PPO reference, a PPO critic or
reward model) pins them (`Pins`): the step it read and a digest of that step's parameter files,
recorded in its checkpoints. Resumes and readers take exactly that step and check the digest; a
step that is gone, unreadable or changed stops them with one line naming the source, never a
silent switch to other weights.
"""

from __future__ import annotations

import hashlib
import os
import struct
from typing import Any, Callable

from xy_jax.errors import CheckpointError, ConfigError
from xy_jax.weights import layout


class SourceChanged(ConfigError):
  """Weights a run or checkpoint stands on are gone or differ from the ones it pinned."""


# The digest must be cheap for a 70B checkpoint (140-280 GB, many hosts' files) yet see any re-save:
# it covers every file's relative path and size, small files (orbax metadata and manifests, JSON
# configs) and each safetensors header whole, and large files by 8 blocks of 64 KiB spread over
# them: about 0.5 MiB read per large file. Training changes every weight, so every block; orbax
# names a save's data files afresh and its manifests (hashed whole) list them. Hashing every byte
# would take minutes per read of a 70B base; modification times change on a mere copy.
WHOLE_FILE_BYTES = 1 << 20
BLOCK_BYTES, BLOCKS = 1 << 16, 8
HF_FILES = (".safetensors", ".bin", ".json")  # what load_hf reads: weights, index, config


def _hash_file(h, path: str, size: int) -> None:
  with open(path, "rb") as f:
    if path.endswith(".safetensors") and size >= 8:
      (n,) = struct.unpack("<Q", f.read(8))
      h.update(f.read(min(n, size - 8)))
    if size <= WHOLE_FILE_BYTES:
      f.seek(0)
      h.update(f.read())
      return
    for i in range(BLOCKS):
      f.seek((size - BLOCK_BYTES) * i // (BLOCKS - 1))
      h.update(f.read(BLOCK_BYTES))


def files_digest(root: str, names: list[str]) -> str:
  """sha256 over the files `names` (relative to `root`): paths, sizes, sampled contents."""
  h = hashlib.sha256()
  for name in sorted(names):
    full = os.path.join(root, name)
    size = os.path.getsize(full)
    h.update(f"{name}\0{size}\0".encode())
    _hash_file(h, full, size)
  return "sha256:" + h.hexdigest()


def step_digest(path: str, step: int) -> str:
  """The digest of a step's parameters (every file under `<step>/params/`)."""
  root = os.path.join(path, str(step), "params")
  names = [os.path.relpath(os.path.join(d, f), root) for d, _, files in os.walk(root) for f in files]
  if not names:
    raise CheckpointError(f"{root}: no parameter files")
  return files_digest(root, names)


def hf_digest(path: str) -> str:
  """The digest of an HF directory's config and weight files."""
  names = [n for n in os.listdir(path) if n.endswith(HF_FILES) and os.path.isfile(os.path.join(path, n))]
  if not names:
    raise CheckpointError(f"{path}: no config or weight files")
  return files_digest(path, names)


def steps_of(path: str) -> list[int]:
  """The finished steps in `path`, oldest first ([] when it is not a directory)."""
  if not os.path.isdir(path):
    return []
  with layout.manager(path) as mngr:
    return sorted(mngr.all_steps())


def _readable_step(path: str, step: int) -> None:
  layout.read_meta(path, step)
  layout.stored_arrays(os.path.join(path, str(step)), "params")


def pin_checkpoint(path: str, log: Callable[[str], None] = layout.stderr) -> dict[str, Any]:
  """{"checkpoint", "step", "digest"} of the newest step whose meta and parameter metadata read."""
  path = os.path.abspath(path)
  step = layout.newest_readable(path, lambda s: _readable_step(path, s), log=log)[0]
  return {"checkpoint": path, "step": step, "digest": step_digest(path, step)}


def pin_hf(path: str) -> dict[str, Any]:
  path = os.path.abspath(path)
  if not os.path.isdir(path):
    raise CheckpointError(f"{path}: Hugging Face directory not found")
  return {"hf": path, "digest": hf_digest(path)}


def _short(digest: str) -> str:
  return digest.removeprefix("sha256:")[:12]


def check_pin(pin: dict[str, Any], field: str, user: str) -> None:
  """SourceChanged (one line: `field`, the source, what changed) unless the weights `pin` names are
  still there and unchanged. `user`: who stands on them ("this run", "the LoRA checkpoint X/6")."""
  where = pin.get("checkpoint") or pin.get("hf")
  step = pin.get("step")
  at = f" step {step}" if step is not None else ""
  if not os.path.isdir(where):
    raise SourceChanged(f"{field}: {where} is gone (moved or deleted?); {user} was built on its"
                        f"{at or ' weights'}: put it back at that path")
  try:
    if step is not None:
      steps = steps_of(where)
      if step not in steps:
        raise SourceChanged(f"{field}: {where} step {step}: gone (steps now {steps}); {user} was "
                            "built on that step: restore it, or start a new run")
      now = step_digest(where, step)
    else:
      now = hf_digest(where)
  except (CheckpointError, OSError) as e:
    raise SourceChanged(f"{field}: {where}{at}: unreadable ({e}); {user} was built on it") from None
  if now != pin["digest"]:
    raise SourceChanged(f"{field}: {where}{at}: content changed since {user} pinned it (digest "
                        f"{_short(now)} != {_short(pin['digest'])}); restore those weights, or start "
                        "a new run")


PINS_META = "pins"  # the key of a run's pins in its checkpoints' stage meta


def recorded_pins(meta: dict[str, Any]) -> dict[str, dict]:
  return dict(meta.get("stage_meta", {}).get(PINS_META) or {})


class Pins:
  """The other runs' weights a run stands on: config field -> pin ({"checkpoint", "step",
  "digest"} or {"hf", "digest"}).

  A source is pinned the first time the run reads it (its newest readable step), one pin per
  directory (a PPO actor and its reference are the same step). The pins go into the run's
  checkpoints; a resume holds to them (`hold`), and every read checks the pinned step is still
  there, unchanged.
  """

  def __init__(self, log: Callable[[str], None] = layout.stderr):
    self.log = log
    self.pinned: dict[str, dict] = {}  # recorded in the run's checkpoints (stage meta)
    self._held: dict[str, dict] = {}
    self._checked: set[tuple] = set()

  def hold(self, recorded: dict[str, dict]) -> None:
    """Hold to the pins a resumed checkpoint recorded."""
    for field, pin in recorded.items():
      if field in self.pinned and self.pinned[field] != pin:
        raise SourceChanged(f"{field}: read before the resume, at {self.pinned[field]}, not at the "
                            f"pinned {pin}")
      self._held[field] = self.pinned[field] = dict(pin)

  def checkpoint(self, field: str, path: str) -> dict:
    """The pin of checkpoint directory `path` read as `field`, checked."""
    return self._resolve(field, "checkpoint", os.path.abspath(path),
                         lambda p: pin_checkpoint(p, self.log))

  def hf(self, field: str, path: str) -> dict:
    return self._resolve(field, "hf", os.path.abspath(path), pin_hf)

  def of(self, source: dict) -> dict:
    """The step and digest pinned for `source` ({"checkpoint": dir} or {"hf": dir}); {} if none."""
    for pin in self.pinned.values():
      for key in ("checkpoint", "hf"):
        if source.get(key) and pin.get(key) == source[key]:
          return {k: pin[k] for k in ("step", "digest") if k in pin}
    return {}

  def _resolve(self, field: str, key: str, path: str, fresh: Callable[[str], dict]) -> dict:
    pin = self._held.get(field)
    if pin is not None and pin.get(key) != path:
      self.log(f"{field}: now {path}; this run started on {pin.get('checkpoint') or pin.get('hf')}")
      pin = None
    if pin is None:
      pin = next((p for p in self.pinned.values() if p.get(key) == path), None)
    if pin is None:
      pin = fresh(path)
      self._checked.add(tuple(sorted(pin.items())))
      self.log(f"{field}: pinned {path}" + (f" step {pin['step']}" if "step" in pin else "")
               + f" (digest {_short(pin['digest'])})")
    self._check(field, pin)
    self.pinned[field] = pin
    return pin

  def _check(self, field: str, pin: dict) -> None:
    key = tuple(sorted(pin.items()))
    if key in self._checked:
      return
    check_pin(pin, field, "this run")
    self._checked.add(key)
    newest = steps_of(pin["checkpoint"])[-1:] if "step" in pin else []
    if newest and newest[0] != pin["step"]:
      self.log(f"{field}: step {pin['step']} of {pin['checkpoint']}, pinned when this run started "
               f"(its newest step is {newest[0]})")


def run_pins(checkpoints: str | None, log: Callable[[str], None] = layout.stderr) -> Pins:
  """The pins of the run whose checkpoints are in `checkpoints`: held to the ones its newest
  readable step recorded (a resume), else empty (pinned as sources are first read)."""
  pins = Pins(log)
  if checkpoints and steps_of(checkpoints):
    try:  # an unreadable run is the restore's to report
      meta = layout.load_meta(checkpoints, log=lambda _: None)
    except CheckpointError:
      return pins
    pins.hold(recorded_pins(meta))
  return pins
