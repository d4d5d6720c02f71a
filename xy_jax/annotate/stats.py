"""Agreement and significance statistics for human annotation (numpy only).

Ratings are integer category codes 0..C-1; for the ordinal measures the codes are in order.
Every function returns None where its statistic is undefined (no pairable ratings, or chance
agreement already 1), so a report can say "not measurable" instead of dividing by zero.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np


def fleiss_kappa(counts: np.ndarray) -> float | None:
  """Fleiss' kappa from an items x categories table of rating counts.

  Items may have different numbers of ratings (each item's agreement uses its own n_i, the
  category shares pool all ratings); with a constant n it is Fleiss' 1971 statistic. Items with
  fewer than two ratings carry no agreement and are left out."""
  counts = np.asarray(counts, dtype=np.float64)
  n_i = counts.sum(axis=1)
  counts, n_i = counts[n_i >= 2], n_i[n_i >= 2]
  if len(counts) == 0:
    return None
  p_i = ((counts ** 2).sum(axis=1) - n_i) / (n_i * (n_i - 1))
  p_j = counts.sum(axis=0) / counts.sum()
  p_bar, p_e = p_i.mean(), (p_j ** 2).sum()
  if p_e >= 1.0:
    return None
  return float((p_bar - p_e) / (1.0 - p_e))


def krippendorff_alpha_ordinal(units: Sequence[Sequence[int]], categories: int) -> float | None:
  """Krippendorff's alpha with the ordinal metric; `units` holds each unit's values (any number
  of coders, missing values simply absent). Units with one value are not pairable and drop out."""
  coincidence = np.zeros((categories, categories))
  for values in units:
    m = len(values)
    if m < 2:
      continue
    for a, b in itertools.permutations(values, 2):
      coincidence[a, b] += 1.0 / (m - 1)
  n_c = coincidence.sum(axis=1)
  n = n_c.sum()
  if n <= 1:
    return None
  delta = np.zeros((categories, categories))
  for c in range(categories):
    for k in range(categories):
      lo, hi = min(c, k), max(c, k)
      delta[c, k] = (n_c[lo:hi + 1].sum() - (n_c[c] + n_c[k]) / 2.0) ** 2
  observed = (coincidence * delta).sum()
  expected = (np.outer(n_c, n_c) * delta).sum() / (n - 1)
  if expected == 0:
    return None
  return float(1.0 - observed / expected)


def cohen_kappa(a: Sequence[int], b: Sequence[int], categories: int) -> float | None:
  """Unweighted Cohen's kappa of two raters over the same items."""
  if len(a) != len(b):
    raise ValueError(f"cohen_kappa: {len(a)} ratings against {len(b)}")
  if not a:
    return None
  table = np.zeros((categories, categories))
  for x, y in zip(a, b):
    table[x, y] += 1
  table /= table.sum()
  p_o = np.trace(table)
  p_e = float(table.sum(axis=1) @ table.sum(axis=0))
  if p_e >= 1.0:
    return None
  return float((p_o - p_e) / (1.0 - p_e))


def cohen_kappa_mean(ratings: dict[str, dict[str, int]], categories: int) -> float | None:
  """Cohen's kappa averaged over rater pairs: `ratings` is rater -> item -> code; each pair is
  scored on the items both rated; pairs with no shared item or an undefined kappa are left out."""
  kappas = []
  for r1, r2 in itertools.combinations(sorted(ratings), 2):
    shared = sorted(set(ratings[r1]) & set(ratings[r2]))
    k = cohen_kappa([ratings[r1][i] for i in shared], [ratings[r2][i] for i in shared], categories)
    if k is not None:
      kappas.append(k)
  return float(np.mean(kappas)) if kappas else None


def binomial_two_sided(k: int, n: int) -> float | None:
  """Exact two-sided binomial test of k successes in n trials against p = 1/2 (the outcomes as
  likely as the observed one or less, summed; the distribution is symmetric)."""
  if n == 0:
    return None
  tail = min(k, n - k)
  p = 2.0 * sum(math.comb(n, i) for i in range(tail + 1)) / 2.0 ** n
  return min(1.0, p)


def bootstrap_mean_ci(values: Sequence[float], resamples: int = 2000, seed: int = 0,
                      level: float = 0.95) -> list[float] | None:
  """Percentile bootstrap interval of a mean, resampling the values (one per item)."""
  x = np.asarray(values, dtype=np.float64)
  if len(x) == 0:
    return None
  rng = np.random.default_rng(seed)
  means = x[rng.integers(0, len(x), size=(resamples, len(x)))].mean(axis=1)
  tail = (1.0 - level) / 2.0 * 100.0
  return [float(np.percentile(means, tail)), float(np.percentile(means, 100.0 - tail))]
