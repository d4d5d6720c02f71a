"""Agreement statistics against published worked examples and against independent implementations
(statsmodels, the krippendorff package, scipy's exact binomial test)."""

import krippendorff
import numpy as np
import pytest
from scipy.stats import binomtest
from statsmodels.stats import inter_rater

from xy_jax.annotate import stats

# Fleiss (1971) as tabulated on Wikipedia's "Fleiss' kappa" page: 10 subjects, 14 raters, 5 categories.
FLEISS_TABLE = np.array([[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0],
                         [2, 2, 8, 1, 1], [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2],
                         [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]])

# Krippendorff, "Computing Krippendorff's Alpha-Reliability" (2011): 4 observers x 12 units, values
# 1..5, None missing. Published: nominal 0.743, ordinal 0.815, interval 0.849.
N = None
KRIPPENDORFF_DATA = [[1, 2, 3, 3, 2, 1, 4, 1, 2, N, N, N],
                     [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, N, 3],
                     [N, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, N],
                     [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, N]]


def _units(data):
  return [[v - 1 for v in col if v is not None] for col in zip(*data)]


def test_fleiss_kappa_on_fleiss_1971_table_is_0_210():
  assert stats.fleiss_kappa(FLEISS_TABLE) == pytest.approx(0.2099, abs=5e-5)
  assert round(stats.fleiss_kappa(FLEISS_TABLE), 3) == 0.210


def test_krippendorff_ordinal_alpha_on_his_worked_example_is_0_815():
  assert round(stats.krippendorff_alpha_ordinal(_units(KRIPPENDORFF_DATA), 5), 3) == 0.815


def test_cohen_kappa_on_wikipedias_example_is_0_4():
  # 50 proposals: both yes 20, A yes B no 5, A no B yes 10, both no 15; p_o = 0.7, p_e = 0.5.
  a = [1] * 20 + [1] * 5 + [0] * 10 + [0] * 15
  b = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
  assert stats.cohen_kappa(a, b, 2) == pytest.approx(0.4)


@pytest.mark.parametrize("seed", range(5))
def test_fleiss_kappa_matches_statsmodels(seed):
  rng = np.random.default_rng(seed)
  table = np.stack([rng.multinomial(5, rng.dirichlet([1, 1, 1])) for _ in range(30)])
  assert stats.fleiss_kappa(table) == pytest.approx(inter_rater.fleiss_kappa(table, method="fleiss"), abs=1e-12)
  assert stats.fleiss_kappa(FLEISS_TABLE) == pytest.approx(inter_rater.fleiss_kappa(FLEISS_TABLE), abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_cohen_kappa_matches_statsmodels(seed):
  rng = np.random.default_rng(seed)
  a = rng.integers(0, 3, 40)
  b = np.where(rng.random(40) < 0.6, a, rng.integers(0, 3, 40))
  table = np.zeros((3, 3))
  np.add.at(table, (a, b), 1)
  expected = inter_rater.cohens_kappa(table).kappa
  assert stats.cohen_kappa(list(a), list(b), 3) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_krippendorff_ordinal_alpha_matches_the_krippendorff_package(seed):
  rng = np.random.default_rng(seed)
  truth = rng.integers(0, 3, 25)
  data = np.where(rng.random((4, 25)) < 0.7, truth, rng.integers(0, 3, (4, 25))).astype(float)
  data[rng.random((4, 25)) < 0.2] = np.nan  # missing ratings
  units = [[int(v) for v in col if not np.isnan(v)] for col in data.T]
  expected = krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal", value_domain=[0, 1, 2])
  assert stats.krippendorff_alpha_ordinal(units, 3) == pytest.approx(expected, abs=1e-9)
  reference = np.array([[np.nan if v is None else v for v in row] for row in KRIPPENDORFF_DATA], float)
  assert stats.krippendorff_alpha_ordinal(_units(KRIPPENDORFF_DATA), 5) == pytest.approx(
      krippendorff.alpha(reliability_data=reference, level_of_measurement="ordinal"), abs=1e-9)


def test_cohen_kappa_mean_averages_the_rater_pairs_on_their_shared_items():
  ratings = {"r1": {"i1": 0, "i2": 1, "i3": 2, "i4": 2}, "r2": {"i1": 0, "i2": 1, "i3": 2},
             "r3": {"i1": 0, "i2": 2, "i4": 2}}
  pairs = [stats.cohen_kappa([0, 1, 2], [0, 1, 2], 3),  # r1-r2 on i1..i3
           stats.cohen_kappa([0, 1, 2], [0, 2, 2], 3),  # r1-r3 on i1, i2, i4
           stats.cohen_kappa([0, 1], [0, 2], 3)]        # r2-r3 on i1, i2
  assert stats.cohen_kappa_mean(ratings, 3) == pytest.approx(np.mean(pairs))


def test_undefined_statistics_are_none():
  assert stats.fleiss_kappa(np.array([[3, 0, 0], [3, 0, 0]])) is None  # one category only
  assert stats.fleiss_kappa(np.array([[1, 0, 0]])) is None  # no item with two ratings
  assert stats.krippendorff_alpha_ordinal([[1], [2]], 3) is None
  assert stats.cohen_kappa_mean({"only": {"i": 1}}, 3) is None
  assert stats.binomial_two_sided(0, 0) is None
  assert stats.bootstrap_mean_ci([]) is None


@pytest.mark.parametrize("k,n", [(0, 1), (3, 10), (10, 20), (17, 20), (40, 100), (1, 50)])
def test_exact_binomial_matches_scipy(k, n):
  assert stats.binomial_two_sided(k, n) == pytest.approx(binomtest(k, n, 0.5).pvalue, rel=1e-12)


def test_bootstrap_interval_brackets_the_mean_and_is_reproducible():
  values = [1.0] * 30 + [0.0] * 10
  low, high = stats.bootstrap_mean_ci(values, seed=3)
  assert 0.0 <= low < 0.75 < high <= 1.0
  assert stats.bootstrap_mean_ci(values, seed=3) == [low, high]
  assert stats.bootstrap_mean_ci([1.0] * 5) == [1.0, 1.0]
