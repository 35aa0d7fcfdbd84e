"""Statistics on plain arrays, no plotting. Seeds are the unit of replication throughout.

Shapes: a sample `x` is (n_seeds,); paired samples `a`, `b` are (n_seeds,) aligned by seed; a
score matrix for rankings is (n_blocks, n_methods).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats as st

Statistic = Callable[..., np.ndarray]  # f(samples, axis=-1) -> statistic along the last axis
ALPHA = 0.05


def iqm(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% (25% trimmed from each end)."""
    return st.trim_mean(np.asarray(x, float), 0.25, axis=axis)


def median(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(np.asarray(x, float), axis=axis)


MIN_CI_N = 3  # no bootstrap CI from fewer values: resampling 2 values gives 3 possible answers


def median_ci(x: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Distribution-free CI of the median from order statistics: [x(k), x(n+1-k)] for the largest k
    whose exact coverage, 1 - 2 P(Bin(n, 1/2) <= k - 1), is at least `level`. Returns (lo, hi,
    coverage); (nan, nan, nan) when even [min, max] covers less (n < 6 at 95%). For n = 10:
    [x(2), x(9)], coverage 97.9%; n = 20: [x(6), x(15)], 95.9%. Exact for any continuous
    distribution, unlike the percentile bootstrap (which covered 93.9% at n = 10, lognormal)."""
    x = np.sort(np.asarray(x, float))
    n, best = len(x), None
    for k in range(1, n // 2 + 1):
        coverage = 1.0 - 2.0 * float(st.binom.cdf(k - 1, n, 0.5))
        if coverage < level:
            break
        best = (k, coverage)
    if best is None:
        return (float("nan"), float("nan"), float("nan"))
    k, coverage = best
    return float(x[k - 1]), float(x[n - k]), coverage


def share_ci(wins: int, ties: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) CI of the share of pairs in which a is lower, ties counting half:
    the lower bound as if every tie were a loss, the upper as if every tie were a win (so it covers
    the half-ties share). 20 of 20: [0.832, 1]; 10 of 10: [0.692, 1]. (nan, nan) without pairs."""
    return _share_ci(int(wins), int(ties), int(n), float(level))


@functools.lru_cache(maxsize=4096)
def _share_ci(wins: int, ties: int, n: int, level: float) -> tuple[float, float]:
    """share_ci's arithmetic: a function of four small numbers, so a report computes each once
    (a root search per bound; thousands of pairs share a few dozen (wins, ties, n))."""
    if n == 0:
        return (float("nan"), float("nan"))
    lo = st.binomtest(wins, n).proportion_ci(confidence_level=level, method="exact").low
    hi = st.binomtest(wins + ties, n).proportion_ci(confidence_level=level, method="exact").high
    return float(lo), float(hi)


EXACT_NULL_MAX = 400  # pairs: the signed-rank null exact up to here, its normal approximation beyond


def _signed_rank_null(n: int) -> np.ndarray:
    """P(W+ <= w) for w = 0 .. n(n+1)/2 under the null, exact: the counts of subsets of 1..n by
    sum, halved at each step so that no count overflows (halving is exact in binary floating
    point). Its cost grows as n^3: _critical_rank goes over to the normal approximation past
    EXACT_NULL_MAX pairs."""
    counts = np.zeros(n * (n + 1) // 2 + 1)
    counts[0] = 1.0
    for r in range(1, n + 1):
        counts[r:] = (counts[r:] + counts[:-r].copy()) / 2.0
        counts[:r] /= 2.0
    return np.cumsum(counts)


def _critical_rank(n: int, level: float) -> tuple[int, float] | None:
    """The largest w with P(W+ <= w) <= (1 - level) / 2 under the null, and that probability; None
    where no w qualifies. Exact up to EXACT_NULL_MAX pairs, beyond it the normal approximation with
    continuity correction (no array of n^2 / 2 probabilities)."""
    if n <= EXACT_NULL_MAX:
        cdf = _signed_rank_null(n)
        below = np.flatnonzero(cdf <= (1.0 - level) / 2.0)
        return (int(below[-1]), float(cdf[below[-1]])) if len(below) else None
    mean, sd = n * (n + 1) / 4.0, math.sqrt(n * (n + 1) * (2 * n + 1) / 24.0)
    c = math.floor(mean + sd * float(st.norm.ppf((1.0 - level) / 2.0)) - 0.5)
    return (c, float(st.norm.cdf((c + 0.5 - mean) / sd))) if c >= 0 else None


def hodges_lehmann(d: np.ndarray, level: float = 0.95) -> tuple[float, float, float, float]:
    """The Hodges-Lehmann estimate of d's centre (the median of its Walsh averages (d_i + d_j) / 2,
    i <= j) with the exact CI that inverts the signed-rank test: [W(c+1), W(M-c)] of the M sorted
    Walsh averages, c the largest w with P(W+ <= w) <= (1 - level) / 2. Returns (estimate, lo, hi,
    coverage); the interval is (nan, nan) where no c exists (n < 6 at 95%). For n = 10: c = 8, the
    9th and 47th of 55, coverage 95.1%. d: paired log ratios; infinities (a zero error) sort to the
    ends, where they belong."""
    d = np.sort(np.asarray(d, float))
    n = len(d)
    if n == 0:
        return (float("nan"),) * 4
    if n > WALSH_DIRECT:  # n(n+1)/2 averages would not fit: select the ones needed
        return _hodges_lehmann_large(d, level)
    i, j = np.triu_indices(n)
    with np.errstate(invalid="ignore"):
        walsh = np.sort((d[i] + d[j]) / 2.0)
    walsh = walsh[~np.isnan(walsh)]  # inf + -inf: a pair of opposite exact fits says nothing
    estimate = float(np.median(walsh)) if len(walsh) else float("nan")
    critical = _critical_rank(n, level)
    if critical is None or len(walsh) < len(i):
        return estimate, float("nan"), float("nan"), float("nan")
    c, p = critical
    return estimate, float(walsh[c]), float(walsh[len(walsh) - 1 - c]), 1.0 - 2.0 * p


WALSH_DIRECT = 3000  # up to this many pairs, all n(n+1)/2 Walsh averages are formed (36 MB at 3000)


def _hodges_lehmann_large(d: np.ndarray, level: float) -> tuple[float, float, float, float]:
    """hodges_lehmann for sorted d past WALSH_DIRECT pairs, the same numbers without forming the
    Walsh averages: each order statistic by selection (kth_walsh), O(n log n) memory-light steps.
    Infinite log ratios (zero errors) leave no interval here (a pair of opposite ones has no
    average): the estimate is then over the finite ones and the interval nan."""
    finite = d[np.isfinite(d)]
    m = len(finite) * (len(finite) + 1) // 2
    if m == 0:
        return (float("nan"),) * 4
    mid = (kth_walsh(finite, (m - 1) // 2) + kth_walsh(finite, m // 2)) / 2.0
    critical = _critical_rank(len(d), level)
    if critical is None or len(finite) < len(d):
        return mid, float("nan"), float("nan"), float("nan")
    c, p = critical
    return mid, kth_walsh(finite, c), kth_walsh(finite, m - 1 - c), 1.0 - 2.0 * p


def _count_walsh(d: np.ndarray, t: float) -> int:
    """How many Walsh averages (d_i + d_j) / 2, i <= j, of sorted finite d are at or below t."""
    j = np.searchsorted(d, 2.0 * t - d, side="right")
    return int(np.sum(np.maximum(j - np.arange(len(d)), 0)))


def kth_walsh(d: np.ndarray, k: int) -> float:
    """The k-th smallest (0-based) Walsh average of sorted finite d, exactly, without forming all
    n(n+1)/2 of them: bisect on the value until at most 4n averages lie in the bracket (counting
    them costs O(n log n)), then sort just those."""
    n, idx = len(d), np.arange(len(d))
    lo, hi = float(d[0]) - 1.0, float(d[-1])  # no average is at or below lo; every one at or below hi
    for _ in range(200):  # float bisection ends well before: the bracket holds few averages
        start = np.maximum(np.searchsorted(d, 2.0 * lo - d, side="right"), idx)
        inside = int(np.sum(np.maximum(np.searchsorted(d, 2.0 * hi - d, side="right") - start, 0)))
        mid = lo + (hi - lo) / 2.0
        if inside <= 4 * n or not lo < mid < hi:
            break
        lo, hi = (lo, mid) if _count_walsh(d, mid) > k else (mid, hi)
    start = np.maximum(np.searchsorted(d, 2.0 * lo - d, side="right"), idx)
    stop = np.searchsorted(d, 2.0 * hi - d, side="right")
    bracket = np.sort(np.concatenate([(d[r] + d[start[r] : stop[r]]) / 2.0 for r in np.flatnonzero(stop > start)]))
    return float(bracket[k - _count_walsh(d, lo)])


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate over the whole family), same
    order as the input; nan stays nan. A p_bh below q keeps the expected share of false
    discoveries among the family's rejections below q (for independent or positively dependent
    tests)."""
    return _adjusted(p_values, lambda s: np.minimum.accumulate((s * len(s) / np.arange(1, len(s) + 1))[::-1])[::-1])


def benjamini_yekutieli(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Yekutieli adjusted p-values: Benjamini-Hochberg's times c(m) = 1 + 1/2 + ... + 1/m,
    which controls the false discovery rate under any dependence between the tests (Benjamini &
    Yekutieli 2001). The report's tests share seeds and splits, so their dependence is not known
    to be positive, as BH assumes."""
    p = np.asarray(p_values, float)
    c = float(np.sum(1.0 / np.arange(1, np.count_nonzero(~np.isnan(p)) + 1)))
    return np.minimum(1.0, benjamini_hochberg(p) * c)


def _adjusted(p_values: np.ndarray, adjust: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """p-values adjusted for multiplicity by `adjust`, which maps the sorted p-values of the tests
    (nan left out) to their adjusted values; same order as the input, nan stays nan, capped at 1."""
    p = np.asarray(p_values, float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    if len(ok) == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    out[order] = np.minimum(1.0, adjust(p[order]))
    return out


def bootstrap_ci(
    x: np.ndarray, statistic: Statistic, *, seed: int, n_resamples: int = 10_000, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap CI of statistic(x), resampling seeds with replacement.

    Seeded, so the same data gives the same interval byte for byte. Fewer than MIN_CI_N values:
    (nan, nan).
    """
    x = np.sort(np.asarray(x, float))  # resampled from the sorted values: the rows' order cannot matter
    if len(x) < MIN_CI_N:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    resampled = statistic(x[rng.integers(0, len(x), size=(n_resamples, len(x)))], axis=-1)
    lo, hi = np.quantile(resampled, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def share_lower(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    """The share of pairs (seeds) in which a's error is lower than b's, ties counting half.

    Paired: pair i compares a[i] with b[i] only (same seed, same split, same initialisation seed),
    unlike the Mann-Whitney P(A < B) over all n x n combinations, which ignores the pairing.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    return (a < b).mean(axis=axis) + 0.5 * (a == b).mean(axis=axis)


def log_ratios(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, int]:
    """log(a) - log(b) per pair of errors, and how many pairs hold a zero error.

    Errors span decades and effects are ratios, so paired tests run on this scale: a seed whose
    errors are both large no longer outweighs the others. A zero error (an exact fit) has no
    logarithm: a pair with one is a tie when both are zero, else -inf or +inf (the largest
    difference, which is all a rank test needs of it). Negative or non-finite errors are a bug
    upstream and raise ValueError.
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if np.any(~np.isfinite(a) | ~np.isfinite(b) | (a < 0) | (b < 0)):
        raise ValueError("errors must be finite and non-negative")
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.log(a) - np.log(b)
    d[(a == 0) & (b == 0)] = 0.0
    return d, int(np.sum((a == 0) | (b == 0)))


def min_wilcoxon_p(n_pairs: int) -> float:
    """The smallest two-sided p-value the exact Wilcoxon signed-rank test can give on n pairs:
    all differences of one sign, probability 2 / 2^n."""
    return min(1.0, math.ldexp(2.0, -n_pairs)) if n_pairs > 0 else 1.0  # 2 / 2^n, 0.0 past float range


def detectable_ratio(a: np.ndarray, b: np.ndarray, family: int = 1, alpha: float = ALPHA, power: float = 0.8) -> float:
    """The smallest ratio of errors (a factor above 1) that the paired Wilcoxon test on these seeds
    would detect with `power`, at the observed spread of the log ratios, in a Holm family of
    `family` tests (its strictest step, alpha / family): exp((z(1 - alpha / (2 family)) +
    z(power)) s / sqrt(n 3 / pi)), s the sd of log(a) - log(b) over the n seeds and 3 / pi the
    signed-rank test's efficiency relative to the t test under normality (Lehmann 1975). What an
    "inconclusive" could have seen (Colas, Sigaud & Oudeyer 2018); nan below 6 pairs or with a zero
    error (an infinite log ratio has no spread)."""
    d, zeros = log_ratios(a, b)
    n = len(d)
    if n < 6 or zeros or min_wilcoxon_p(n) > alpha / family:
        return float("nan")
    s = float(np.std(d, ddof=1))
    z = st.norm.ppf(1 - alpha / (2 * family)) + st.norm.ppf(power)
    return float(np.exp(z * s / np.sqrt(n * 3 / np.pi)))


@functools.cache
def fisher_rejects(n_a: int, n_b: int, alpha: float = ALPHA) -> np.ndarray:
    """(n_a + 1, n_b + 1) bool: where Fisher's exact test (two-sided, as scipy computes it: the
    tables of the observed margins no more probable than the observed one, relative tolerance 1e-7)
    rejects k_a of n_a against k_b of n_b at alpha. Every table at once, per total k_a + k_b."""
    out = np.zeros((n_a + 1, n_b + 1), dtype=bool)
    for total in range(n_a + n_b + 1):
        k = np.arange(max(0, total - n_b), min(n_a, total) + 1)  # the possible k_a
        pmf = st.hypergeom.pmf(k, n_a + n_b, total, n_a)
        p = (pmf[None, :] <= pmf[:, None] * (1 + 1e-7)).astype(float) @ pmf
        out[k, total - k] = np.minimum(p, 1.0) < alpha
    return out


def detectable_tail(n_a: int, n_b: int, share: float, alpha: float = ALPHA, power: float = 0.8) -> float:
    """The smallest share of B's runs in the tail that Fisher's exact test would tell apart from
    A's `share` with the given power (exact: binomial outcomes on both sides, every table
    enumerated), searched on a grid of 0.005; nan when even a share of 1 is not found that often.
    What a "tails do not differ" could have seen."""
    rejects = fisher_rejects(n_a, n_b, alpha).astype(float)
    pa = st.binom.pmf(np.arange(n_a + 1), n_a, share)
    grid = np.round(np.arange(np.ceil(share / 0.005) * 0.005 + 0.005, 1.0 + 1e-9, 0.005), 3)
    pb = st.binom.pmf(np.arange(n_b + 1)[None, :], n_b, grid[:, None])  # (grid, n_b + 1)
    found = np.flatnonzero(pb @ (pa @ rejects) >= power)
    return float(grid[found[0]]) if len(found) else float("nan")


def wilson(x: int, n: int, z: float) -> tuple[float, float]:
    """Wilson's score interval for a proportion x / n at normal quantile z."""
    if n == 0:
        return 0.0, 1.0
    z2 = z * z
    centre = (x + z2 / 2) / (n + z2)
    half = z * math.sqrt(x * (n - x) / n + z2 / 4) / (n + z2)
    return max(0.0, centre - half), min(1.0, centre + half)


def share_difference_ci(x_a: int, n_a: int, x_b: int, n_b: int, level: float = 0.90) -> tuple[float, float]:
    """Newcombe's hybrid score interval (his method 10, Stat. Med. 1998) for x_b / n_b - x_a / n_a,
    two independent proportions: good coverage at small n and at shares of 0 or 1, where the Wald
    interval collapses to a point. At level 0.90 it is the interval of TOST at alpha 0.05: a
    difference is shown within a margin when the whole interval is."""
    z = float(st.norm.ppf(0.5 + level / 2))
    la, ua = wilson(x_a, n_a, z)
    lb, ub = wilson(x_b, n_b, z)
    pa, pb = x_a / n_a, x_b / n_b
    return pb - pa - math.hypot(pb - lb, ua - pa), pb - pa + math.hypot(ub - pb, pa - la)


def reach(n_pairs: int, alpha: float = ALPHA) -> str:
    """What n paired seeds can show, in one sentence: the smallest two-sided Wilcoxon p they can
    reach, and the largest family in which Holm can still reject with it (a family of k tests needs
    a p below alpha / k)."""
    p = min_wilcoxon_p(n_pairs)
    if p > alpha:
        return f"{n_pairs} seeds cannot reach p < {alpha:g} in a paired Wilcoxon test (its smallest p is {p:.3g}): no test can reject"
    k = math.floor(alpha / p * (1 + 1e-9))  # the largest family: alpha / k >= p, up to rounding
    size = f"of up to {k:,} tests" if k < 10**6 else "of a million tests and more"
    return f"with {n_pairs} seeds the smallest paired Wilcoxon p is {p:.3g}, so Holm can reject in families {size}"


@dataclass(frozen=True)
class PairedTest:
    n_pairs: int
    a_wins: int  # pairs where a < b
    ties: int  # pairs where a == b
    median_ratio: float  # median over seeds of a / b, taken on the log scale (so b/a is its inverse)
    ratio: float  # the effect: exp of the Hodges-Lehmann estimate of log(a) - log(b)
    ratio_ci: tuple[float, float]  # its exact 95% CI (signed-rank inversion); nan below 6 pairs
    share: float  # share of pairs where a < b, ties half (share_lower)
    share_ci: tuple[float, float]  # exact (Clopper-Pearson) 95% CI; nan without pairs
    favours: str  # "a", "b" or "" (no direction): the side the signed-rank statistic points to
    p_value: float  # Wilcoxon signed-rank on log(a) - log(b), two-sided; nan when it cannot reach ALPHA
    note: str  # why p_value is nan, and pairs with a zero error; else ""


def paired_test(a: np.ndarray, b: np.ndarray) -> PairedTest:
    """Compare two methods paired by seed (same split, same init seed): a and b are (n_seeds,)
    errors. The effect is the ratio a/b, estimated on the log scale (Hodges-Lehmann) with the exact
    CI of the signed-rank test, which runs on log(a) - log(b) (log_ratios): the scale the effect is
    reported on. Nothing here is random: the same errors give the same numbers."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    n = len(a)
    d, zeros = log_ratios(a, b)
    ratio = float(np.exp(np.median(d))) if n else float("nan")
    ranks = st.rankdata(np.abs(d[d != 0]))
    w_a, w_b = ranks[d[d != 0] < 0].sum(), ranks[d[d != 0] > 0].sum()  # signed-rank sums for a, b
    notes, p = [], float("nan")
    if n == 0:
        notes.append("no pairs")
    elif min_wilcoxon_p(n) > ALPHA:
        notes.append(f"n={n} pairs: the smallest possible p is {min_wilcoxon_p(n):.3g} > {ALPHA}; no test")
    elif np.all(d == 0):
        notes.append("all pairs equal")
    else:
        p = float(st.wilcoxon(d, alternative="two-sided").pvalue)
    if zeros:
        notes.append(f"{zeros} pairs with a zero error (log ratio ±inf, or 0 when both are zero)")
    hl, lo, hi, _ = hodges_lehmann(d)
    a_wins, ties = int(np.sum(a < b)), int(np.sum(a == b))
    return PairedTest(
        n_pairs=n,
        a_wins=a_wins,
        ties=ties,
        median_ratio=ratio,
        ratio=float(np.exp(hl)),
        ratio_ci=(float(np.exp(lo)), float(np.exp(hi))),
        share=float(share_lower(a, b)) if n else float("nan"),
        share_ci=share_ci(a_wins, ties, n),
        favours="a" if w_a > w_b else ("b" if w_b > w_a else ""),
        p_value=p,
        note="; ".join(notes),
    )


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down), same order as the input; nan stays nan."""
    return _adjusted(p_values, lambda s: np.maximum.accumulate((len(s) - np.arange(len(s))) * s))


@dataclass(frozen=True)
class Ranking:
    methods: tuple[str, ...]
    mean_ranks: tuple[float, ...]  # 1 = best (lowest error)
    n_blocks: int
    statistic: float
    p_value: float
    critical_difference: float  # Nemenyi, at ALPHA


def friedman(scores: np.ndarray, methods: list[str]) -> Ranking:
    """Friedman test on a (n_blocks, n_methods) error matrix (lower is better), with mean ranks and
    the Nemenyi critical difference: two methods whose mean ranks differ by more than it differ
    significantly at ALPHA."""
    scores = np.asarray(scores, float)
    n, k = scores.shape
    ranks = st.rankdata(scores, axis=1)
    stat, p = st.friedmanchisquare(*scores.T) if k >= 3 and n >= 2 else (float("nan"), float("nan"))
    q = st.studentized_range.ppf(1 - ALPHA, k, np.inf) / np.sqrt(2) if k >= 2 else float("nan")
    cd = float(q * np.sqrt(k * (k + 1) / (6.0 * n)))
    return Ranking(
        methods=tuple(methods),
        mean_ranks=tuple(float(r) for r in ranks.mean(axis=0)),
        n_blocks=n,
        statistic=float(stat),
        p_value=float(p),
        critical_difference=cd,
    )


def percentile_of(values: np.ndarray, x: float) -> float:
    """Where x falls among values, 0-100 (ties count half)."""
    return float(st.percentileofscore(np.asarray(values, float), x, kind="mean"))
