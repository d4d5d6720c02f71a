"""Debian's chromium-headless-shell for the browser tests: found, or installed once with apt-get
under a host-wide lock (parallel test workers wait for the first). Never `playwright install`: the
browser comes from the distribution, and playwright drives it through `executable_path`."""

import fcntl
import os
import shutil
import subprocess
import tempfile

import pytest

PACKAGE = "chromium-headless-shell"
NAMES = ("chromium-headless-shell", "headless_shell")


def _find() -> str | None:
  for name in NAMES:
    if shutil.which(name):
      return shutil.which(name)
  try:
    listed = subprocess.run(["dpkg", "-L", PACKAGE], capture_output=True, text=True, timeout=60).stdout
  except (OSError, subprocess.TimeoutExpired):
    return None
  for path in listed.splitlines():
    if os.path.basename(path) in NAMES and os.path.isfile(path) and os.access(path, os.X_OK):
      return path
  return None


def _apt(*args: str) -> subprocess.CompletedProcess:
  env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
  return subprocess.run(["apt-get", *args], capture_output=True, text=True, env=env, timeout=900)


def chromium_path() -> str:
  found = _find()
  if found:
    return found
  if shutil.which("apt-get") is None or os.geteuid() != 0:
    pytest.skip(f"{PACKAGE} is not installed and apt-get cannot install it here (no apt-get or not root)")
  with open(os.path.join(tempfile.gettempdir(), "xy_jax_chromium_install.lock"), "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # another worker may be installing it right now
    found = _find()
    if found:
      return found
    proc = _apt("install", "-y", "--no-install-recommends", PACKAGE)
    if proc.returncode != 0:  # a stale package list: refresh once
      _apt("update")
      proc = _apt("install", "-y", "--no-install-recommends", PACKAGE)
    assert proc.returncode == 0, f"apt-get install {PACKAGE} failed: {proc.stderr[-1500:]}"
  found = _find()
  assert found, f"{PACKAGE} installed but no {' or '.join(NAMES)} binary in `dpkg -L {PACKAGE}`"
  return found
