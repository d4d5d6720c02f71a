"""A side virtual environment built once under ~/.cache/xy_jax and reused while its stamp matches.

The stamp (what the environment was built from) is written last, so a build that died halfway is
never taken for a finished one; a lock file makes concurrent test workers wait for one build.
"""

import contextlib
import fcntl
import json
import os

CACHE_ROOT = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "xy_jax")
STAMP = ".xy_jax_stamp.json"


def python_bin(env_dir):
  return os.path.join(env_dir, "bin", "python")


def is_current(env_dir, wanted: dict) -> bool:
  try:
    with open(os.path.join(env_dir, STAMP)) as f:
      return json.load(f) == wanted and os.path.exists(python_bin(env_dir))
  except (OSError, ValueError):
    return False


def write_stamp(env_dir, wanted: dict) -> None:
  with open(os.path.join(env_dir, STAMP), "w") as f:
    json.dump(wanted, f)


@contextlib.contextmanager
def build_lock(env_dir):
  """Held while (re)building `env_dir`: another worker waits here, then finds it current."""
  os.makedirs(os.path.dirname(env_dir), exist_ok=True)
  with open(env_dir + ".lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    yield
