"""Candidate answers for people to compare: prompt dedup, near-duplicate answers, pairs to import.

Pure Python (no jax), like the rest of the package; the sampling itself is the program's
(xy_jax/main/sample_candidates.py).

Rules:
- prompts are deduplicated exactly after whitespace normalisation (runs of whitespace become one
  space, ends stripped); the first occurrence, with its category, is kept;
- an answer is dropped when it is empty, or when the Jaccard similarity of its character 3-gram
  set (of the whitespace-normalised text) with an earlier kept answer of the same prompt and model
  is >= the threshold (0.9 by default): two such answers give a rater nothing to choose between;
- one model: every two kept answers of a prompt make a pair (K answers give K(K-1)/2 items);
  two models (A/B): A's and B's answers with the same seed make a pair, when both were kept.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
from collections.abc import Iterable, Sequence

NEAR_DUPLICATE = 0.9


@dataclasses.dataclass(frozen=True)
class Candidate:
  model: str
  seed: int
  text: str


def normalise(text: str) -> str:
  return " ".join(text.split())


def unique_prompts(prompts: Iterable, key=lambda p: p.text) -> tuple[list, int]:
  """(the first of each whitespace-normalised prompt text, how many repeats were dropped)."""
  seen, out, dropped = set(), [], 0
  for p in prompts:
    k = normalise(key(p))
    if k in seen:
      dropped += 1
      continue
    seen.add(k)
    out.append(p)
  return out, dropped


def trigrams(text: str) -> frozenset[str]:
  t = normalise(text)
  # Shorter than one 3-gram: the text itself stands for its only gram.
  return frozenset([t]) if len(t) < 3 else frozenset(t[i:i + 3] for i in range(len(t) - 2))


def jaccard(a: frozenset, b: frozenset) -> float:
  return len(a & b) / len(a | b) if a or b else 1.0


def distinct(candidates: Sequence[Candidate], threshold: float = NEAR_DUPLICATE) -> tuple[list[Candidate], int]:
  """(the candidates kept, in order; how many were dropped as empty or near-duplicates)."""
  kept, grams = [], []
  for c in candidates:
    g = trigrams(c.text)
    if not normalise(c.text) or any(jaccard(g, h) >= threshold for h in grams):
      continue
    kept.append(c)
    grams.append(g)
  return kept, len(candidates) - len(kept)


def pairs(kept_a: Sequence[Candidate], kept_b: Sequence[Candidate] | None = None) -> list[tuple[Candidate, Candidate]]:
  """One model (kept_b None): every two of its answers; A/B: the answers of the same seed."""
  if kept_b is None:
    return list(itertools.combinations(kept_a, 2))
  by_seed = {c.seed: c for c in kept_b}
  return [(a, by_seed[a.seed]) for a in kept_a if a.seed in by_seed]


def item(prompt: str, category: str, a: Candidate, b: Candidate) -> dict:
  """One line for `annotate import --kind preference|gsb`. The id hashes the content, so
  re-importing the same file adds nothing and a new sample of the same prompt is a new item."""
  key = "\x1f".join((prompt, a.model, str(a.seed), a.text, b.model, str(b.seed), b.text))
  return {"id": hashlib.sha256(key.encode("utf-8")).hexdigest()[:16], "category": category,
          "prompt": prompt, "answer_a": a.text, "answer_b": b.text, "model_a": a.model,
          "model_b": b.model, "seed_a": a.seed, "seed_b": b.seed}
