"""Items to annotate and their assignment to raters.

An item is a prompt with two answers, A and B (with the models' names), a category and optional
reward-model scores. `gsb` items are rated G / S / B (A good / same / bad against B); `preference`
items A / B / tie. The output of tools/compare.py (prompt, answer_a, answer_b, category, score_a,
score_b) imports as it is; its model names come from --model_a / --model_b.
"""

from __future__ import annotations

import os
import secrets
import sqlite3

from xy_jax.annotate.db import transaction
from xy_jax.annotate.jsonl import records

KINDS = ("gsb", "preference")
# Each kind's votes, as A's outcome: win, tie, lose.
VOTES = {"gsb": ("G", "S", "B"), "preference": ("A", "tie", "B")}
OUTCOMES = ("win", "tie", "lose")


def outcome(kind: str, vote: str) -> str:
  return OUTCOMES[VOTES[kind].index(vote)]


def _text(record: dict, key: str, where: str, default: str | None = None) -> str:
  value = record.get(key, default)
  if not isinstance(value, str) or not value.strip():
    raise ValueError(f"{where}: \"{key}\" must be a non-empty string")
  return value


def _score(record: dict, key: str, where: str) -> float | None:
  value = record.get(key)
  if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
    raise ValueError(f"{where}: \"{key}\" must be a number")
  return None if value is None else float(value)


def parse_item(record: dict, where: str, kind: str, model_a: str, model_b: str, default_id: str) -> dict:
  item_id = record.get("id", default_id)
  if isinstance(item_id, bool) or not isinstance(item_id, (str, int)) or not str(item_id).strip():
    raise ValueError(f"{where}: \"id\" must be a non-empty string or an integer")
  return {"id": str(item_id), "kind": kind, "category": _text(record, "category", where, "uncategorised"),
          "prompt": _text(record, "prompt", where), "answer_a": _text(record, "answer_a", where),
          "answer_b": _text(record, "answer_b", where),
          "model_a": _text(record, "model_a", where, model_a),
          "model_b": _text(record, "model_b", where, model_b),
          "score_a": _score(record, "score_a", where), "score_b": _score(record, "score_b", where)}


FIELDS = ("id", "kind", "category", "prompt", "answer_a", "answer_b", "model_a", "model_b", "score_a", "score_b")


def import_items(conn: sqlite3.Connection, path: str, kind: str, raters_per_item: int = 3,
                 model_a: str = "A", model_b: str = "B") -> tuple[int, int]:
  """Adds the file's items (all or none) and assigns each to the `raters_per_item` least-loaded
  raters, each (item, rater) with its own random side for A. Re-importing an item with the same
  content is a no-op; an id that exists with other content stops the import.
  Returns (items added, items already there)."""
  if kind not in KINDS:
    raise ValueError(f"--kind={kind}: expected one of {', '.join(KINDS)}")
  if raters_per_item < 1:
    raise ValueError(f"--raters_per_item={raters_per_item}: must be at least 1")
  stem = os.path.splitext(os.path.basename(path))[0]
  added = kept = 0
  with transaction(conn):
    raters = [r["id"] for r in conn.execute("SELECT id FROM raters ORDER BY id")]
    if not raters:
      raise ValueError(f"--db: no raters yet; run `annotate add-raters NAME...` before importing {path}")
    load = {r: 0 for r in raters}
    for row in conn.execute("SELECT rater, COUNT(*) AS n FROM assignments GROUP BY rater"):
      load[row["rater"]] = row["n"]
    seq = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM items").fetchone()[0]
    seen = set()
    for where, record in records(path):
      item = parse_item(record, where, kind, model_a, model_b, f"{stem}-{where.rsplit(':', 1)[1]}")
      if item["id"] in seen:
        raise ValueError(f"{where}: item id {item['id']!r} appears twice in the file")
      seen.add(item["id"])
      old = conn.execute(f"SELECT {', '.join(FIELDS)} FROM items WHERE id = ?", (item["id"],)).fetchone()
      if old is not None:
        if dict(old) != item:
          raise ValueError(f"{where}: item id {item['id']!r} exists with other content")
        kept += 1
        continue
      seq += 1
      conn.execute(f"INSERT INTO items (seq, {', '.join(FIELDS)}) VALUES (?{', ?' * len(FIELDS)})",
                   (seq, *(item[k] for k in FIELDS)))
      chosen = sorted(raters, key=lambda r: (load[r], secrets.randbelow(1 << 30)))[:raters_per_item]
      for r in chosen:
        conn.execute("INSERT INTO assignments (item, rater, opaque, a_left) VALUES (?, ?, ?, ?)",
                     (item["id"], r, secrets.token_urlsafe(16), secrets.randbelow(2)))
        load[r] += 1
      added += 1
  return added, kept
