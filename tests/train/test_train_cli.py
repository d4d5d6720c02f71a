"""`python -m xy_jax.train` end to end: learning, exact resume, crash recovery, guards, errors."""

import os
import signal
import subprocess
import time

import jax
import numpy as np
import pytest

from tests.train.train_helpers import ROOT, env, final_params, losses, run_train, train_cmd

SHORT = ("--config.train.steps=20", "--config.train.log_every=1", "--config.train.checkpoint_every=5",
         "--config.train.eval_every=10", "--config.optim.warmup_steps=5")


@pytest.fixture(scope="module")
def straight(tmp_path_factory, prepared):
  workdir = str(tmp_path_factory.mktemp("straight"))
  proc = run_train(workdir, prepared, *SHORT)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return workdir


def _wait_for_step(workdir, step, proc, timeout=300):
  deadline = time.time() + timeout
  path = os.path.join(workdir, "metrics.jsonl")
  while time.time() < deadline:
    if proc.poll() is not None:
      raise AssertionError(f"training ended early: {proc.stderr.read()[-2000:]}")
    if os.path.exists(path) and losses(workdir) and max(losses(workdir)) >= step:
      return
    time.sleep(0.05)
  raise AssertionError("training never reached the step")


def _interrupt(workdir, prepared, sig, at_step):
  proc = subprocess.Popen(train_cmd(workdir, prepared, *SHORT), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=env(), cwd=ROOT)
  _wait_for_step(workdir, at_step, proc)
  proc.send_signal(sig)
  proc.wait(timeout=120)
  return proc


def _assert_same_run(a, b):
  la, lb = losses(a), losses(b)
  assert sorted(la) == sorted(lb) == list(range(1, 21))
  assert la == lb  # identical floats, step by step
  sa, pa = final_params(a)
  sb, pb = final_params(b)
  assert sa == sb == 20
  for x, y in zip(jax.tree.leaves(pa), jax.tree.leaves(pb)):
    assert x.tobytes() == y.tobytes()  # bit-identical parameters


def test_sigterm_saves_and_resume_is_exact(tmp_path, prepared, straight):
  workdir = str(tmp_path / "run")
  proc = _interrupt(workdir, prepared, signal.SIGTERM, at_step=10)
  assert proc.returncode == 0, proc.stderr.read()[-2000:]
  stopped_at = max(losses(workdir))
  assert 10 <= stopped_at < 20
  resumed = run_train(workdir, prepared, *SHORT)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert "resumed from" in resumed.stderr
  _assert_same_run(straight, workdir)


def test_sigkill_resumes_from_the_last_checkpoint(tmp_path, prepared, straight):
  workdir = str(tmp_path / "run")
  proc = _interrupt(workdir, prepared, signal.SIGKILL, at_step=12)
  assert proc.returncode == -signal.SIGKILL
  resumed = run_train(workdir, prepared, *SHORT)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  _assert_same_run(straight, workdir)


def test_corrupt_latest_checkpoint_falls_back(tmp_path, prepared, straight):
  import shutil
  workdir = str(tmp_path / "run")
  shutil.copytree(straight, workdir)
  # Damage step 20: remove the array data of its parameters.
  params_dir = os.path.join(workdir, "checkpoints", "20", "params")
  for root, _, files in os.walk(params_dir):
    for f in files:
      if not f.startswith("_"):
        with open(os.path.join(root, f), "wb") as fh:
          fh.write(b"garbage")
  proc = run_train(workdir, prepared, *SHORT[:-1], "--config.train.steps=25",
                   "--config.optim.warmup_steps=5")
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "checkpoints/20 is corrupt or partial" in proc.stderr
  assert "falling back to step 15" in proc.stderr and "resumed from" in proc.stderr


def test_loss_goes_down_on_the_shipped_corpus(tmp_path, prepared):
  workdir = str(tmp_path / "run")
  proc = run_train(workdir, prepared)  # the tiny config as shipped
  assert proc.returncode == 0, proc.stderr[-3000:]
  by_step = losses(workdir)
  first = np.mean([by_step[s] for s in range(1, 6)])
  last = np.mean([by_step[s] for s in sorted(by_step)[-10:]])
  assert last < 0.5 * first, (first, last)
  import json
  records = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  evals = [r for r in records if "eval_loss" in r]
  assert len(evals) >= 2 and evals[-1]["eval_loss"] < evals[0]["eval_loss"]
  assert {"eval/loss/finance", "eval/loss/reports", "eval/loss/general"} <= set(evals[-1])
  step_record = next(r for r in records if "loss" in r)
  assert {"step", "loss", "grad_norm", "lr", "tokens_per_sec", "bucket"} <= set(step_record)
  assert os.listdir(os.path.join(workdir, "tb"))


def test_non_finite_losses_stop_the_run(tmp_path, prepared):
  proc = run_train(str(tmp_path / "run"), prepared, "--config.optim.lr=1e30",
                   "--config.optim.warmup_steps=0", "--config.train.max_bad_steps=3",
                   "--config.train.log_every=1")
  assert proc.returncode == 3, proc.stderr[-2000:]
  last = proc.stderr.strip().splitlines()[-1]
  assert "not finite for 3 steps in a row" in last and "optim.lr" in last


@pytest.mark.parametrize("override,message", [
    ("--config.optim.schedule=cosin", "error: optim.schedule: 'cosin' is not one of"),
    ("--config.data.sources.finance.paths=nope.jsonl", "error: data.sources.finance.paths='nope.jsonl': no such file"),
])
def test_bad_config_is_one_line(tmp_path, override, message):
  proc = run_train(str(tmp_path / "run"), str(tmp_path / "prepared"), override)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert proc.stderr.strip().splitlines()[-1].startswith(message)
