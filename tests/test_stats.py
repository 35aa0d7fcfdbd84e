import numpy as np
import pytest
from scipy import stats as st

from runge_bench.analysis import stats


def test_iqm_by_hand():
    assert stats.iqm(np.arange(8.0)) == pytest.approx(3.5)  # mean of 2, 3, 4, 5
    assert stats.iqm(np.array([1.0, 2.0, 3.0, 100.0])) == pytest.approx(2.5)  # outlier trimmed


def test_holm_by_hand():
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, max(0.04*1, 0.06)=0.06
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(stats.holm([0.5, 0.9]), [1.0, 1.0])
    out = stats.holm([np.nan, 0.01, 0.02])
    assert np.isnan(out[0]) and out[1:] == pytest.approx([0.02, 0.02])


def test_share_lower_is_paired():
    x = np.array([3.0, 1.0, 2.0])
    assert stats.share_lower(x, x) == 0.5  # all ties, half each
    assert stats.share_lower([1.0, 2.0], [3.0, 4.0]) == 1.0
    # Paired: seed 0 compares 1 with 0.5 (b lower), seed 1 compares 5 with 6 (a lower): 1 of 2.
    # The unpaired Mann-Whitney P(A < B) over all four combinations would be 1/4.
    assert stats.share_lower([1.0, 5.0], [0.5, 6.0]) == 0.5
    assert stats.share_lower([1.0, 5.0, 2.0], [0.5, 6.0, 2.0]) == pytest.approx(0.5)  # a tie counts half


def test_the_log_test_and_the_raw_test_disagree_by_hand():
    """Seven seeds where a's error is ~7-10x lower than b's, at errors ~1e-3, and three where a's
    is 1.5-1.7x higher, at errors ~1. On raw differences the three large seeds take the top ranks
    8, 9, 10: W+ = 27, W- = 28, the two-sided exact p = 1 (P(W <= 27) = 1/2 by symmetry, the
    rank sum being 55). On log ratios the three have the smallest |d| (log 1.5-1.7 against log
    6-10): W+ = 1 + 2 + 3 = 6, and of the 2^10 sign patterns 14 have W+ <= 6 (rank sets summing
    to 0-6: 1, 1, 1, 2, 2, 3, 4), so p = 2 * 14 / 1024."""
    b = np.array([1e-3] * 7 + [1.0] * 3)
    a = b * np.array([0.10, 0.11, 0.12, 0.13, 0.14, 0.15, 0.16, 1.5, 1.6, 1.7])
    raw = st.wilcoxon(a - b).pvalue
    assert raw == pytest.approx(1.0)
    t = stats.paired_test(a, b)
    assert t.p_value == pytest.approx(28 / 1024)
    assert t.favours == "a" and t.a_wins == 7 and t.share == pytest.approx(0.7)
    assert t.median_ratio == pytest.approx(np.sqrt(0.14 * 0.15))  # median of ten log ratios


def test_zero_errors_are_handled_explicitly():
    d, zeros = stats.log_ratios(np.array([0.0, 0.0, 1.0, 2.0]), np.array([0.0, 1.0, 0.0, 1.0]))
    assert zeros == 3 and d[0] == 0.0 and d[1] == -np.inf and d[2] == np.inf
    assert d[3] == pytest.approx(np.log(2.0))
    a = np.array([0.0] + [1.0] * 9)
    t = stats.paired_test(a, np.full(10, 2.0))
    assert "1 pairs with a zero error" in t.note and t.favours == "a" and t.p_value == pytest.approx(2 / 2**10)
    with pytest.raises(ValueError):
        stats.log_ratios(np.array([np.nan]), np.array([1.0]))


def test_no_ci_below_three_values():
    assert all(np.isnan(stats.bootstrap_ci(np.array([1.0, 2.0]), stats.median, seed=0)))
    assert not any(np.isnan(stats.bootstrap_ci(np.array([1.0, 2.0, 3.0]), stats.median, seed=0)))


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
    t = stats.paired_test(a, b)
    assert t.n_pairs == 5 and t.a_wins == 5 and t.favours == "a" and np.isnan(t.p_value) and "0.0625" in t.note
    assert stats.min_wilcoxon_p(5) == 0.0625 and stats.min_wilcoxon_p(6) == 0.03125


