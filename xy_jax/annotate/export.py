"""Chosen / rejected pairs from the preference items, in the format the reward and DPO stages read
(xy_jax/data/preference.py): {"prompt", "chosen", "rejected"}, plus where each pair came from."""

from __future__ import annotations

import json
import os
import sqlite3

from xy_jax.annotate.tally import tallies


def export_pairs(conn: sqlite3.Connection, out: str, min_votes: int = 1, min_agreement: float = 0.0) -> dict:
  """One pair per preference item whose majority prefers A or B: at least `min_votes` votes, the
  winner strictly more than half of them and at least `min_agreement` of them. Returns counts."""
  if min_votes < 1:
    raise ValueError(f"--min_votes={min_votes}: must be at least 1")
  if not 0.0 <= min_agreement <= 1.0:
    raise ValueError(f"--min_agreement={min_agreement}: must be within [0, 1]")
  counts = {"pairs": 0, "ties": 0, "too_few_votes": 0, "below_agreement": 0}
  rows = []
  for t in tallies(conn):
    if t.kind != "preference":
      continue
    votes = {v: list(t.votes.values()).count(v) for v in ("A", "B", "tie")}
    n = sum(votes.values())
    if n < min_votes:
      counts["too_few_votes"] += 1
      continue
    majority = t.majority()
    if majority not in ("win", "lose"):
      counts["ties"] += 1
      continue
    winner = "A" if majority == "win" else "B"
    if votes[winner] / n < min_agreement:
      counts["below_agreement"] += 1
      continue
    chosen, rejected = (t.answer_a, t.answer_b) if winner == "A" else (t.answer_b, t.answer_a)
    rows.append({"prompt": t.prompt, "chosen": chosen, "rejected": rejected, "category": t.category,
                 "item": t.id, "votes": votes})
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  tmp = out + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    for row in rows:
      f.write(json.dumps(row, ensure_ascii=False) + "\n")
  os.replace(tmp, out)
  counts["pairs"] = len(rows)
  return counts
