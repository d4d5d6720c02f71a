"""One run per workdir: a lock file held by process 0, and metrics that restart with the run.

The lock (`WORKDIR/run.lock`, JSON: host, pid, process start time, since) is created atomically.
A lock whose process is gone on this host (the pid is dead, or now belongs to another process) is
stale and taken over with a line saying so; a live holder, or a holder on another host (which this
host cannot check), stops the run with one line naming it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time

from xy_jax.errors import ConfigError

LOCK_FILE = "run.lock"


class WorkdirBusy(ConfigError):
  """Another run holds the workdir."""


def _start_ticks(pid: int) -> int | None:
  """The process's start time in clock ticks since boot (Linux), to tell a reused pid apart."""
  try:
    with open(f"/proc/{pid}/stat") as f:
      return int(f.read().rsplit(")", 1)[1].split()[19])
  except (OSError, IndexError, ValueError):
    return None


def _alive(pid: int, ticks: int | None) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  now = _start_ticks(pid)
  return ticks is None or now is None or now == ticks


@contextlib.contextmanager
def _guard(workdir: str):
  """Serialises lock checks on this host (the check-then-take-over step must not interleave)."""
  with open(os.path.join(workdir, ".run.lock.guard"), "a") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


class WorkdirLock:
  def __init__(self, workdir: str, log=print):
    self.path = os.path.join(os.path.abspath(workdir), LOCK_FILE)
    self.log = log
    self.record = {"host": socket.gethostname(), "pid": os.getpid(),
                   "start_ticks": _start_ticks(os.getpid()),
                   "since": time.strftime("%Y-%m-%d %H:%M:%S")}
    self.held = False

  def acquire(self) -> None:
    os.makedirs(os.path.dirname(self.path), exist_ok=True)
    with _guard(os.path.dirname(self.path)):
      holder = self._read()
      if holder is not None:
        self._refuse_or_take_over(holder)
      tmp = f"{self.path}.{os.getpid()}"
      with open(tmp, "w") as f:
        json.dump(self.record, f)
      os.replace(tmp, self.path)
    self.held = True

  def _read(self) -> dict | None:
    try:
      with open(self.path) as f:
        holder = json.load(f)
    except FileNotFoundError:
      return None
    except (OSError, ValueError):  # an unreadable lock (e.g. cut short) holds nothing
      self.log(f"{self.path}: unreadable lock file; taking it over")
      return None
    return holder if isinstance(holder, dict) else None

  def _refuse_or_take_over(self, holder: dict) -> None:
    host, pid = holder.get("host"), holder.get("pid")
    who = f"pid {pid} on host {host} (since {holder.get('since', '?')})"
    if host != self.record["host"]:
      raise WorkdirBusy(f"{os.path.dirname(self.path)} is in use by {who}; this host cannot check "
                        f"that process: if that run has ended, delete {self.path}")
    if isinstance(pid, int) and _alive(pid, holder.get("start_ticks")):
      raise WorkdirBusy(f"{os.path.dirname(self.path)} is in use by {who}; wait for it to end or "
                        f"use another --workdir")
    self.log(f"{self.path}: taking over a stale lock from {who}, which is no longer running")

  def release(self) -> None:
    if not self.held:
      return
    self.held = False
    with contextlib.suppress(OSError), _guard(os.path.dirname(self.path)):
      if self._read() == self.record:
        os.unlink(self.path)


def truncate_metrics(workdir: str, step: int) -> int:
  """Drop metrics.jsonl records past `step` (written after the checkpoint a resume restarts from).

  Returns how many were dropped. The file is rewritten through a temporary sibling.
  """
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.isfile(path):
    return 0
  keep, dropped = [], 0
  with open(path, encoding="utf-8", errors="replace") as f:
    for line in f:
      try:
        record_step = json.loads(line).get("step", 0)
      except (ValueError, AttributeError):  # a line cut short by a crash
        dropped += 1
        continue
      if record_step > step:
        dropped += 1
      else:
        keep.append(line if line.endswith("\n") else line + "\n")
  if dropped:
    tmp = path + ".partial"
    with open(tmp, "w", encoding="utf-8") as f:
      f.writelines(keep)
    os.replace(tmp, path)
  return dropped
