"""Multi-host stand-in: 2 processes x 4 CPU devices (localhost coordinator, gloo) vs 1 x 8."""

import os
import socket
import subprocess

import numpy as np
import pytest

from tests.train.train_helpers import ROOT, env, losses, run_train, train_cmd

STEPS = ("--config.train.steps=8", "--config.train.log_every=2", "--config.train.checkpoint_every=4",
         "--config.train.eval_every=8", "--config.optim.warmup_steps=2")


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.mark.heavy
def test_two_processes_match_one(tmp_path, prepared):
  single = str(tmp_path / "single")
  proc = run_train(single, prepared, *STEPS, cpu_devices=8)
  assert proc.returncode == 0, proc.stderr[-3000:]

  multi = str(tmp_path / "multi")
  port = _free_port()
  procs = [subprocess.Popen(
      train_cmd(multi, prepared, *STEPS, f"--coordinator_address=127.0.0.1:{port}",
                "--num_processes=2", f"--process_id={i}", "--cpu_collectives=gloo", cpu_devices=4),
      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(), cwd=ROOT)
      for i in range(2)]
  outs = [p.communicate(timeout=600) for p in procs]
  for p, (_, err) in zip(procs, outs):
    assert p.returncode == 0, err[-3000:]
  assert "8 devices, 2 processes" in outs[0][1]

  a, b = losses(single), losses(multi)
  assert sorted(a) == sorted(b) == list(range(1, 9))
  np.testing.assert_allclose([a[s] for s in sorted(a)], [b[s] for s in sorted(b)], rtol=2e-5)
  assert os.path.isdir(os.path.join(multi, "checkpoints", "8"))