def test_reach_names_the_largest_holm_family_in_plain_numbers():
    # 10 seeds: p >= 2/1024, 0.05 / (2/1024) = 25.6 -> 25; 16 seeds: 0.05 * 2**15 = 1638.4 -> 1,638.
    assert stats.reach(10).endswith("so Holm can reject in families of up to 25 tests")
    assert stats.reach(16).endswith("families of up to 1,638 tests")
    assert stats.reach(200).endswith("families of a million tests and more")  # not a 60-digit integer
    assert "cannot reach p < 0.05" in stats.reach(5)


def test_fisher_rejection_region_is_scipys_table_by_table():
    for n_a, n_b in [(10, 10), (12, 7), (40, 40)]:
        region = stats.fisher_rejects(n_a, n_b)
        for k_a in range(n_a + 1):
            for k_b in range(n_b + 1):
                p = st.fisher_exact([[k_a, n_a - k_a], [k_b, n_b - k_b]]).pvalue
                assert region[k_a, k_b] == (p < 0.05), (n_a, n_b, k_a, k_b, p)


def test_detectable_tail_share_by_hand():
    # 10 vs 10, none of A's in the tail: Fisher rejects from 5 of B's 10 (0 vs 4: p = 0.087; 0 vs 5:
    # p = 0.033), so 80% power needs P(Bin(10, s) >= 5) >= 0.8: s = 0.585 (0.808; at 0.58, 0.798).
    assert stats.detectable_tail(10, 10, 0.0) == 0.585
    assert st.binom.sf(4, 10, 0.585) >= 0.8 > st.binom.sf(4, 10, 0.58)
    # More runs see smaller differences; a larger base share needs a larger one.
    assert (
        stats.detectable_tail(200, 200, 0.2) < stats.detectable_tail(40, 40, 0.2) < stats.detectable_tail(40, 40, 0.3)
    )
    assert np.isnan(stats.detectable_tail(3, 3, 0.5))  # 3 runs a side: no table rejects at all


def test_paired_test_p_value_and_ratio():
    a = np.arange(1.0, 11.0)
    t = stats.paired_test(a, 2 * a)
    assert t.median_ratio == pytest.approx(0.5) and t.a_wins == 10 and t.share == 1.0
    assert t.p_value == pytest.approx(2 / 2**10)  # exact: every difference has the same sign
    flipped = stats.paired_test(2 * a, a)
    assert flipped.median_ratio == pytest.approx(1 / t.median_ratio) and flipped.favours == "b"


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


def test_median_ci_is_the_order_statistic_interval_with_its_exact_coverage():
    assert stats.median_ci(np.arange(1, 11)) == (2.0, 9.0, 1 - 2 * 11 / 1024)  # [x(2), x(9)], 97.9%
    lo, hi, coverage = stats.median_ci(np.arange(20, 0, -1))  # order of the input: irrelevant
    assert (lo, hi) == (6.0, 15.0) and coverage == pytest.approx(0.95861, abs=1e-5)
    assert all(np.isnan(stats.median_ci(np.arange(5))))  # [min, max] of 5 covers 93.75% < 95%
    assert stats.median_ci(np.arange(6))[:2] == (0.0, 5.0)  # of 6: 96.9%


def test_share_ci_is_exact_and_says_something_when_every_seed_agrees():
    lo, hi = stats.share_ci(20, 0, 20)
    assert lo == pytest.approx(0.8316, abs=1e-4) and hi == 1.0  # not [1, 1], as the bootstrap gave
    lo, hi = stats.share_ci(10, 0, 10)
    assert lo == pytest.approx(0.6915, abs=1e-4) and hi == 1.0
    lo, hi = stats.share_ci(0, 0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.3085, abs=1e-4)
    # ties: the lower bound counts them as losses, the upper as wins
    assert stats.share_ci(4, 2, 10) == (stats.share_ci(4, 0, 10)[0], stats.share_ci(6, 0, 10)[1])
    assert all(np.isnan(stats.share_ci(0, 0, 0)))


