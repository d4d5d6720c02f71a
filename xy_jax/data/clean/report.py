"""Merges the per-task tallies of a curation run into DIR/report.json."""

from __future__ import annotations

import collections
import glob
import json
import os


def merge_report(out: str, step_order: tuple[str, ...]) -> dict:
  rep_dir = os.path.join(out, ".work", "report")
  steps = {}
  for key in step_order:
    merged = collections.defaultdict(collections.Counter)
    examples: dict[str, list[str]] = {}
    seconds = 0.0
    for path in sorted(glob.glob(os.path.join(rep_dir, key, "*.json"))):
      with open(path) as f:
        part = json.load(f)
      seconds += part.pop("seconds")
      for reason, lines in part.pop("examples").items():
        examples.setdefault(reason, []).extend(lines[:3 - len(examples.get(reason, []))])
      for field, counts in part.items():
        merged[field].update(counts)
    docs_in = merged["docs"]["in"]
    steps[key] = {
        "docs_in": docs_in, "docs_out": merged["docs"]["out"],
        "bytes_in": merged["bytes"]["in"], "bytes_out": merged["bytes"]["out"],
        "dropped": dict(merged["dropped"]), "dropped_by_language": dict(merged["dropped_by_language"]),
        "counters": dict(merged["counters"]), "by_source": dict(merged["by_source"]),
        "by_language": dict(merged["by_language"]), "examples": examples,
        "seconds": round(seconds, 3),
        "docs_per_s": round(max(docs_in, merged["docs"]["out"]) / seconds, 1) if seconds > 0 else None,
    }
  return {"steps": steps,
          "exact_duplicate_cluster_sizes": _histogram(rep_dir, "exact_cluster_sizes"),
          "near_duplicate_cluster_sizes": _histogram(rep_dir, "cluster_sizes"),
          "documents_in": steps[step_order[0]]["docs_out"] if step_order else 0,
          "documents_out": steps[step_order[-1]]["docs_out"] if step_order else 0}


def _histogram(rep_dir: str, key: str) -> dict[str, int]:
  """{cluster size: kept documents with a cluster of that size} summed over the tasks."""
  sizes = collections.Counter()
  for path in glob.glob(os.path.join(rep_dir, key, "*.json")):
    with open(path) as f:
      sizes.update(json.load(f))
  return dict(sorted(sizes.items(), key=lambda kv: int(kv[0])))
