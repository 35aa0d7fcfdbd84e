import numpy as np
import pytest

from runge_bench import stats


def test_iqm_by_hand():
    assert stats.iqm(np.arange(8.0)) == pytest.approx(3.5)  # mean of 2, 3, 4, 5
    assert stats.iqm(np.array([1.0, 2.0, 3.0, 100.0])) == pytest.approx(2.5)  # outlier trimmed


def test_holm_by_hand():
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, max(0.04*1, 0.06)=0.06
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(stats.holm([0.5, 0.9]), [1.0, 1.0])
    out = stats.holm([np.nan, 0.01, 0.02])
    assert np.isnan(out[0]) and out[1:] == pytest.approx([0.02, 0.02])


def test_probability_of_improvement():
    x = np.array([3.0, 1.0, 2.0])
    assert stats.probability_of_improvement(x, x) == 0.5
    assert stats.probability_of_improvement([1.0, 2.0], [3.0, 4.0]) == 1.0
    assert stats.probability_of_improvement([1.0, 5.0], [3.0, 4.0]) == 0.5


def test_bootstrap_is_reproducible_and_covers_the_median():
    rng = np.random.default_rng(1)
    x = rng.normal(10.0, 2.0, 2000)
    a = stats.bootstrap_ci(x, stats.median, seed=3)
    assert a == stats.bootstrap_ci(x, stats.median, seed=3)
    assert a != stats.bootstrap_ci(x, stats.median, seed=4)
    assert a[0] < 10.0 < a[1] and a[1] - a[0] < 0.4
    assert all(np.isnan(stats.bootstrap_ci(x[:1], stats.median, seed=0)))


def test_bootstrap_coverage_is_near_nominal():
    rng = np.random.default_rng(0)
    hits = 0
    for i in range(200):
        lo, hi = stats.bootstrap_ci(rng.normal(0, 1, 40), stats.median, seed=i, n_resamples=2000)
        hits += lo <= 0 <= hi
    assert 0.88 <= hits / 200 <= 0.99


def test_paired_test_refuses_underpowered_p_values():
    a, b = np.arange(1.0, 6.0), np.arange(2.0, 7.0)
    t = stats.paired_test(a, b, seed=0)
    assert t.n_pairs == 5 and t.a_wins == 5 and np.isnan(t.p_value) and "0.0625" in t.note
    assert stats.min_wilcoxon_p(5) == 0.0625 and stats.min_wilcoxon_p(6) == 0.03125


def test_paired_test_p_value_and_ratio():
    a = np.arange(1.0, 11.0)
    t = stats.paired_test(a, 2 * a, seed=0)
    assert t.median_ratio == pytest.approx(0.5) and t.a_wins == 10
    assert t.p_value == pytest.approx(2 / 2**10)  # exact: every difference has the same sign
    flipped = stats.paired_test(2 * a, a, seed=0)
    assert flipped.median_ratio == pytest.approx(1 / t.median_ratio)


def test_friedman_and_nemenyi_cd():
    scores = np.array([[1.0, 2.0, 3.0]] * 6)  # method 0 always best
    r = stats.friedman(scores, ["a", "b", "c"])
    assert r.mean_ranks == (1.0, 2.0, 3.0)
    assert r.p_value < 0.01
    # Demsar (2006): q_0.05 for k=3 is 2.343; CD = q * sqrt(k(k+1)/(6N))
    assert r.critical_difference == pytest.approx(2.343 * np.sqrt(3 * 4 / 36), rel=1e-3)


def test_percentile_of():
    assert stats.percentile_of(np.arange(1.0, 11.0), 0.5) == 0
    assert stats.percentile_of(np.arange(1.0, 11.0), 100) == 100
