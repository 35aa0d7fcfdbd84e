"""Statistics on plain arrays, no plotting. Seeds are the unit of replication throughout.

Shapes: a sample `x` is (n_seeds,); paired samples `a`, `b` are (n_seeds,) aligned by seed; a
score matrix for rankings is (n_blocks, n_methods).
"""

from __future__ import annotations

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


def bootstrap_ci(
    x: np.ndarray, statistic: Statistic, *, seed: int, n_resamples: int = 10_000, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap CI of statistic(x), resampling seeds with replacement.

    Seeded, so the same data gives the same interval byte for byte. Fewer than MIN_CI_N values:
    (nan, nan).
    """
    x = np.asarray(x, float)
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


def paired_bootstrap_share(
    a: np.ndarray, b: np.ndarray, *, seed: int, n_resamples: int = 2000, level: float = 0.95
) -> tuple[float, float]:
    """Bootstrap CI of share_lower(a, b), resampling seeds (pairs) jointly; (nan, nan) below
    MIN_CI_N pairs."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < MIN_CI_N:
        return (float("nan"), float("nan"))
    idx = np.random.default_rng(seed).integers(0, len(a), size=(n_resamples, len(a)))
    lo, hi = np.quantile(share_lower(a[idx], b[idx]), [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


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
    return min(1.0, 2.0 / 2.0**n_pairs) if n_pairs > 0 else 1.0


@dataclass(frozen=True)
class PairedTest:
    n_pairs: int
    a_wins: int  # pairs where a < b
    ties: int  # pairs where a == b
    median_ratio: float  # median over seeds of a / b, taken on the log scale (so b/a is its inverse)
    share: float  # share of pairs where a < b, ties half (share_lower)
    share_ci: tuple[float, float]  # bootstrap over seeds; nan below MIN_CI_N pairs
    favours: str  # "a", "b" or "" (no direction): the side the signed-rank statistic points to
    p_value: float  # Wilcoxon signed-rank on log(a) - log(b), two-sided; nan when it cannot reach ALPHA
    note: str  # why p_value is nan, and pairs with a zero error; else ""


def paired_test(a: np.ndarray, b: np.ndarray, *, seed: int) -> PairedTest:
    """Compare two methods paired by seed (same split, same init seed): a and b are (n_seeds,)
    errors. The Wilcoxon signed-rank test runs on log(a) - log(b) (log_ratios), the scale the
    effect is reported on."""
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
    return PairedTest(
        n_pairs=n,
        a_wins=int(np.sum(a < b)),
        ties=int(np.sum(a == b)),
        median_ratio=ratio,
        share=float(share_lower(a, b)) if n else float("nan"),
        share_ci=paired_bootstrap_share(a, b, seed=seed),
        favours="a" if w_a > w_b else ("b" if w_b > w_a else ""),
        p_value=p,
        note="; ".join(notes),
    )


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down), same order as the input; nan stays nan."""
    p = np.asarray(p_values, float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out[order] = adjusted
    return out


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
