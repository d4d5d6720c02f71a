"""PNG plots of a run: loss curves, the bucket mix and the data mixture (matplotlib, headless)."""

from __future__ import annotations

import collections
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_metrics(path: str) -> list[dict]:
  with open(path, encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]


def plot_training(metrics_path: str, png: str, title: str = "training") -> None:
  """Train loss per step, eval losses per source, the steps each bucket was drawn, and the realised
  share of each source over the run."""
  records = read_metrics(metrics_path)
  last = {}
  for r in records:  # a re-run step keeps its last record
    last.setdefault(r["step"], {}).update(r)
  steps = sorted(s for s, r in last.items() if r.get("loss") is not None)
  evals = sorted(s for s, r in last.items() if "eval_loss" in r)
  buckets = collections.Counter(last[s]["bucket"] for s in steps if "bucket" in last[s])

  mix_keys = sorted({k for r in last.values() for k in r if k.startswith("mix/")})
  panels = 3 if mix_keys else 2
  fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4),
                           gridspec_kw={"width_ratios": [2.2, 1, 1.6][:panels]})
  ax1, ax2 = axes[0], axes[1]
  ax1.plot(steps, [last[s]["loss"] for s in steps], lw=1, label="train loss")
  eval_keys = sorted({k for s in evals for k in last[s] if k.startswith("eval/loss/")})
  for k in eval_keys:
    xs = [s for s in evals if k in last[s]]
    ax1.plot(xs, [last[s][k] for s in xs], marker="o", ms=3, label=k.removeprefix("eval/loss/"))
  ax1.set_xlabel("step")
  ax1.set_ylabel("loss (nats/token)")
  ax1.set_title(title)
  ax1.legend(fontsize=8)
  ax1.grid(alpha=0.3)
  if buckets:
    keys = sorted(buckets)
    ax2.bar([str(k) for k in keys], [buckets[k] for k in keys], color="tab:green")
    ax2.set_xlabel("bucket (row length)")
    ax2.set_ylabel("steps")
    ax2.set_title("bucket mix")
  if mix_keys:  # the realised token share of each source per log window
    xs = sorted(s for s, r in last.items() if mix_keys[0] in r)
    axes[2].stackplot(xs, [[last[s].get(k, 0.0) for s in xs] for k in mix_keys],
                      labels=[k.removeprefix("mix/") for k in mix_keys], alpha=0.8)
    axes[2].set_xlabel("step")
    axes[2].set_ylabel("share of tokens")
    axes[2].set_ylim(0, 1)
    axes[2].set_title("data mixture (realised)")
    axes[2].legend(fontsize=8, loc="upper left")
  fig.tight_layout()
  fig.savefig(png, dpi=110)
  plt.close(fig)


def plot_ppo(metrics_path: str, png: str) -> None:
  """Reward mean (with std band), KL and response length per PPO iteration."""
  import numpy as np
  rows = {r["step"]: r for r in read_metrics(metrics_path) if "reward_mean" in r}
  steps = sorted(rows)
  mean = np.array([rows[s]["reward_mean"] for s in steps])
  std = np.array([rows[s]["reward_std"] for s in steps])
  fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
  ax1.plot(steps, mean, color="tab:blue", label="reward mean")
  ax1.fill_between(steps, mean - std, mean + std, color="tab:blue", alpha=0.2, label="+- std")
  ax1.set_xlabel("PPO iteration")
  ax1.set_ylabel("reward")
  ax1.set_title("reward")
  ax1.legend(fontsize=8)
  ax1.grid(alpha=0.3)
  ax2.plot(steps, [rows[s]["kl"] for s in steps], color="tab:red", label="KL(actor || reference)")
  ax2.set_xlabel("PPO iteration")
  ax2.set_ylabel("nats / token", color="tab:red")
  ax3 = ax2.twinx()
  ax3.plot(steps, [rows[s]["response_length"] for s in steps], color="tab:gray", label="answer length")
  ax3.set_ylabel("tokens", color="tab:gray")
  ax2.set_title("KL and answer length")
  ax2.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(png, dpi=110)
  plt.close(fig)
