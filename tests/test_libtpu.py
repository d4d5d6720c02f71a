"""libtpu belongs to the planner: other xy_jax processes leave it unloaded on a host without a TPU
(loading it takes a host-wide lock), and the planner names whoever holds that lock."""

import contextlib
import os
import subprocess
import sys

import pytest

import xy_jax
from tests.train.train_helpers import ROOT
from xy_jax.plan.train import LIBTPU_LOCKFILE, lock_holders, lock_taken

HOLD = """import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_CREAT | os.O_RDWR, 0o644)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # libtpu's kind of lock
print("held", flush=True)
time.sleep(120)
"""


def _env():
  """A user's shell: no JAX_PLATFORMS, and libtpu's lock in force."""
  env = {k: v for k, v in os.environ.items()
         if k not in ("JAX_PLATFORMS", "ALLOW_MULTIPLE_LIBTPU_LOAD", "XLA_FLAGS")}
  return {**env, "PYTHONUNBUFFERED": "1"}


@contextlib.contextmanager
def _held(path):
  """A process holding `path` locked, as libtpu holds its lock file (skips if it cannot)."""
  proc = subprocess.Popen([sys.executable, "-c", HOLD, path], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True)
  try:
    if proc.stdout.readline().strip() != "held":
      pytest.skip(f"{path}: could not lock it (another process holds it)")
    yield proc.pid
  finally:
    proc.kill()
    proc.wait()


def _needs_libtpu_and_no_tpu():
  pytest.importorskip("libtpu", reason="the tpu extra (libtpu) is not installed")
  if xy_jax.tpu_attached():
    pytest.skip("this host has a TPU: JAX loads libtpu here by design")


def test_an_xy_jax_process_leaves_libtpu_unloaded():
  _needs_libtpu_and_no_tpu()
  code = ("import xy_jax.cli, jax; jax.devices(); "
          "print(any('libtpu' in line for line in open('/proc/self/maps')))")
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(),
                        cwd=ROOT, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert proc.stdout.strip() == "False"


def test_lock_holders_names_the_process_that_locks_a_file(tmp_path):
  path = str(tmp_path / "lockfile")
  with _held(path) as pid:
    assert lock_holders(path) == [pid]
    assert f"is held by process {pid} ({sys.executable} -c import fcntl" in lock_taken(path)
  assert lock_holders(path) == []


def test_the_planner_names_the_process_that_holds_libtpus_lock():
  _needs_libtpu_and_no_tpu()
  with _held(LIBTPU_LOCKFILE) as pid:
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "plan.py"),
                           f"--config={ROOT}/configs/pretrain_tiny.py", "--topology=v5p:2x2x1"],
                          capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=300)
  assert proc.returncode == 2, proc.stderr[-2000:]
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith(f"error: --topology='v5p:2x2x1': libtpu's lock {LIBTPU_LOCKFILE} is held by "
                         f"process {pid} ({sys.executable} -c import fcntl"), last
  assert "ALLOW_MULTIPLE_LIBTPU_LOAD=1" in last
