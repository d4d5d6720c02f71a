"""tools/gpu_check.py --smoke: every GPU check's code path on CPU with the tiny preset."""

import json
import os
import subprocess
import sys

from tests.train.train_helpers import ROOT, env


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
