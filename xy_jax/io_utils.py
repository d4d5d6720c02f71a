"""Small file-system helpers shared by the tools."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile


def check_output(out: str, overwrite: bool = False) -> None:
  """Refuse an existing `out` before any work is done (FileExistsError names it)."""
  if os.path.exists(out) and not overwrite:
    raise FileExistsError(f"{os.path.abspath(out)}: already exists (pass --overwrite to replace it)")


@contextlib.contextmanager
def atomic_output_dir(out: str, overwrite: bool = False):
  """Yield a temporary sibling directory that becomes `out` only if the block succeeds.

  A failure (or Ctrl-C) leaves nothing at `out`: readers never see a half-written model.
  """
  out = os.path.abspath(out)
  check_output(out, overwrite)
  parent = os.path.dirname(out)
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=os.path.basename(out) + ".partial-", dir=parent)
  try:
    yield tmp
    follow_umask(tmp)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  if os.path.exists(out):
    shutil.rmtree(out)
  os.replace(tmp, out)


@contextlib.contextmanager
def atomic_output_file(out: str):
  """Yield a temporary sibling path that replaces `out` only if the block succeeds."""
  out = os.path.abspath(out)
  os.makedirs(os.path.dirname(out), exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=os.path.basename(out) + ".partial-", dir=os.path.dirname(out))
  os.close(fd)
  try:
    yield tmp
    follow_umask(tmp)
  except BaseException:
    os.unlink(tmp)
    raise
  os.replace(tmp, out)


def umask() -> int:
  """The process's umask, read without changing it where Linux shows it (/proc/self/status)."""
  try:
    with open("/proc/self/status") as f:
      found = re.search(r"^Umask:\s*([0-7]+)$", f.read(), re.M)
    if found:
      return int(found.group(1), 8)
  except OSError:
    pass
  mask = os.umask(0o022)
  os.umask(mask)
  return mask


def follow_umask(path: str) -> None:
  """Give `path` (and everything under it) the modes a plain `open` / `mkdir` would have.

  mkdtemp makes 0700 directories and mkstemp (also inside safetensors) 0600 files: private to the
  writer, so a server or a teammate running as another user could not read the result.
  """
  mask = umask()
  if not os.path.isdir(path):
    _plain_mode(path, mask)
    return
  for root, _, files in os.walk(path):
    os.chmod(root, 0o777 & ~mask)
    for name in files:
      _plain_mode(os.path.join(root, name), mask)


def _plain_mode(path: str, mask: int) -> None:
  if not os.path.islink(path):
    executable = os.stat(path).st_mode & 0o111
    os.chmod(path, (0o777 if executable else 0o666) & ~mask)


def source_commit() -> str:
  """The git commit of this xy_jax checkout ("+dirty" with uncommitted changes), or "unknown"."""
  import subprocess
  here = os.path.dirname(os.path.abspath(__file__))
  try:
    head = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True, text=True,
                          timeout=10, check=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=10).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return "unknown"
  return head + ("+dirty" if dirty else "")
