"""tools/dedup_prompts.py: the kept records written line for line (every field), the removed ones
reported by cluster with file:line, kind and similarity."""

import json
import os
import subprocess
import sys

from tests.train.train_helpers import ROOT, env


def test_duplicates_leave_and_every_field_of_the_kept_records_stays(tmp_path):
  lines = [json.dumps({"id": "a1", "prompt": "什么是国债收益率？", "category": "finance/knowledge",
                       "meta": {"source": "forum", "tags": ["bond"]}}, ensure_ascii=False),
           json.dumps({"id": "a2", "prompt": "什么是国债收益率?", "category": "finance/knowledge"}, ensure_ascii=False),
           "{not json",
           json.dumps({"id": "a3", "prompt": "什么是国债收益率呢？"}, ensure_ascii=False),
           json.dumps({"id": "a4", "prompt": "600519的股价是多少？"}, ensure_ascii=False),
           json.dumps({"id": "a5", "prompt": "000001的股价是多少？"}, ensure_ascii=False)]
  src = tmp_path / "prompts.jsonl"
  src.write_text("\n".join(lines) + "\n", encoding="utf-8")
  out = tmp_path / "prompts.dedup.jsonl"
  proc = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "dedup_prompts.py"), f"--input={src}",
                         f"--out={out}"], capture_output=True, text=True, env=env(), cwd=ROOT, timeout=120)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert out.read_text(encoding="utf-8").splitlines() == [lines[0], lines[2], lines[4], lines[5]]
  report = json.loads((tmp_path / "prompts.dedup.report.json").read_text(encoding="utf-8"))
  assert (report["records_in"], report["records_out"]) == (6, 4)
  assert report["removed"] == {"exact duplicate": 1, "near duplicate": 1}
  assert report["not_compared"] == {"malformed JSON or no prompt/conversations: kept as is": 1}
  [cluster] = report["clusters"]
  assert cluster["kept"]["where"] == f"{src}:1"
  assert [(r["where"], r["kind"]) for r in cluster["removed"]] == [(f"{src}:2", "exact duplicate"),
                                                                  (f"{src}:4", "near duplicate")]
  assert "6 records -> 4" in proc.stdout

  again = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "dedup_prompts.py"), f"--input={src}",
                          f"--out={src}"], capture_output=True, text=True, env=env(), cwd=ROOT, timeout=120)
  assert again.returncode == 2 and "is also an --input" in again.stderr.strip().splitlines()[-1]
