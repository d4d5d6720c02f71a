"""tools/gpu_check.sh as the lent GPU machine runs it, emulated on this CPU machine.

That machine has a fixed Python 3.12 image (tests/tools/gpu_image_env.py builds its stand-in), no
network and no PyPI; only the working tree travels, with the wheels of `make gpu-wheels` in .whl/.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile

import pytest

from tests.tools import gpu_image_env

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECTIONS = {"attention", "train", "buckets", "bench", "decode"}


def _copy_working_tree(dst):
  """What the GPU machine gets: tracked files and untracked ones git does not ignore."""
  names = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.split("\0")
  for name in filter(None, names):
    src = os.path.join(ROOT, name)
    if os.path.isfile(src):  # a file deleted but not yet staged is listed too
      os.makedirs(os.path.dirname(os.path.join(dst, name)), exist_ok=True)
      shutil.copy2(src, os.path.join(dst, name))


def _offline_env(tmp, out, python_dir=None):
  """No index, no config (this machine's adds find-links), nothing of the test run's JAX set-up."""
  env = {k: v for k, v in os.environ.items()
         if not k.startswith(("PIP_", "XLA_", "JAX_", "PYTHON", "VIRTUAL_ENV"))}
  env.update(PIP_NO_INDEX="1", PIP_CONFIG_FILE=os.devnull, TMPDIR=str(tmp), OUT=str(out))
  if python_dir:
    env["PATH"] = f"{python_dir}:{env['PATH']}"
  return env


@pytest.fixture(scope="module")
def image():
  env_dir = gpu_image_env.build()
  assert gpu_image_env.absent_found(gpu_image_env.python_bin(env_dir)) == []
  return os.path.join(env_dir, "bin")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
  """A copy of the working tree with .whl/ filled by `make gpu-wheels` (needs PyPI)."""
  dst = str(tmp_path_factory.mktemp("tree"))
  _copy_working_tree(dst)
  proc = subprocess.run(["make", "-s", "gpu-wheels", f"PYTHON={sys.executable}"], cwd=dst,
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "5 wheels" in proc.stdout, proc.stdout
  return dst


def _read_report(out):
  try:
    with open(os.path.join(out, "report.json")) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


@pytest.mark.heavy
def test_smoke_runs_offline_on_the_emulated_image(image, tree, tmp_path):
  out = tmp_path / "out"
  # A budget for a loaded 2-core machine: every section is to run here, none skipped for time.
  proc = subprocess.run(["bash", "tools/gpu_check.sh", "--smoke", "--budget_s=1500"], cwd=tree,
                        capture_output=True, text=True, env=_offline_env(tmp_path, out, image), timeout=1800)
  text = proc.stdout + proc.stderr
  assert proc.returncode == 0, text[-6000:]
  lines = text.splitlines()
  assert lines[0] == f"python 3.12.1 ({image}/python3)", lines[:6]
  for dist in ("jax 0.10.2", "jaxlib 0.10.2", "torch 2.13.0", "protobuf "):
    assert any(line.startswith(dist) for line in lines[:8]), (dist, lines[:8])
  assert "installing 5 wheels" in text
  report = _read_report(out)
  assert report is not None and report["failed"] == []
  assert set(report["sections"]) == SECTIONS
  assert not any("error" in s or "skipped" in s for s in report["sections"].values()), report["sections"]
  assert os.path.exists(out / "report.md")
  assert "gpu_check: exit 0" in (out / "gpu_check.log").read_text()
  assert not os.path.exists(os.path.join(tree, "gpu_check_out"))


@pytest.mark.heavy
def test_a_killed_run_keeps_the_sections_it_finished(image, tree, tmp_path):
  out = tmp_path / "out"
  with open(tmp_path / "log", "w") as log:
    proc = subprocess.Popen(["bash", "tools/gpu_check.sh", "--smoke"], cwd=tree, stdout=log, stderr=log,
                            env=_offline_env(tmp_path, out, image), start_new_session=True)
    try:
      deadline = time.time() + 900
      seen = None
      while time.time() < deadline and proc.poll() is None:
        seen = _read_report(out)
        if seen and seen.get("sections"):
          break
        time.sleep(0.2)
      assert seen and seen.get("sections"), (tmp_path / "log").read_text()[-4000:]
      os.killpg(proc.pid, signal.SIGKILL)
    finally:
      if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
      proc.wait()
  # Killed mid-run: report.json is rewritten after every section, not only at the end.
  assert proc.returncode == -signal.SIGKILL, (tmp_path / "log").read_text()[-4000:]
  report = _read_report(out)
  assert report is not None
  for name, section in seen["sections"].items():
    assert report["sections"][name] == section
  assert set(report["sections"]) < SECTIONS


def _run_sh(tmp_path, python, **env):
  out = tmp_path / "out"
  e = _offline_env(tmp_path, out)
  e.update(PYTHON=python, **env)
  proc = subprocess.run(["bash", os.path.join(ROOT, "tools", "gpu_check.sh"), "--smoke"], capture_output=True,
                        text=True, env=e, timeout=120)
  return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.parametrize("version", ["4.25.3", "5.28.2", "3.20.3"])
def test_an_old_protobuf_stops_it_with_one_clear_line(tmp_path, version):
  rc, text = _run_sh(tmp_path, sys.executable, XY_PROTOBUF_VERSION_OVERRIDE=version)
  assert rc != 0
  assert f"gpu_check: protobuf {version} on this image; grain needs protobuf >= 5.28.3" in text
  assert "running:" not in text
  assert "grain needs" in (tmp_path / "out" / "gpu_check.log").read_text()


def _no_site_python(tmp_path):
  """The test's python without site-packages: no pip, no grain, no numpy."""
  path = tmp_path / "python_no_site"
  path.write_text(f'#!/bin/sh\nexec "{sys.executable}" -S "$@"\n')
  path.chmod(0o755)
  return str(path)


def test_missing_wheels_are_named_before_anything_runs(tmp_path):
  empty = tmp_path / "no_wheels"
  empty.mkdir()
  rc, text = _run_sh(tmp_path, _no_site_python(tmp_path), XY_PROTOBUF_VERSION_OVERRIDE="5.28.3",
                     XY_GPU_WHEEL_DIR=str(empty))
  assert rc != 0
  assert "missing on this image: grain array_record portpicker ml_collections tensorboardX" in text
  assert "running:" not in text


def test_without_pip_the_wheels_are_unpacked(tmp_path):
  wheels = tmp_path / "wheels"
  wheels.mkdir()
  for dist, module in (("grain", "grain/__init__.py"), ("array_record", "array_record/__init__.py"),
                       ("portpicker", "portpicker.py"), ("ml_collections", "ml_collections/__init__.py"),
                       ("tensorboardX", "tensorboardX/__init__.py")):
    with zipfile.ZipFile(wheels / f"{dist}-0.0.0-py3-none-any.whl", "w") as z:
      z.writestr(module, "")
  rc, text = _run_sh(tmp_path, _no_site_python(tmp_path), XY_PROTOBUF_VERSION_OVERRIDE="5.28.3",
                     XY_GPU_WHEEL_DIR=str(wheels))
  # It gets as far as tools/gpu_check.py, which this python (no numpy) cannot run.
  assert "installing 5 wheels" in text and "missing on this image" not in text
  assert "running:" in text and rc != 0
  assert os.path.exists(tmp_path / "xy_jax_gpu_wheels" / "portpicker.py")
