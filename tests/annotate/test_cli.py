"""tools/annotate.py end to end: init -> add-raters -> import (tools/compare.py's output as it is,
and preference items) -> import-votes -> progress -> report -> export-pairs, and the exported pairs
read by the reward / DPO stages' reader; `serve` started as a program."""

import http.client
import json
import re
import subprocess
import sys
import threading

from tests.annotate.helpers import TOOL, run_tool, write_jsonl
from tests.train.train_helpers import ROOT, env
from xy_jax.data.preference import read_pairs
from xy_jax.data.sources import SkipReport
from xy_jax.data.tokenizer import ChatTemplate, load_tokenizer
from xy_jax.rl.compare import Outcome


def _ok(*args):
  proc = run_tool(*args)
  assert proc.returncode == 0, proc.stderr[-2000:]
  return proc.stdout


def _compare_output(path):
  """What tools/compare.py --out writes: one Outcome's __dict__ per line, no id, no model names."""
  outcomes = [Outcome("finance/knowledge", f"什么是市盈率 {i}?", f"甲的回答 {i}", f"乙的回答 {i}", 0.9, 0.1, "win")
              for i in range(3)] + [Outcome("general/chat", "你好", "你好!", "嗨", 0.2, 0.8, "lose")]
  with open(path, "w", encoding="utf-8") as f:
    for o in outcomes:
      f.write(json.dumps(o.__dict__, ensure_ascii=False) + "\n")
  return str(path)


def test_round_trip_import_votes_report_export(tmp_path):
  dbp = str(tmp_path / "ann.sqlite")
  _ok("init", "--db", dbp)
  tokens = dict(line.split("\t") for line in _ok("add-raters", "--db", dbp, "ann", "bo", "cy").splitlines())
  assert set(tokens) == {"ann", "bo", "cy"} and len(set(tokens.values())) == 3
  gsb = _compare_output(tmp_path / "outcomes.jsonl")
  assert "4 items added" in _ok("import", "--db", dbp, gsb, "--kind", "gsb", "--model_a", "ppo",
                                "--model_b", "sft")
  prefs = write_jsonl(tmp_path / "prefs.jsonl", [
      {"id": "p1", "category": "finance", "prompt": "债券是什么?", "answer_a": "一种债务工具。", "answer_b": "不知道"},
      {"id": "p2", "category": "finance", "prompt": "股票是什么?", "answer_a": "好问题", "answer_b": "公司所有权的份额。"},
      {"id": "p3", "category": "finance", "prompt": "基金是什么?", "answer_a": "集合投资。", "answer_b": "集合投资工具。"}])
  assert "3 items added" in _ok("import", "--db", dbp, prefs, "--kind", "preference")
  votes = [  # gsb items: outcomes-1..4; majorities G, G (2 of 3), none (-> same), B
      *({"item": "outcomes-1", "rater": r, "vote": "G"} for r in ("ann", "bo", "cy")),
      *({"item": "outcomes-2", "rater": r, "vote": v} for r, v in (("ann", "G"), ("bo", "G"), ("cy", "S"))),
      *({"item": "outcomes-3", "rater": r, "vote": v} for r, v in (("ann", "G"), ("bo", "S"), ("cy", "B"))),
      *({"item": "outcomes-4", "rater": r, "vote": "B"} for r in ("ann", "bo")),
      # preference: p1 -> A (3 of 3), p2 -> B (2 of 3), p3 -> tie (no majority)
      *({"item": "p1", "rater": r, "vote": "A"} for r in ("ann", "bo", "cy")),
      *({"item": "p2", "rater": r, "vote": v} for r, v in (("ann", "B"), ("bo", "B"), ("cy", "tie"))),
      *({"item": "p3", "rater": r, "vote": v} for r, v in (("ann", "A"), ("bo", "B"), ("cy", "tie")))]
  votes_file = write_jsonl(tmp_path / "votes.jsonl", votes)
  assert "20 votes recorded" in _ok("import-votes", "--db", dbp, votes_file)
  _ok("import-votes", "--db", dbp, votes_file)  # importing again changes nothing
  progress = _ok("progress", "--db", dbp).splitlines()
  assert progress[-1].split() == ["all", "20/21"]

  report = json.loads(_ok("report", "--db", dbp, "--json", "--out_dir", str(tmp_path / "rep")))
  assert report == json.loads((tmp_path / "rep" / "report.json").read_text())
  assert (tmp_path / "rep" / "win_rates.png").read_bytes()[:4] == b"\x89PNG"
  assert set(report["categories"]) == {"finance/knowledge", "general/chat", "finance"}
  fk = report["categories"]["finance/knowledge"]
  assert (fk["n"], fk["win"], fk["tie"], fk["lose"]) == (3, 2 / 3, 1 / 3, 0.0)
  assert fk["win_and_tie"] == 1.0 and fk["win_and_tie_ci95"] == [1.0, 1.0]
  assert report["categories"]["general/chat"]["lose"] == 1.0
  assert report["overall"]["n"] == 7 and report["votes"] == 20
  for r in [*report["categories"].values(), report["overall"]]:
    low, high = r["win_and_tie_ci95"]
    assert 0.0 <= low <= r["win_and_tie"] <= high <= 1.0
  assert set(report["agreement"]) == {"fleiss_kappa", "krippendorff_alpha", "cohen_kappa_mean"}
  assert all(isinstance(v, float) for v in report["agreement"].values())
  assert report["position_bias"] == {"n": 0, "left_share": None, "p_value": None}  # no web votes
  # compare's RM scores favour A on outcomes-1..3 and B on outcomes-4; the decided majorities
  # (outcomes-1, -2: A; outcomes-4: B) all side with the RM.
  assert report["rm_agreement"] == {"n": 3, "agreement": 1.0}
  table = _ok("report", "--db", dbp, "--out_dir", str(tmp_path / "rep2")).splitlines()
  assert table[0].split()[:6] == ["category", "n", "win", "tie", "lose", "win+tie"]

  pairs = tmp_path / "pairs.jsonl"
  assert "2 pairs (1 ties" in _ok("export-pairs", "--db", dbp, "--out", str(pairs))
  rows = [json.loads(line) for line in pairs.read_text(encoding="utf-8").splitlines()]
  assert rows == [
      {"prompt": "债券是什么?", "chosen": "一种债务工具。", "rejected": "不知道", "category": "finance",
       "item": "p1", "votes": {"A": 3, "B": 0, "tie": 0}},
      {"prompt": "股票是什么?", "chosen": "公司所有权的份额。", "rejected": "好问题", "category": "finance",
       "item": "p2", "votes": {"A": 0, "B": 2, "tie": 1}}]
  report_skips = SkipReport()
  read = read_pairs([str(pairs)], "--pairs", load_tokenizer(None), ChatTemplate(), 256, report_skips)
  assert len(read) == 2 and report_skips.total == 0
  _ok("export-pairs", "--db", dbp, "--out", str(pairs), "--min_agreement", "0.9")
  assert [json.loads(line)["item"] for line in pairs.read_text().splitlines()] == ["p1"]
  _ok("export-pairs", "--db", dbp, "--out", str(pairs), "--min_votes", "4")
  assert pairs.read_text() == ""


