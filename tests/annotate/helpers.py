"""A small annotation database for the tests: raters, items, tokens."""

import json
import os
import subprocess
import sys

from tests.train.train_helpers import ROOT, env
from xy_jax.annotate import db, items, raters

TOOL = os.path.join(ROOT, "tools", "annotate.py")


def write_jsonl(path, rows):
  with open(path, "w", encoding="utf-8") as f:
    for row in rows:
      f.write(json.dumps(row, ensure_ascii=False) + "\n")
  return str(path)


def item_rows(n, category="finance", **extra):
  return [{"id": f"{category}-{i}", "category": category, "prompt": f"问题 {i}: 什么是市盈率?",
           "answer_a": f"A 的回答 {i}", "answer_b": f"B 的回答 {i}", **extra} for i in range(n)]


def make_db(tmp_path, names=("r1", "r2", "r3"), rows=(), kind="gsb", raters_per_item=3, **kw):
  """(db path, name -> token) with `rows` imported as `kind` items."""
  path = str(tmp_path / "ann.sqlite")
  db.init(path)
  conn = db.connect(path)
  try:
    tokens = raters.add_raters(conn, list(names))
    if rows:
      items.import_items(conn, write_jsonl(tmp_path / f"items_{kind}.jsonl", rows), kind,
                         raters_per_item, **kw)
  finally:
    conn.close()
  return path, tokens


def run_tool(*args, timeout=120):
  return subprocess.run([sys.executable, TOOL, *args], capture_output=True, text=True, env=env(),
                        cwd=ROOT, timeout=timeout)
