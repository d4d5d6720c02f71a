"""A Python 3.12 virtual environment emulating the lent GPU machine's fixed image, on this CPU machine.

The image has no network and no PyPI; it has the packages in PACKAGES and lacks those in ABSENT,
which reach it only as wheels in .whl/ (`make gpu-wheels`). Built once and cached outside the repo;
a changed package list rebuilds it. Run as a script to build it ahead of the tests:

  python tests/tools/gpu_image_env.py [--force]
"""

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

CACHE_ROOT = os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "xy_jax")
ENV_DIR = os.path.join(CACHE_ROOT, "gpu_image_py312")
STAMP = ".xy_jax_stamp.json"
PYTHON_VERSION = "3.12.1"

# The image has jax 0.11.2 with the CUDA 13 plugin; PyPI's newest jax that this machine reaches is
# 0.10.2, and without a CUDA plugin it runs on the CPU. torch's cp312 wheel on PyPI is the CUDA
# build (with the nvidia-* wheels, several GB), as on the image; it too runs on the CPU.
PACKAGES = (
  "jax==0.10.2", "jaxlib==0.10.2", "flax", "optax", "orbax-checkpoint", "chex", "absl-py",
  "transformers>=5,<6", "torch==2.13.0", "peft", "safetensors", "sentencepiece", "numpy",
  "matplotlib", "tqdm", "tensorboard", "pyarrow", "protobuf>=5.28.3", "cloudpickle", "etils[epath,epy]",
  "psutil", "PyYAML", "packaging",
)
# Import names of what the image lacks.
ABSENT = ("grain", "array_record", "portpicker", "ml_collections", "tensorboardX")
ABSENT_DISTS = ("grain", "array-record", "portpicker", "ml-collections", "tensorboardX")


def python_bin(env_dir=ENV_DIR):
  return os.path.join(env_dir, "bin", "python3")


def _base_python():
  env = dict(os.environ, PYENV_VERSION=PYTHON_VERSION)
  out = subprocess.run(["python3.12", "-c", "import sys; print(sys.executable)"], env=env, check=True,
                       capture_output=True, text=True)
  return out.stdout.strip()


def _wanted():
  return {"python": PYTHON_VERSION, "packages": list(PACKAGES), "absent": list(ABSENT)}


def _read_stamp(env_dir):
  try:
    with open(os.path.join(env_dir, STAMP)) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def is_current(env_dir=ENV_DIR):
  stamp = _read_stamp(env_dir)
  return bool(stamp) and stamp.get("wanted") == _wanted() and os.path.exists(python_bin(env_dir))


def absent_found(py):
  """The ABSENT modules that `py` can import (should be none)."""
  code = ("import importlib.util, sys; "
          "print(' '.join(m for m in sys.argv[1:] if importlib.util.find_spec(m)))")
  out = subprocess.run([py, "-c", code, *ABSENT], check=True, capture_output=True, text=True)
  return out.stdout.split()


def _fix_scripts(bin_dir, old, new):
  # Console scripts carry the build path in their shebang; the directory is renamed after the build.
  for name in os.listdir(bin_dir):
    path = os.path.join(bin_dir, name)
    if os.path.islink(path) or not os.path.isfile(path):
      continue
    with open(path, "rb") as f:
      data = f.read()
    if old.encode() in data[:4096]:
      with open(path, "wb") as f:
        f.write(data.replace(old.encode(), new.encode()))


def _dir_bytes(path):
  total = 0
  for root, _, files in os.walk(path):
    for name in files:
      p = os.path.join(root, name)
      if not os.path.islink(p):
        total += os.path.getsize(p)
  return total


def _clean_stale(env_dir):
  # What killed builds left behind; called with the lock held, so no build is using them.
  parent, base = os.path.split(env_dir)
  for name in os.listdir(parent):
    if name.startswith((base + ".build-", base + ".old-")):
      shutil.rmtree(os.path.join(parent, name), ignore_errors=True)


def build(env_dir=ENV_DIR, force=False, log=None):
  """Builds the environment unless a current one is there; returns its directory. `log`: a file
  for pip's output (default: this process's stdout/stderr, at the descriptor level)."""
  parent = os.path.dirname(env_dir)
  os.makedirs(parent, exist_ok=True)
  with open(env_dir + ".lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)  # another worker may be building it; wait and then reuse it
    _clean_stale(env_dir)
    if not force and is_current(env_dir):
      return env_dir
    start = time.time()
    tmp = tempfile.mkdtemp(prefix=os.path.basename(env_dir) + ".build-", dir=parent)
    try:
      subprocess.run([_base_python(), "-m", "venv", tmp], check=True)
      py = python_bin(tmp)
      pip = [py, "-m", "pip", "--disable-pip-version-check"]
      subprocess.run([*pip, "install", "-q", "--upgrade", "pip"], check=True, stdout=log, stderr=log)
      subprocess.run([*pip, "install", *PACKAGES], check=True, stdout=log, stderr=log)
      present = absent_found(py)
      if present:
        print(f"removing what the image lacks: {present}", file=sys.stderr)
        subprocess.run([*pip, "uninstall", "-y", *ABSENT_DISTS], check=True, stdout=log, stderr=log)
      left = absent_found(py)
      if left:
        raise RuntimeError(f"still importable after uninstall: {left}")
      freeze = subprocess.run([*pip, "freeze"], check=True, capture_output=True, text=True).stdout
      stamp = {"wanted": _wanted(), "build_seconds": round(time.time() - start, 1),
               "bytes": _dir_bytes(tmp), "freeze": freeze.split()}
      with open(os.path.join(tmp, STAMP), "w") as f:
        json.dump(stamp, f, indent=1)
      _fix_scripts(os.path.join(tmp, "bin"), tmp, env_dir)
      if os.path.exists(env_dir):
        old = tempfile.mkdtemp(prefix=os.path.basename(env_dir) + ".old-", dir=parent)
        os.rename(env_dir, os.path.join(old, "env"))
        os.rename(tmp, env_dir)
        shutil.rmtree(old, ignore_errors=True)
      else:
        os.rename(tmp, env_dir)
      print(f"built {env_dir} in {stamp['build_seconds']} s, {stamp['bytes'] / 2**30:.2f} GiB", file=sys.stderr)
    finally:
      if os.path.exists(tmp):
        shutil.rmtree(tmp, ignore_errors=True)
  return env_dir


if __name__ == "__main__":
  print(build(force="--force" in sys.argv[1:]))
  print(json.dumps({k: v for k, v in _read_stamp(ENV_DIR).items() if k != "freeze"}))
