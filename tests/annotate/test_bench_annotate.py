"""tools/bench_annotate.py: concurrent raters against a served database, stopping by itself, with
the votes the server accepted equal to the votes stored."""

import os
import re
import subprocess
import sys

from tests.train.train_helpers import ROOT, env
from xy_jax.annotate.load import percentile

TOOL = os.path.join(ROOT, "tools", "bench_annotate.py")


def test_percentile_is_the_nearest_rank():
  values = list(range(1, 101))
  assert (percentile(values, 50), percentile(values, 99), percentile(values, 100)) == (50, 99, 100)
  assert percentile([7.0], 99) == 7.0


def test_ten_raters_for_three_seconds_store_every_accepted_vote(tmp_path):
  proc = subprocess.run([sys.executable, TOOL, "--seconds", "3", "--raters", "10", "--workdir", str(tmp_path)],
                        capture_output=True, text=True, env=env(), cwd=str(tmp_path), timeout=120)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  same = re.search(r"^votes accepted by the server: (\d+), in the database: (\d+): equal$", proc.stdout, re.M)
  assert same and same.group(1) == same.group(2) and int(same.group(1)) > 0, proc.stdout
  assert re.search(r"^raters: 10, ran (\d+\.\d) s", proc.stdout, re.M)
  assert float(re.search(r"ran (\d+\.\d) s", proc.stdout).group(1)) < 3 + 30  # stops by itself
  assert re.search(r"^votes/s: \d+\.\d$", proc.stdout, re.M)
  assert re.search(r"^vote POST latency: p50 \d+\.\d ms, p99 \d+\.\d ms$", proc.stdout, re.M)
  assert "errors: none" in proc.stdout
  assert "serving" in (tmp_path / "server.log").read_text()


def test_a_small_budget_ends_before_the_time(tmp_path):
  proc = subprocess.run([sys.executable, TOOL, "--seconds", "60", "--raters", "3", "--max_votes", "5"],
                        capture_output=True, text=True, env=env(), cwd=str(tmp_path), timeout=60)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert "votes accepted by the server: 15, in the database: 15: equal" in proc.stdout
  assert float(re.search(r"ran (\d+\.\d) s", proc.stdout).group(1)) < 30
