"""tools/self_qa.py end to end on the tiny LM: a consistent report and SFT records with provenance."""

import json
import os
import re
import subprocess
import sys

from tests.train.train_helpers import ROOT, env
from xy_jax.data.sft import parse_conversation


def _run(*args):
  return subprocess.run([sys.executable, os.path.join(ROOT, "tools", "self_qa.py"), *args],
                        capture_output=True, text=True, env=env(), cwd=ROOT, timeout=300)


def test_self_qa_tool_writes_sft_records(tmp_path, lm_checkpoint):
  docs = tmp_path / "docs.txt"
  lines = ["市盈率是股价与每股收益的比值，常用于比较公司估值。", "", "复利是指利息在下一期继续产生利息。",
           "汇率是指一种货币兑换另一种货币的比率。"]
  docs.write_text("\n".join(lines) + "\n", encoding="utf-8")
  out = tmp_path / "qa.jsonl"
  proc = _run(f"--checkpoint={lm_checkpoint}", f"--docs={docs}", f"--out={out}", "--max_new_tokens=24",
              "--temperature=1.0", "--dtype=float32")
  assert proc.returncode == 0, proc.stderr[-2000:]
  m = re.search(r"(\d+) documents -> (\d+) questions -> (\d+) pairs kept \(dropped: (.*)\)", proc.stdout)
  assert m, proc.stdout
  n_docs, n_q, kept = int(m[1]), int(m[2]), int(m[3])
  dropped = {} if m[4] == "none" else {k: int(v) for k, v in re.findall(r"([a-z ]+?) (\d+)(?:, |$)", m[4])}
  assert n_docs == 3
  assert n_q + dropped.get("no question generated", 0) >= kept
  assert kept + sum(v for k, v in dropped.items() if k != "no question generated") == n_q
  records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
  assert len(records) == kept
  for r in records:
    msgs = parse_conversation(r)
    assert msgs[0].content.strip() and msgs[1].content.strip()
    where = r["source"]["location"]
    assert where.startswith(f"{docs}:") and lines[int(where.rsplit(":", 1)[1]) - 1] == r["source"]["document"]
    assert r["generator"]["model"] == os.path.abspath(lm_checkpoint)
  assert len({r["conversations"][0]["value"] for r in records}) == len(records)


def test_missing_docs_is_one_line(tmp_path, lm_checkpoint):
  proc = _run(f"--checkpoint={lm_checkpoint}", f"--docs={tmp_path}/none.txt", f"--out={tmp_path}/x.jsonl")
  assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1] == f"error: --docs={tmp_path}/none.txt: no such file"
