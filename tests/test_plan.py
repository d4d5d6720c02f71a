"""tools/plan.py: AOT compilation for a TPU topology on a CPU-only machine (needs libtpu)."""

import os
import subprocess
import sys

import pytest

from tests.train.train_helpers import ROOT

pytest.importorskip("libtpu", reason="the tpu extra (libtpu) is not installed")


def _plan(*args):
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  env.pop("XLA_FLAGS", None)
  return subprocess.run([sys.executable, os.path.join(ROOT, "tools", "plan.py"), *args],
                        capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)


@pytest.mark.heavy
def test_plan_tiny_config_on_a_small_v5p_slice():
  proc = _plan(f"--config={ROOT}/configs/pretrain_tiny.py", "--topology=v5p:2x2x1")
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = proc.stdout.strip().splitlines()
  assert lines[0].startswith("plan: ") and "4 chips" in lines[0]
  assert lines[1] == "mesh: data=1 fsdp=4 tensor=1"
  assert lines[2].startswith("per chip: parameters ") and "optimizer state" in lines[2]
  rows = {line.split()[1]: line.split() for line in lines if line.startswith("bucket ")}
  assert set(rows) == {"64", "128", "256"}
  for cells in rows.values():
    assert float(cells[-5]) > 0  # peak GiB
    assert float(cells[-3].replace(",", "")) > 0 and float(cells[-2]) > 0  # TFLOP/step, seconds
  assert lines[-3] == "fits: yes"
  assert lines[-2].startswith("per-chip memory GiB: ") and lines[-2].endswith(" of 95.00")
  assert lines[-1].startswith("estimated MFU: ") and lines[-1].endswith("%")


@pytest.mark.heavy
def test_plan_refuses_a_step_that_cannot_fit():
  # XuanYuan-6B: fp32 weights and Adam state alone are 18 GiB per chip over 4 v5e chips (16 GiB).
  proc = _plan(f"--config={ROOT}/configs/pretrain_xuanyuan6b.py", "--topology=v5e:2x2",
               "--mesh=1,4,1")
  assert proc.returncode == 1, proc.stderr[-3000:]
  lines = proc.stdout.strip().splitlines()
  assert lines[-3] == "fits: no"
  used, total = lines[-2].removeprefix("per-chip memory GiB: ").split(" of ")
  assert float(used) > float(total) == 16.0


def test_unknown_topology_is_one_line():
  proc = _plan(f"--config={ROOT}/configs/pretrain_tiny.py", "--topology=v9x:2x2")
  assert proc.returncode == 2
  assert proc.stderr.strip().splitlines()[-1].startswith("error: --topology='v9x:2x2': unknown TPU")
