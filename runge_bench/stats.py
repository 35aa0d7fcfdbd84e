"""Statistics on plain arrays, no plotting. Seeds are the unit of replication throughout.

Shapes: a sample `x` is (n_seeds,); paired samples `a`, `b` are (n_seeds,) aligned by seed; a
score matrix for rankings is (n_blocks, n_methods).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import stats as st

Statistic = Callable[..., np.ndarray]  # f(samples, axis=-1) -> statistic along the last axis
ALPHA = 0.05


def iqm(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% (25% trimmed from each end)."""
    return st.trim_mean(np.asarray(x, float), 0.25, axis=axis)


def median(x: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(np.asarray(x, float), axis=axis)


def bootstrap_ci(x: np.ndarray, statistic: Statistic, *, seed: int, n_resamples: int = 10_000,
                 level: float = 0.95) -> tuple[float, float]:  # fmt: skip
    """Percentile bootstrap CI of statistic(x), resampling seeds with replacement.

    Seeded, so the same data gives the same interval byte for byte. Fewer than 2 values: (nan, nan).
    """
    x = np.asarray(x, float)
    if len(x) < 2:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    resampled = statistic(x[rng.integers(0, len(x), size=(n_resamples, len(x)))], axis=-1)
    lo, hi = np.quantile(resampled, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def probability_of_improvement(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    """P(A < B): the chance that a random run of A has a lower error than a random run of B,
    ties counting half (the Mann-Whitney U statistic over n_a * n_b)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    less = (a[..., :, None] < b[..., None, :]).mean(axis=(-1, -2))
    ties = (a[..., :, None] == b[..., None, :]).mean(axis=(-1, -2))
    return less + 0.5 * ties


def paired_bootstrap_poi(a: np.ndarray, b: np.ndarray, *, seed: int, n_resamples: int = 2000,
                         level: float = 0.95) -> tuple[float, float]:  # fmt: skip
    """Bootstrap CI of P(A < B), resampling seeds (pairs) jointly."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2:
        return (float("nan"), float("nan"))
    idx = np.random.default_rng(seed).integers(0, len(a), size=(n_resamples, len(a)))
    lo, hi = np.quantile(probability_of_improvement(a[idx], b[idx]), [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def min_wilcoxon_p(n_pairs: int) -> float:
    """The smallest two-sided p-value the exact Wilcoxon signed-rank test can give on n pairs:
    all differences of one sign, probability 2 / 2^n."""
    return min(1.0, 2.0 / 2.0**n_pairs) if n_pairs > 0 else 1.0


@dataclass(frozen=True)
class PairedTest:
    n_pairs: int
    a_wins: int  # pairs where a < b
    median_ratio: float  # median over seeds of a / b, taken on the log scale (so b/a is its inverse)
    poi: float  # P(A < B)
    poi_ci: tuple[float, float]
    p_value: float  # Wilcoxon signed-rank, two-sided; nan when the test cannot reach ALPHA
    note: str  # why p_value is nan, else ""


def paired_test(a: np.ndarray, b: np.ndarray, *, seed: int) -> PairedTest:
    """Compare two methods paired by seed (same split, same init seed): a and b are (n_seeds,)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    n = len(a)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float(np.exp(np.median(np.log(a) - np.log(b)))) if n else float("nan")
    poi = float(probability_of_improvement(a, b)) if n else float("nan")
    note, p = "", float("nan")
    if n == 0:
        note = "no pairs"
    elif min_wilcoxon_p(n) > ALPHA:
        note = f"n={n} pairs: the smallest possible p is {min_wilcoxon_p(n):.3g} > {ALPHA}; no test"
    elif np.all(a == b):
        note = "all pairs equal"
    else:
        p = float(st.wilcoxon(a, b, alternative="two-sided").pvalue)
    return PairedTest(n_pairs=n, a_wins=int(np.sum(a < b)), median_ratio=ratio, poi=poi,
                      poi_ci=paired_bootstrap_poi(a, b, seed=seed), p_value=p, note=note)  # fmt: skip


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
    stat, p = (st.friedmanchisquare(*scores.T) if k >= 3 and n >= 2 else (float("nan"), float("nan")))
    q = st.studentized_range.ppf(1 - ALPHA, k, np.inf) / np.sqrt(2) if k >= 2 else float("nan")
    cd = float(q * np.sqrt(k * (k + 1) / (6.0 * n)))
    return Ranking(methods=tuple(methods), mean_ranks=tuple(float(r) for r in ranks.mean(axis=0)),
                   n_blocks=n, statistic=float(stat), p_value=float(p), critical_difference=cd)  # fmt: skip


def percentile_of(values: np.ndarray, x: float) -> float:
    """Where x falls among values, 0-100 (ties count half)."""
    return float(st.percentileofscore(np.asarray(values, float), x, kind="mean"))
