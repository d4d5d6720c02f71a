"""Win/tie/lose evaluation: two models answer the same prompts, a judge reward model scores both.

Tie when |R_A - R_B| <= margin. Reported per category and overall, with the win-and-tie rate (the
seeds report RLHF vs SFT: 79.29% general, 73.20% finance).
"""

from __future__ import annotations

import collections
import dataclasses

import jax
import numpy as np
from flax import nnx

from xy_jax.data.preference import right_padded
from xy_jax.infer.generate import Generator
from xy_jax.infer.sampling import SamplingConfig
from xy_jax.models.reward import sequence_scores
from xy_jax.rl.prompts import Prompt


@dataclasses.dataclass
class Outcome:
  category: str
  prompt: str
  answer_a: str
  answer_b: str
  score_a: float
  score_b: float
  result: str  # win | tie | lose (for A)


def judge_scores(judge: nnx.Module, sequences: list[np.ndarray], pad_id: int, batch: int = 16) -> np.ndarray:
  """Judge scores of complete sequences (prompt + answer + </s>), right-padded in batches."""
  graphdef, state = nnx.split(judge)

  @jax.jit
  def score(state, tokens, positions, seg):
    values, _ = nnx.merge(graphdef, state)(tokens, positions, seg)
    return sequence_scores(values, seg)

  length = max(len(s) for s in sequences)
  length = -(-length // 32) * 32
  out = []
  for i in range(0, len(sequences), batch):
    chunk = sequences[i:i + batch]
    chunk += [chunk[-1]] * (batch - len(chunk))  # one shape, one compile
    rows = right_padded(chunk, length, pad_id)
    out.append(np.asarray(score(state, rows["tokens"], rows["positions"], rows["segment_ids"])))
  return np.concatenate(out)[:len(sequences)]


def compare(model_a: nnx.Module, model_b: nnx.Module, judge: nnx.Module, prompts: list[Prompt],
            tok, sampling: SamplingConfig, margin: float = 0.0, seed: int = 0,
            batch: int = 8) -> list[Outcome]:
  answers = {}
  for name, model in (("a", model_a), ("b", model_b)):
    gen = Generator(model, tok.eos_id, tok.pad_id)
    outs = []
    for i in range(0, len(prompts), batch):
      chunk = prompts[i:i + batch]
      outs += gen.generate([p.ids for p in chunk], sampling, seed=seed + i)  # same seeds for A and B
    answers[name] = outs
  seqs = {k: [np.asarray(p.ids + g.tokens + [tok.eos_id], np.int32) for p, g in zip(prompts, v)]
          for k, v in answers.items()}
  sa, sb = judge_scores(judge, seqs["a"], tok.pad_id), judge_scores(judge, seqs["b"], tok.pad_id)
  outcomes = []
  for p, ga, gb, ra, rb in zip(prompts, answers["a"], answers["b"], sa, sb):
    result = "tie" if abs(ra - rb) <= margin else ("win" if ra > rb else "lose")
    outcomes.append(Outcome(p.category, p.text, tok.decode(ga.tokens), tok.decode(gb.tokens),
                            float(ra), float(rb), result))
  return outcomes


def table(outcomes: list[Outcome]) -> list[dict]:
  """Rows per category (and per top-level group, e.g. general / finance), then overall."""
  groups: dict[str, list[Outcome]] = collections.defaultdict(list)
  for o in outcomes:
    groups[o.category].append(o)
    if "/" in o.category:
      groups[o.category.split("/")[0] + " (all)"].append(o)
  groups["overall"] = list(outcomes)
  rows = []
  for name in sorted(groups, key=lambda n: (n == "overall", n.endswith("(all)"), n)):
    items = groups[name]
    n = len(items)
    c = collections.Counter(o.result for o in items)
    rows.append({"category": name, "n": n, "win": c["win"] / n, "tie": c["tie"] / n,
                 "lose": c["lose"] / n, "win_and_tie": (c["win"] + c["tie"]) / n})
  return rows


def plot(rows: list[dict], png: str, label_a: str, label_b: str) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  names = [r["category"] for r in rows]
  win = np.array([r["win"] for r in rows])
  tie = np.array([r["tie"] for r in rows])
  lose = np.array([r["lose"] for r in rows])
  fig, ax = plt.subplots(figsize=(9, 0.45 * len(rows) + 1.5))
  y = np.arange(len(rows))
  ax.barh(y, win, color="tab:green", label=f"{label_a} wins")
  ax.barh(y, tie, left=win, color="tab:gray", label="tie")
  ax.barh(y, lose, left=win + tie, color="tab:red", label=f"{label_b} wins")
  for i, r in enumerate(rows):
    ax.text(1.01, i, f"{r['win_and_tie']:.0%}", va="center", fontsize=8)
  ax.set_yticks(y, names, fontsize=8)
  ax.invert_yaxis()
  ax.set_xlim(0, 1.1)
  ax.set_xlabel("share of prompts (right: win-and-tie rate)")
  ax.set_title(f"{label_a} vs {label_b}")
  ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3)
  fig.tight_layout()
  fig.savefig(png, dpi=110)
  plt.close(fig)
