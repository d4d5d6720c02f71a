"""`python -m xy_jax.train` end to end: learning, exact resume, crash recovery, guards, errors."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from tests.train.train_helpers import (ROOT, env, final_params, losses, run_train, train_cmd,
                                      with_file_size_limit)

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


def _no_traceback(stderr):
  assert "Traceback" not in stderr and "Fatal Python error" not in stderr, stderr[-3000:]


def test_damaged_steps_are_moved_aside_and_the_run_saves_over_them(tmp_path, prepared, straight):
  import shutil
  from xy_jax.weights.load import load_checkpoint
  from xy_jax.sharding import LogicalSharding, make_mesh
  workdir = str(tmp_path / "run")
  shutil.copytree(straight, workdir)
  ckpts = os.path.join(workdir, "checkpoints")
  # Step 20: its largest params chunk cut short; step 30: a junk directory (an interrupted copy).
  data = os.path.join(ckpts, "20", "params", "ocdbt.process_0", "d")
  biggest = max((os.path.join(data, f) for f in os.listdir(data)), key=os.path.getsize)
  with open(biggest, "r+b") as f:
    f.truncate(1000)
  os.makedirs(os.path.join(ckpts, "30", "params"))
  # The data plan changes too (tokens per step): logged, and the run goes on from step 15.
  proc = run_train(workdir, prepared, *SHORT[:-1], "--config.train.steps=25",
                   "--config.optim.warmup_steps=5", "--config.data.tokens_per_step=4096")
  assert proc.returncode == 0, proc.stderr[-3000:]
  _no_traceback(proc.stderr)
  for step in (20, 30):
    assert f"checkpoints/{step} is corrupt or partial" in proc.stderr
    assert os.path.isdir(os.path.join(ckpts, f"{step}.corrupt"))  # kept for inspection
  assert "falling back to step 15" in proc.stderr and "resumed from" in proc.stderr
  assert "data plan changed at step 15 (tokens_per_step: 2048 -> 4096)" in proc.stderr
  past = sum(json.loads(l)["step"] > 15 for l in open(os.path.join(straight, "metrics.jsonl")))
  assert past > 5 and f"metrics.jsonl: dropped {past} record(s) past step 15" in proc.stderr
  steps = [json.loads(l)["step"] for l in open(os.path.join(workdir, "metrics.jsonl")) if '"loss"' in l]
  assert steps == list(range(1, 26))  # each step once: the straight run's 16..20 were dropped
  mesh = LogicalSharding(make_mesh({"data": 1, "fsdp": 1, "tensor": 1}, jax.devices()[:1]))
  assert load_checkpoint(ckpts, mesh).step == 25  # the newest step is whole again


@pytest.mark.parametrize("override,message", [
    ("--config.model.hidden_size=64", "has hidden_size 128, the config says 64"),
    ("--config.train.steps=10", "train.steps=10 is below step 20 of"),
])
def test_resuming_with_an_incompatible_config_is_one_line(tmp_path, prepared, straight, override,
                                                           message):
  import shutil
  workdir = str(tmp_path / "run")
  shutil.copytree(straight, workdir)
  before = sorted(os.listdir(os.path.join(workdir, "checkpoints")))
  proc = run_train(workdir, prepared, *SHORT, override)
  assert proc.returncode == 2, proc.stderr[-3000:]
  _no_traceback(proc.stderr)
  assert message in proc.stderr.strip().splitlines()[-1]
  assert sorted(os.listdir(os.path.join(workdir, "checkpoints"))) == before  # nothing moved aside


def test_ctrl_c_saves_and_a_second_run_on_the_workdir_is_refused(tmp_path, prepared):
  workdir = str(tmp_path / "run")
  long = ("--config.train.steps=100000", "--config.train.log_every=1",
          "--config.train.checkpoint_every=1000", "--config.optim.warmup_steps=5")
  proc = subprocess.Popen(train_cmd(workdir, prepared, *long), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=env(), cwd=ROOT)
  _wait_for_step(workdir, 8, proc)
  second = run_train(workdir, prepared, *long)
  assert second.returncode == 2, second.stderr[-2000:]
  assert f"is in use by pid {proc.pid} on host" in second.stderr.strip().splitlines()[-1]
  proc.send_signal(signal.SIGINT)
  _, err = proc.communicate(timeout=120)
  assert proc.returncode == 130, err[-2000:]
  _no_traceback(err)
  assert "interrupt: stopping at the next step boundary" in err and "saved step" in err
  assert not os.path.exists(os.path.join(workdir, "run.lock"))
  saved = max(losses(workdir))
  resumed = run_train(workdir, prepared, *long[1:], f"--config.train.steps={saved + 2}")
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert f"resumed from {workdir}/checkpoints/{saved}" in resumed.stderr
  assert max(losses(workdir)) == saved + 2


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_during_setup_or_compile_exits_cleanly(tmp_path, prepared, presses):
  workdir = str(tmp_path / "run")
  proc = subprocess.Popen(train_cmd(workdir, prepared, *SHORT), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=env(), cwd=ROOT)
  seen = ""
  while "pretrain:" not in seen:  # the set-up summary: the model is about to be built and compiled
    line = proc.stderr.readline()
    assert line, seen
    seen += line
  for _ in range(presses):  # a second press follows at once, while the first is being handled
    proc.send_signal(signal.SIGINT)
    time.sleep(0.02)
  _, err = proc.communicate(timeout=120)
  err = seen + err
  assert proc.returncode == 130, err[-2000:]
  _no_traceback(err)
  if presses == 2:
    assert "second interrupt: aborting now" in err
  else:
    assert "stopped by a signal during setup" in err or "saved step 1" in err


def test_disk_full_at_a_checkpoint_is_one_line(tmp_path, prepared):
  workdir = str(tmp_path / "run")
  cmd = train_cmd(workdir, prepared, "--config.train.steps=6", "--config.optim.warmup_steps=2",
                  "--config.train.checkpoint_every=5")
  # Writes past 300 KiB fail as on a full disk: the checkpoint's arrays do, the logs do not.
  proc = subprocess.run(with_file_size_limit(cmd, 300), capture_output=True, text=True, env=env(),
                        cwd=ROOT, timeout=300)
  assert proc.returncode == 2, proc.stderr[-3000:]
  _no_traceback(proc.stderr)
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith("error: saving a checkpoint in") and "File too large" in last


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
    ("--config.optim.lrr=1", 'error: --config.optim.lrr: no such config field (Did you mean "lr"'),
    ("--config.optim.lr=fast", "error: flag --config.optim.lr=fast: could not convert string to float"),
    ("--config.data.bucket_weights=(0,0,1,1)", "error: data.bucket_weights: (0, 0, 1, 1): one non-negative"),
])
def test_bad_config_is_one_line(tmp_path, override, message):
  proc = run_train(str(tmp_path / "run"), str(tmp_path / "prepared"), override)
  assert proc.returncode == 2, proc.stderr[-2000:]
  _no_traceback(proc.stderr)
  assert proc.stderr.strip().splitlines()[-1].startswith(message)


@pytest.mark.parametrize("text,message", [
    (None, "error: config file {path}: No such file or directory"),
    ("def get_config(:\n", "error: {path}:1: syntax error"),
    ("def get_config():\n  return undefined_name\n", "error: {path}:2: NameError: name 'undefined_name'"),
])
def test_a_bad_config_file_is_one_line(tmp_path, text, message):
  path = str(tmp_path / "exp.py")
  if text is not None:
    with open(path, "w") as f:
      f.write(text)
  proc = subprocess.run([sys.executable, "-m", "xy_jax.train", f"--config={path}",
                         f"--workdir={tmp_path / 'run'}"], capture_output=True, text=True, env=env(),
                        cwd=ROOT, timeout=120)
  assert proc.returncode == 2, proc.stderr[-2000:]
  _no_traceback(proc.stderr)
  assert proc.stderr.strip().splitlines()[-1].startswith(message.format(path=path))


def test_init_from_a_truncated_safetensors_file_is_one_line(tmp_path, prepared):
  from tests.hf_helpers import make_hf_model
  hf = str(tmp_path / "hf")
  make_hf_model(hf, max_shard_size="10GB")
  shard = os.path.join(hf, "model.safetensors")
  with open(shard, "r+b") as f:
    f.truncate(os.path.getsize(shard) // 2)
  proc = run_train(str(tmp_path / "run"), prepared, f"--config.init_from_hf={hf}")
  assert proc.returncode == 2, proc.stderr[-2000:]
  _no_traceback(proc.stderr)
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith(f"error: {shard}: unreadable safetensors file")
