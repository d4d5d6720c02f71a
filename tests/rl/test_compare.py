"""Win/tie/lose: the table's arithmetic, and tools/compare.py end to end."""

import os
import subprocess
import sys

from tests.train.train_helpers import ROOT, env
from xy_jax.rl.compare import Outcome, table


def _o(category, result):
  return Outcome(category, "q", "a", "b", 0.0, 0.0, result)


def test_table_rates_per_category_group_and_overall():
  outcomes = ([_o("general/chat", r) for r in ("win", "win", "tie", "lose")]
              + [_o("finance/knowledge", r) for r in ("win", "lose", "lose")])
  rows = {r["category"]: r for r in table(outcomes)}
  assert rows["general/chat"]["win"] == 0.5 and rows["general/chat"]["win_and_tie"] == 0.75
  assert abs(rows["finance/knowledge"]["lose"] - 2 / 3) < 1e-9
  assert rows["general (all)"]["n"] == 4 and rows["overall"]["n"] == 7
  assert abs(rows["overall"]["win_and_tie"] - 4 / 7) < 1e-9
  assert list(rows)[-1] == "overall"


def test_compare_tool(tmp_path, lm_checkpoint, rm_checkpoint):
  png, out = tmp_path / "cmp.png", tmp_path / "outcomes.jsonl"
  proc = subprocess.run(
      [sys.executable, os.path.join(ROOT, "tools", "compare.py"), f"--a={lm_checkpoint}",
       f"--b={lm_checkpoint}", f"--judge={rm_checkpoint}",
       f"--prompts={ROOT}/data/eval/prompts.jsonl", "--max_new_tokens=16", f"--png={png}",
       f"--out={out}"], capture_output=True, text=True, env=env(), cwd=ROOT, timeout=600)
  assert proc.returncode == 0, proc.stderr[-2000:]
  lines = proc.stdout.strip().splitlines()
  assert lines[0].split() == ["category", "n", "win", "tie", "lose", "win+tie"]
  overall = lines[-1].split()
  # The same model with the same seeds: every prompt is a tie.
  assert overall[0] == "overall" and overall[3] == "100.0%" and overall[-1] == "100.0%"
  assert {"finance", "general"} <= {line.split()[0] for line in lines if "(all)" in line}
  assert png.read_bytes()[:4] == b"\x89PNG" and len(out.read_text().splitlines()) == 25
