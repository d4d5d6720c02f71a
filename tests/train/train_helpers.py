"""Running `python -m xy_jax.train` as a user does, and reading what it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = os.path.join(ROOT, "configs", "pretrain_tiny.py")


def train_cmd(workdir: str, prepared: str, *overrides: str, cpu_devices: int = 2) -> list[str]:
  return [sys.executable, "-m", "xy_jax.train", f"--config={TINY}", f"--workdir={workdir}",
          f"--config.data.prepared_dir={prepared}", f"--cpu_devices={cpu_devices}", *overrides]


def env() -> dict:
  e = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONUNBUFFERED": "1"}
  e.pop("XLA_FLAGS", None)
  return e


def run_train(workdir, prepared, *overrides, cpu_devices=2, timeout=600):
  return subprocess.run(train_cmd(workdir, prepared, *overrides, cpu_devices=cpu_devices),
                        capture_output=True, text=True, env=env(), cwd=ROOT, timeout=timeout)


def losses(workdir: str) -> dict[int, float]:
  """Step -> loss; a step logged twice (re-run after SIGKILL) keeps its last value."""
  out = {}
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    for line in f:
      record = json.loads(line)
      if "loss" in record:
        out[record["step"]] = record["loss"]
  return out


def final_params(workdir: str):
  import jax
  import numpy as np
  import orbax.checkpoint as ocp
  ckpt = os.path.join(workdir, "checkpoints")
  with ocp.CheckpointManager(ckpt) as mngr:
    step = mngr.latest_step()
    restored = mngr.restore(step, args=ocp.args.Composite(params=ocp.args.StandardRestore()))
  return step, jax.tree.map(np.asarray, restored["params"])


def train_checkpoint(config, workdir, *overrides):
  """Run `python -m xy_jax.train` on a shipped config; returns the checkpoint directory."""
  proc = subprocess.run([sys.executable, "-m", "xy_jax.train", f"--config={ROOT}/configs/{config}",
                         f"--workdir={workdir}", "--cpu_devices=2", *overrides],
                        capture_output=True, text=True, env=env(), cwd=ROOT, timeout=900)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return os.path.join(workdir, "checkpoints")


def with_file_size_limit(cmd: list, kib: int) -> list:
  """`cmd` run with writes past `kib` KiB per file failing (EFBIG), as on a full disk: the shell's
  ulimit, not a preexec_fn, so the parent (which has JAX's threads) never forks."""
  return ["bash", "-c", f'ulimit -f {kib} && exec "$@"', "bash", *cmd]