def test_hodges_lehmann_and_its_exact_interval_by_hand():
    # Walsh averages of 1..10: 55 of them; the 9th smallest is 3 and the 47th 8 (c = 8: P(W+ <= 8) = 25/1024).
    est, lo, hi, coverage = stats.hodges_lehmann(np.arange(10, 0, -1))
    assert (est, lo, hi) == (5.5, 3.0, 8.0) and coverage == 1 - 2 * 25 / 1024
    assert stats.hodges_lehmann(np.array([0.0, 1.0, 3.0]))[0] == 1.25  # median of 0, .5, 1, 1.5, 2, 3
    assert np.isnan(stats.hodges_lehmann(np.arange(5.0))[1])  # n = 5 cannot reach 95%
    d = np.array([-np.inf, *np.linspace(-1, 1, 9)])  # one pair with a zero error: a finite estimate
    assert np.isfinite(stats.hodges_lehmann(d)[0])


def test_benjamini_hochberg_by_hand():
    adjusted = stats.benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.5, np.nan]))
    np.testing.assert_allclose(adjusted[:4], [0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5])
    assert np.isnan(adjusted[4])
    assert (stats.benjamini_hochberg(np.array([0.2, 0.3])) <= stats.holm(np.array([0.2, 0.3]))).all()


def test_benjamini_yekutieli_by_hand():
    # 3 tests: BH gives 0.03, 0.04, 0.04 (for 0.01, 0.04, 0.03); BY multiplies by 1 + 1/2 + 1/3.
    adjusted = stats.benjamini_yekutieli(np.array([0.01, 0.04, 0.03, np.nan]))
    np.testing.assert_allclose(adjusted[:3], np.array([0.03, 0.04, 0.04]) * 11 / 6)
    assert np.isnan(adjusted[3])
    assert stats.benjamini_yekutieli(np.array([0.5, 0.9]))[1] == 1.0  # capped


def test_the_bootstrap_does_not_depend_on_the_order_of_its_data():
    x = np.random.default_rng(0).lognormal(size=12)
    assert stats.bootstrap_ci(x, stats.iqm, seed=5) == stats.bootstrap_ci(x[::-1].copy(), stats.iqm, seed=5)


def test_detectable_ratio_by_hand():
    # d = log(a / b) = -1, +1 five times each: sd sqrt(10 / 9); z(0.975) + z(0.8) = 2.80158;
    # sqrt(n 3 / pi) = 3.09019: exp(2.80158 * 1.05409 / 3.09019) = 2.6003.
    a, b = np.exp(np.array([-1.0, 1.0] * 5)), np.ones(10)
    assert stats.detectable_ratio(a, b) == pytest.approx(2.6003, abs=1e-3)
    assert stats.detectable_ratio(a, b, family=6) > stats.detectable_ratio(a, b)  # a larger family sees less
    assert np.isnan(stats.detectable_ratio(a[:5], b[:5]))  # 5 seeds can reject nothing
    assert np.isnan(stats.detectable_ratio(np.zeros(10), b))  # a zero error: no spread to speak of


def test_walsh_order_statistics_by_selection_are_exact():
    """kth_walsh against all Walsh averages sorted, ties and negative values included, at the ends,
    the middle and random ranks."""
    rng = np.random.default_rng(0)
    for _ in range(100):
        n = int(rng.integers(1, 200))
        d = np.sort(np.round(rng.normal(size=n), int(rng.integers(0, 3))))
        i, j = np.triu_indices(n)
        walsh = np.sort((d[i] + d[j]) / 2)
        for k in {0, len(walsh) - 1, len(walsh) // 2, int(rng.integers(0, len(walsh)))}:
            assert stats.kth_walsh(d, k) == walsh[k]


def test_hodges_lehmann_past_the_direct_size_is_the_same_and_light(monkeypatch):
    """Past WALSH_DIRECT pairs the estimate and interval come by selection: the same numbers as
    forming every average (checked at a size both can do), and 100,000 pairs (5e9 averages, 40 GB
    formed) without forming them."""
    d = np.random.default_rng(1).standard_t(3, size=2500)
    direct = stats.hodges_lehmann(d)
    monkeypatch.setattr(stats, "WALSH_DIRECT", 100)
    assert stats.hodges_lehmann(d) == direct
    big = np.random.default_rng(2).normal(0.3, 1.0, size=100_000)
    est, lo, hi, coverage = stats.hodges_lehmann(big)
    assert lo < est < hi and abs(est - 0.3) < 0.02 and coverage == pytest.approx(0.95, abs=1e-3)
