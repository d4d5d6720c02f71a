"""One run per workdir (the lock), and metrics.jsonl restarting with a resumed run."""

import json
import os
import socket
import subprocess

import pytest

from xy_jax.train.workdir import LOCK_FILE, WorkdirBusy, WorkdirLock, truncate_metrics


def _write_lock(workdir, **record):
  with open(os.path.join(workdir, LOCK_FILE), "w") as f:
    json.dump({"host": socket.gethostname(), "since": "earlier", **record}, f)


def test_a_held_workdir_is_refused_with_the_holders_host_and_pid(tmp_path):
  first = WorkdirLock(str(tmp_path))
  first.acquire()
  with pytest.raises(WorkdirBusy, match=f"in use by pid {os.getpid()} on host "
                                        f"{socket.gethostname()}"):
    WorkdirLock(str(tmp_path)).acquire()
  first.release()
  assert not os.path.exists(tmp_path / LOCK_FILE)
  second = WorkdirLock(str(tmp_path))
  second.acquire()
  second.release()


def test_a_stale_lock_is_taken_over_with_a_line(tmp_path):
  dead = subprocess.Popen(["true"])
  dead.wait()
  _write_lock(str(tmp_path), pid=dead.pid)
  logs = []
  lock = WorkdirLock(str(tmp_path), log=logs.append)
  lock.acquire()
  assert any(f"taking over a stale lock from pid {dead.pid}" in l and "no longer running" in l
             for l in logs)
  assert json.load(open(tmp_path / LOCK_FILE))["pid"] == os.getpid()
  lock.release()


def test_a_reused_pid_does_not_hold_the_lock(tmp_path):
  _write_lock(str(tmp_path), pid=os.getpid(), start_ticks=1)  # our pid, another process's start
  logs = []
  WorkdirLock(str(tmp_path), log=logs.append).acquire()
  assert any("stale lock" in l for l in logs)


def test_a_lock_from_another_host_is_refused(tmp_path):
  _write_lock(str(tmp_path), host="other-host", pid=12345)
  with pytest.raises(WorkdirBusy, match=f"pid 12345 on host other-host .* delete .*{LOCK_FILE}"):
    WorkdirLock(str(tmp_path)).acquire()


def test_metrics_past_the_restored_step_are_dropped(tmp_path):
  path = tmp_path / "metrics.jsonl"
  records = [{"step": s, "loss": float(s)} for s in range(1, 8)] + [{"step": 5, "eval_loss": 1.0}]
  path.write_text("".join(json.dumps(r) + "\n" for r in records) + '{"step": 9, "lo')  # cut short
  assert truncate_metrics(str(tmp_path), 5) == 3  # steps 6 and 7, and the line cut short
  kept = [json.loads(l) for l in path.read_text().splitlines()]
  assert [r["step"] for r in kept] == [1, 2, 3, 4, 5, 5]
  assert truncate_metrics(str(tmp_path), 5) == 0
