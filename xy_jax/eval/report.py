"""What an evaluation leaves: a table for the terminal, results.json, items.jsonl, accuracy.png."""

from __future__ import annotations

import json
import os
from typing import Any

from xy_jax.io_utils import atomic_output_file


def table(summary: dict[str, Any]) -> str:
  """Per subject, per category and overall; the last line is `accuracy: X`."""
  lines = [f"{summary['task']} {summary['split']} ({summary['mode']}, {summary['shots']}-shot)",
           f"{'subject':<44} {'category':<24} {'n':>5} {'acc':>7}"]
  for s, v in summary["per_subject"].items():
    lines.append(f"{s:<44} {v['category']:<24} {v['n']:>5} {v['accuracy']:>7.4f}")
  lines.append("")
  for c, v in summary["per_category"].items():
    lines.append(f"{'category: ' + c:<69} {v['n']:>5} {v['accuracy']:>7.4f}")
  extra = f", {summary['unparseable']} unparseable" if "unparseable" in summary else ""
  skipped = sum(summary["skipped"].values())
  lines.append(f"{summary['items']} items, {summary['items_per_second']:.1f} items/s, macro accuracy "
               f"{summary['macro_accuracy']:.4f}, {skipped} skipped{extra}")
  lines.append(f"accuracy: {summary['accuracy']:.4f}")
  return "\n".join(lines)


def write(out: str, summary: dict[str, Any], records: list[dict], settings: dict[str, Any]) -> None:
  """OUT/results.json, OUT/items.jsonl and OUT/accuracy.png (each written whole or not at all)."""
  os.makedirs(out, exist_ok=True)
  with atomic_output_file(os.path.join(out, "results.json")) as tmp:
    with open(tmp, "w", encoding="utf-8") as f:
      json.dump({**summary, "settings": settings}, f, ensure_ascii=False, indent=2)
  with atomic_output_file(os.path.join(out, "items.jsonl")) as tmp:
    with open(tmp, "w", encoding="utf-8") as f:
      for r in records:
        f.write(json.dumps(r, ensure_ascii=False) + "\n")
  with atomic_output_file(os.path.join(out, "accuracy.png")) as tmp:
    by_category = {c: v["accuracy"] for c, v in summary["per_category"].items()}
    bar_chart({summary["task"]: {**by_category, "overall": summary["accuracy"]}}, tmp,
              f"{summary['task']} {summary['split']} ({summary['mode']}, {summary['shots']}-shot)")


def bar_chart(series: dict[str, dict[str, float]], png: str, title: str) -> None:
  """Grouped accuracy bars: one group per label, one bar per series (e.g. per model); chance
  (a quarter, four options) dashed."""
  from xy_jax.plots import plt
  labels = list(dict.fromkeys(label for values in series.values() for label in values))
  fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(labels) * max(1, len(series)) ** 0.5 + 2), 3.8))
  width = 0.8 / len(series)
  for k, (name, values) in enumerate(series.items()):
    ax.bar([i + (k - (len(series) - 1) / 2) * width for i in range(len(labels))],
           [values.get(label, 0.0) for label in labels], width, label=name)
  ax.axhline(0.25, color="gray", ls="--", lw=1, label="chance")
  ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize=8)
  ax.set_ylim(0, 1)
  ax.set_ylabel("accuracy")
  ax.set_title(title)
  ax.legend(fontsize=7)
  ax.grid(axis="y", alpha=0.3)
  fig.tight_layout()
  fig.savefig(png, dpi=110, format="png")
  plt.close(fig)
