"""DIR/report.png: what a curation run kept and removed, in one picture (matplotlib, headless)."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def plot_report(report: dict, png: str) -> None:
  """Documents after each stage, the removals by reason, and the duplicate cluster sizes (exact and
  near; a cluster of n holds one kept document and n-1 removed ones). Written atomically."""
  steps = report["steps"]
  fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(16, 4.5), gridspec_kw={"width_ratios": [1.3, 1.3, 1]})
  names = list(steps)
  bars = ax1.bar(names, [steps[k]["docs_out"] for k in names], color="tab:blue")
  for bar, k in zip(bars, names):
    gone = steps[k]["docs_in"] - steps[k]["docs_out"] if k != names[0] else 0
    if gone:
      ax1.annotate(f"-{gone:,}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                   va="bottom", fontsize=7)
  ax1.set_ylabel("documents out")
  ax1.set_title(f"{report['documents_in']:,} documents in -> {report['documents_out']:,} out")
  ax1.tick_params(axis="x", rotation=35, labelsize=8)

  reasons = [(f"{k}: {r}", n) for k, s in steps.items() for r, n in s["dropped"].items() if n]
  reasons += [(f"{k}: {c}", n) for k, s in steps.items() for c, n in s["counters"].items() if n]
  reasons.sort(key=lambda x: x[1])
  if reasons:
    ax2.barh([r for r, _ in reasons], [n for _, n in reasons],
             color=["tab:orange" if "masked" in r else "tab:red" for r, _ in reasons])
    for y, (_, n) in enumerate(reasons):
      ax2.annotate(f" {n:,}", (n, y), va="center", fontsize=7)
  ax2.set_xlabel("documents (red: removed, orange: masked)")
  ax2.set_title("by stage and reason")
  ax2.tick_params(axis="y", labelsize=7)

  for key, label, color in (("exact_duplicate_cluster_sizes", "exact", "tab:purple"),
                            ("near_duplicate_cluster_sizes", "near", "tab:green")):
    sizes = {int(n): c for n, c in report.get(key, {}).items() if int(n) > 1}
    if sizes:
      xs = sorted(sizes)
      ax3.plot(xs, [sizes[x] for x in xs], marker="o", label=label, color=color)
  ax3.set_yscale("log")
  ax3.xaxis.set_major_locator(MaxNLocator(integer=True))
  ax3.set_xlabel("cluster size (documents)")
  ax3.set_ylabel("clusters")
  ax3.set_title("duplicate clusters")
  if ax3.lines:
    ax3.legend()
  fig.tight_layout()
  tmp = png + ".tmp.png"
  fig.savefig(tmp, dpi=100)
  plt.close(fig)
  os.replace(tmp, png)
