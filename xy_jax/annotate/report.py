"""The annotation report: win / tie / lose of A per category by majority vote with a bootstrap
interval, rater agreement, position bias and agreement with the reward model's scores."""

from __future__ import annotations

import collections
import json
import os
import sqlite3

from xy_jax.annotate import stats
from xy_jax.annotate.items import outcome
from xy_jax.annotate.tally import Tally, tallies

# Ordinal codes for agreement: B < S < G (lose < tie < win for A; preference B < tie < A).
CODES = {"lose": 0, "tie": 1, "win": 2}


def rates(items: list[Tally], seed: int = 0) -> dict:
  """Rates of the majority outcomes of the voted items; the interval resamples the items."""
  majorities = [m for m in (t.majority() for t in items) if m is not None]
  n = len(majorities)
  if n == 0:
    return {"n": 0, "win": None, "tie": None, "lose": None, "win_and_tie": None, "win_and_tie_ci95": None}
  c = collections.Counter(majorities)
  good = [1.0 if m in ("win", "tie") else 0.0 for m in majorities]
  return {"n": n, "win": c["win"] / n, "tie": c["tie"] / n, "lose": c["lose"] / n,
          "win_and_tie": sum(good) / n, "win_and_tie_ci95": stats.bootstrap_mean_ci(good, seed=seed)}


def agreement(items: list[Tally]) -> dict:
  voted = [t for t in items if t.votes]
  table = [[t.counts()[o] for o in ("lose", "tie", "win")] for t in voted]
  units = [[CODES[o] for o in t.counts().elements()] for t in voted]
  by_rater: dict[str, dict[str, int]] = collections.defaultdict(dict)
  for t in voted:
    for name in t.votes:
      by_rater[name][t.id] = CODES[outcome(t.kind, t.votes[name])]
  return {"fleiss_kappa": stats.fleiss_kappa(table) if table else None,
          "krippendorff_alpha": stats.krippendorff_alpha_ordinal(units, 3),
          "cohen_kappa_mean": stats.cohen_kappa_mean(by_rater, 3)}


def position_bias(items: list[Tally]) -> dict:
  """Share of decided web votes (not ties) that went to the answer shown on the left."""
  sides = [(o, left) for t in items for o, left in t.sides if o != "tie"]
  n = len(sides)
  left = sum(1 for o, a_left in sides if (o == "win") == bool(a_left))
  return {"n": n, "left_share": left / n if n else None, "p_value": stats.binomial_two_sided(left, n)}


def rm_agreement(items: list[Tally]) -> dict | None:
  """Share of the items with a decided majority on which the RM's higher score is the majority's
  answer (an RM tie agrees with neither); None when no scores were imported."""
  scored = [t for t in items if t.score_a is not None and t.score_b is not None]
  if not scored:
    return None
  decided = [t for t in scored if t.majority() in ("win", "lose")]
  agree = sum(1 for t in decided
              if (t.score_a > t.score_b and t.majority() == "win")
              or (t.score_b > t.score_a and t.majority() == "lose"))
  return {"n": len(decided), "agreement": agree / len(decided) if decided else None}


def build(conn: sqlite3.Connection, seed: int = 0) -> dict:
  items = tallies(conn)
  by_category: dict[str, list[Tally]] = collections.defaultdict(list)
  for t in items:
    by_category[t.category].append(t)
  report = {"categories": {c: rates(by_category[c], seed) for c in sorted(by_category)},
            "overall": rates(items, seed),
            "agreement": agreement(items),
            "position_bias": position_bias(items),
            "items": len(items), "votes": sum(len(t.votes) for t in items)}
  rm = rm_agreement(items)
  if rm is not None:
    report["rm_agreement"] = rm
  return report


def labels(conn: sqlite3.Connection) -> tuple[str, str]:
  """The models' names when every item compares the same two, else A and B."""
  pairs = conn.execute("SELECT DISTINCT model_a, model_b FROM items").fetchall()
  return (pairs[0]["model_a"], pairs[0]["model_b"]) if len(pairs) == 1 else ("A", "B")


def write(report: dict, out_dir: str, label_a: str, label_b: str) -> tuple[str, str]:
  """report.json and win_rates.png (drawn by the RM judge's own plot) in out_dir."""
  from xy_jax.rl.compare import plot  # jax comes with it: imported only when a chart is drawn
  os.makedirs(out_dir, exist_ok=True)
  path, png = os.path.join(out_dir, "report.json"), os.path.join(out_dir, "win_rates.png")
  with open(path, "w", encoding="utf-8") as f:
    json.dump(report, f, ensure_ascii=False, indent=2)
  rows = [{"category": c, **r} for c, r in report["categories"].items() if r["n"]]
  if report["overall"]["n"]:
    rows.append({"category": "overall", **report["overall"]})
  if rows:
    plot(rows, png, label_a, label_b)
  return path, png if rows else ""
