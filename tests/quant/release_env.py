"""A virtual environment with the HF quantised-model loaders (gptqmodel, optimum, bitsandbytes).

gptqmodel 7.7 declares torch>=2.14.1 while the test extra pins the CPU build of torch 2.13, so it
cannot join the main venv's resolver. This venv sees the main environment's packages through a
.pth file and adds the loaders with --no-deps beside them (their pure-Python dependencies too).
Built once under ~/.cache/xy_jax/ and rebuilt when PACKAGES or the interpreter change:

  python -m tests.quant.release_env [--force]
"""

import os
import shutil
import site
import subprocess
import sys
import sysconfig
import tempfile

from tests.quant import cached_env
from tests.quant.cached_env import CACHE_ROOT

ENV_DIR = os.path.join(CACHE_ROOT, "hf_release_loaders")
PACKAGES = ("gptqmodel==7.7.0", "optimum==2.3.0", "bitsandbytes==0.50.2", "threadpoolctl",
            "device-smi", "pypcre", "tokenicer", "logbar", "defuser", "dill")


def python_bin(env_dir=ENV_DIR):
  return cached_env.python_bin(env_dir)


def _wanted():
  return {"python": sys.executable, "site": sysconfig.get_paths()["purelib"], "packages": list(PACKAGES)}


def is_current(env_dir=ENV_DIR):
  return cached_env.is_current(env_dir, _wanted())


def build(env_dir=ENV_DIR, force=False):
  """The environment's directory, built first unless a current one is there."""
  parent = os.path.dirname(env_dir)
  with cached_env.build_lock(env_dir):
    if not force and is_current(env_dir):
      return env_dir
    tmp = tempfile.mkdtemp(prefix=os.path.basename(env_dir) + ".build-", dir=parent)
    try:
      subprocess.run([sys.executable, "-m", "venv", "--without-pip", tmp], check=True)
      purelib = subprocess.run([python_bin(tmp), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip()
      with open(os.path.join(purelib, "xy_jax_main_env.pth"), "w") as f:
        f.write("\n".join([sysconfig.get_paths()["purelib"], *site.getsitepackages()]) + "\n")
      subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "install", "--quiet",
                      "--no-deps", "--target", purelib, *PACKAGES], check=True)
      cached_env.write_stamp(tmp, _wanted())
      old = env_dir + ".old-" + os.path.basename(tmp)
      if os.path.exists(env_dir):
        os.rename(env_dir, old)
      os.rename(tmp, env_dir)
      shutil.rmtree(old, ignore_errors=True)
    except BaseException:
      shutil.rmtree(tmp, ignore_errors=True)
      raise
  return env_dir


if __name__ == "__main__":
  print(build(force="--force" in sys.argv[1:]))
