"""tools/gpu_check.py --smoke: every GPU check's code path on CPU with the tiny preset; the budget
logic on a fake clock."""

import json
import os
import subprocess
import sys

from tests.train.train_helpers import ROOT, env
from xy_jax.main.gpu_check import Deadline, run_sections, summary_line, write_report


def test_gpu_check_smoke_writes_both_reports_with_every_section(tmp_path):
  out = str(tmp_path / "gc")
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "gpu_check.py"), f"--out={out}", "--smoke"],
                        capture_output=True, text=True, env=env(), cwd=ROOT, timeout=900)
  assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-3000:])
  report = json.load(open(os.path.join(out, "report.json")))
  assert report["smoke"] is True and report["failed"] == []
  sections = report["sections"]
  assert set(sections) == {"attention", "train", "buckets", "bench", "decode"}
  for row in sections["attention"]["rows"].values():
    assert row["xla"]["ok"] and not row["xla"]["ignores_segments"]
    assert row["xla"]["forward_max_abs_diff_vs_f32"] < 1e-4
  assert sections["train"]["tokens_per_s"] > 0 and sections["train"]["remat_policy"] == "none"
  assert list(sections["buckets"]["table"]) == ["64", "128", "256"]
  assert sections["buckets"]["longest_over_shortest"] > 0
  assert sections["bench"]["train_ratio"] > 0 and sections["bench"]["generate_ratio"] > 0
  assert set(sections["decode"]["batches"]) == {"1", "4"}
  assert all(r["ours_tokens_per_s"] > 0 and r["transformers_tokens_per_s"] > 0
             for r in sections["decode"]["batches"].values())
  md = open(os.path.join(out, "report.md")).read()
  for heading in ("## attention", "## train", "## buckets", "## bench", "## decode"):
    assert heading in md


def test_gpu_check_refuses_a_cpu_without_smoke(tmp_path):
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "gpu_check.py"), f"--out={tmp_path}"],
                        capture_output=True, text=True, env=env(), cwd=ROOT, timeout=300)
  assert proc.returncode != 0 and "not a GPU; use --smoke" in proc.stderr + proc.stdout


class FakeClock:
  def __init__(self):
    self.now = 1000.0

  def __call__(self):
    return self.now


def test_sections_that_cannot_finish_in_the_budget_are_skipped_and_reported(tmp_path):
  clock = FakeClock()
  deadline = Deadline(300, clock)
  durations = {"attention": 40, "train": 100, "buckets": 130, "decode": 80, "bench": 60}
  ran, reports = [], []

  def run_one(name, left):
    ran.append((name, left))
    clock.now += min(durations[name], left)
    if durations[name] > left:  # what run_in_child returns when it stops a section at the deadline
      return {"skipped": f"stopped at the deadline after {left:.0f} s"}
    return {"figure": durations[name]}

  def on_done(name, section):
    reports.append(name)
    write_report(str(tmp_path), {"device": "fake", "date": "today", "commit": "x", "smoke": True, "budget_s": 300,
                                 "seconds": clock.now - 1000, "sections": {n: {"skipped": "-"} for n in reports}})

  minimum = {"attention": 30, "train": 60, "buckets": 120, "decode": 50, "bench": 50}
  results = run_sections(["attention", "train", "buckets", "decode", "bench"], deadline, run_one, minimum, on_done)
  # 300 s: attention (40) and train (100) run; buckets needs 120 of the 160 left and runs out at 130;
  # 30 s remain, under decode's 50 and bench's 50: neither starts.
  assert [name for name, _ in ran] == ["attention", "train", "buckets"]
  assert ran[2][1] == 160
  assert results["attention"] == {"figure": 40} and results["train"] == {"figure": 100}
  assert results["buckets"] == {"figure": 130}
  assert "30 s of the budget left" in results["decode"]["skipped"] and "needs about 50 s" in results["decode"]["skipped"]
  assert "skipped" in results["bench"]
  assert reports == ["attention", "train", "buckets", "decode", "bench"]  # a report after every section
  assert set(json.load(open(tmp_path / "report.json"))["sections"]) == set(reports)
  assert summary_line("decode", results["decode"]).startswith("[decode] skipped: 30 s of the budget left")


def test_a_section_running_past_the_deadline_is_reported_as_stopped():
  clock = FakeClock()
  results = run_sections(["train"], Deadline(100, clock), lambda name, left: (
      setattr(clock, "now", clock.now + left) or {"skipped": f"stopped at the deadline after {left:.0f} s"}),
      {"train": 10}, lambda *_: None)
  assert results["train"]["skipped"] == "stopped at the deadline after 100 s"


def test_a_budget_too_small_for_any_section_runs_none_and_still_writes_the_report(tmp_path):
  out = str(tmp_path / "gc")
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "gpu_check.py"), f"--out={out}", "--smoke",
                         "--budget_s=12", "--sections=buckets,bench"],
                        capture_output=True, text=True, env=env(), cwd=ROOT, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  report = json.load(open(os.path.join(out, "report.json")))
  assert report["skipped"] == ["buckets", "bench"] and report["failed"] == []
  assert "[buckets] skipped:" in proc.stdout and "skipped:" in open(os.path.join(out, "report.md")).read()