def test_errors_are_one_line_naming_the_file_or_flag(tmp_path):
  dbp = str(tmp_path / "ann.sqlite")
  proc = run_tool("progress", "--db", dbp)
  assert proc.returncode == 2 and proc.stderr.strip() == (
      f"error: --db={dbp}: no such annotation database (run `annotate init --db {dbp}`)")
  _ok("init", "--db", dbp)
  proc = run_tool("import", "--db", dbp, str(tmp_path / "items.jsonl"), "--kind", "gsb")
  assert proc.returncode == 2 and "add-raters" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
  _ok("add-raters", "--db", dbp, "ann")
  proc = run_tool("add-raters", "--db", dbp, "ann")
  assert proc.returncode == 2 and proc.stderr.strip() == "error: rater 'ann' exists already (its token cannot be shown again)"
  bad = tmp_path / "bad.jsonl"
  bad.write_text('{"prompt": "p", "answer_a": "a", "answer_b": "b"}\n{oops\n', encoding="utf-8")
  proc = run_tool("import", "--db", dbp, str(bad), "--kind", "preference")
  assert proc.returncode == 2 and proc.stderr.strip().startswith(f"error: {bad}:2: malformed JSON")
  proc = run_tool("import", "--db", dbp, str(bad), "--kind", "nope")
  assert proc.returncode == 2 and "--kind" in proc.stderr


def test_serve_binds_loopback_and_serves_the_login_page(tmp_path):
  dbp = str(tmp_path / "ann.sqlite")
  _ok("init", "--db", dbp)
  proc = subprocess.Popen([sys.executable, TOOL, "serve", "--db", dbp, "--port", "0"], stderr=subprocess.PIPE,
                          text=True, env=env(), cwd=ROOT)
  timer = threading.Timer(60, proc.kill)  # a server that never says where it listens fails, not hangs
  timer.start()
  try:
    line = proc.stderr.readline()
    match = re.search(r"on http://127\.0\.0\.1:(\d+)/", line)
    assert match, line
    conn = http.client.HTTPConnection("127.0.0.1", int(match.group(1)), timeout=30)
    conn.request("GET", "/login")
    resp = conn.getresponse()
    assert resp.status == 200 and 'name="token"' in resp.read().decode("utf-8")
    conn.close()
  finally:
    timer.cancel()
    proc.terminate()
    proc.wait(30)
    proc.stderr.close()
