"""Classical approximators on the same data, scored with the same metrics as the networks.

Each baseline sees exactly what a network with the same seed sees: the training points of that
seed's split (x, f(x) and, for the Hermite spline, f'(x)), and is scored on its validation split
and on the dense grid. They put the networks' errors in perspective.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
from numpy.polynomial import Chebyshev
from numpy.polynomial import chebyshev as cheb
from scipy.interpolate import CubicHermiteSpline, CubicSpline
from scipy.linalg import solve_triangular

from ..engine.metrics import Predictor, errors
from ..problem.data import dense_grid, make_split, with_noise
from ..problem.targets import Target, get_target, target_order
from ..problem.vocabulary import SPLIT_FIELDS
from .tables import select

# The validation scan for a degree stops at MAX_SCAN_DEGREE: past it, a few ulps of change in the
# training values move the validation loss by more than 1e-4 (relative), past 160 by 1e-2, so a
# choice among higher degrees would be rounding noise (another BLAS, another degree).
MAX_SCAN_DEGREE = 120
# The Chebyshev degree rule (see chosen_degree): validation losses below LOSS_FLOOR count as equal,
# and the smallest degree within DEGREE_FACTOR of the best wins.
LOSS_FLOOR = 1e-12
DEGREE_FACTOR = 2.0
CHEBYSHEV = "chebyshev, degree by validation rule"
DEGREE_RULE = (
    f"the smallest degree whose validation loss MSE(f) + MSE(f') is within {DEGREE_FACTOR:g}x of "
    f"the best degree's (1-{MAX_SCAN_DEGREE}), losses below {LOSS_FLOOR:g} counting as "
    f"{LOSS_FLOOR:g}"
)


def _chebyshev(x, f, degree: int) -> Predictor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # RankWarning at high degree is the point of the baseline
        p = Chebyshev.fit(x, f, degree, domain=[-1, 1])
    dp = p.deriv()
    return lambda t: (p(t), dp(t))


def _spline(x, f) -> Predictor:
    s = CubicSpline(x, f)  # not-a-knot ends, the scipy default
    return lambda t: (s(t), s(t, 1))


def _hermite(x, f, df) -> Predictor:
    s = CubicHermiteSpline(x, f, df)
    return lambda t: (s(t), s(t, 1))


def _score(predict: Predictor, x_val: np.ndarray, target: Target) -> dict[str, float]:
    grid = dense_grid()
    return errors(x_val, *predict(x_val), "val", target) | errors(grid, *predict(grid), "grid", target)


def validation_losses(
    x: np.ndarray, f: np.ndarray, x_val: np.ndarray, f_val: np.ndarray, df_val: np.ndarray
) -> np.ndarray:
    """Validation loss MSE(f) + MSE(f') against (f_val, df_val) at x_val of the Chebyshev
    least-squares fit to (x, f) of every degree 1..top, top = min(MAX_SCAN_DEGREE, len(x) - 1):
    an array of shape (top,), entry d - 1 for degree d."""
    top = min(MAX_SCAN_DEGREE, len(x) - 1)
    # One QR of the Chebyshev design matrix serves every degree: the least-squares fit of degree d
    # uses its first d+1 columns, Q[:, :d+1] and R[:d+1, :d+1].
    q, r = np.linalg.qr(cheb.chebvander(x, top))
    qtf = q.T @ f
    vander_val = cheb.chebvander(x_val, top)
    losses = np.empty(top)
    for degree in range(1, top + 1):
        c = solve_triangular(r[: degree + 1, : degree + 1], qtf[: degree + 1])
        fv, dfv = vander_val[:, : degree + 1] @ c, cheb.chebval(x_val, cheb.chebder(c))
        losses[degree - 1] = np.mean((fv - f_val) ** 2) + np.mean((dfv - df_val) ** 2)
    return losses


def chosen_degree(losses: np.ndarray, floor: float = LOSS_FLOOR, factor: float = DEGREE_FACTOR) -> int:
    """The degree DEGREE_RULE picks from validation_losses' output.

    Up to MAX_SCAN_DEGREE the losses are exact to ~1e-6 (relative) under a few ulps of change in
    the data; past it they are not. Below ~1e-12 they are the fits' rounding more than their
    approximation error, and the plain argmin is decided by it: so the floor, and the factor, which
    puts the threshold where the losses fall steeply (~1.4x per degree) and a decision needs a
    change of ~2x in a loss, not of its last digits.
    """
    losses = np.where(np.isfinite(losses), losses, np.inf)
    target = factor * max(float(losses.min()), floor)
    return int(np.flatnonzero(losses <= target)[0]) + 1


def best_degree(x: np.ndarray, f: np.ndarray, x_val: np.ndarray, f_val: np.ndarray, df_val: np.ndarray) -> int:
    """The Chebyshev degree chosen by DEGREE_RULE for a fit to (x, f), validated at x_val.

    Chosen on the validation split, so its validation metrics are optimistic; its dense-grid
    metrics are the honest ones.
    """
    return chosen_degree(validation_losses(x, f, x_val, f_val, df_val))


def study_baselines(df: pd.DataFrame, cell: dict) -> pd.DataFrame:
    """The baselines of a study's runs (a runs frame): fitted per target and per split
    (n_points, val_fraction) its runs use, each seed's split as the networks of that seed see it,
    for the seeds with an ok run in the reference `cell` at that split (all its seeds where none is
    ok). Columns: target, the split fields the study varies (tables.baseline_keys), then
    baseline_runs' columns; rows by target, split, seed and baseline."""
    split_axes = [a for a in SPLIT_FIELDS if df[a].nunique() > 1]
    parts = []
    for target in target_order(df.target):
        for split, _ in df.groupby(list(SPLIT_FIELDS), sort=True):
            at = dict(zip(SPLIT_FIELDS, split))
            ref = select(df, {**cell, **at})
            ref = ref if not ref.empty else select(df, at)  # the reference cell lies at another split
            seeds = set(ref.loc[ref.status == "ok", "seed"]) or set(ref.seed)
            if not seeds:
                continue
            fitted = baseline_runs(
                sorted(seeds), int(at["n_points"]), float(at["val_fraction"]), target, noise=float(at["noise"])
            )
            parts.append(fitted.assign(target=target, **{a: at[a] for a in split_axes}))
    out = pd.concat(parts, ignore_index=True)
    keys = ["target", *split_axes]
    return out[[*keys, *[c for c in out.columns if c not in keys]]]


def baseline_runs(
    seeds: list[int], n_points: int = 1000, val_fraction: float = 0.2, target: str = "runge", *, noise: float = 0.0
) -> pd.DataFrame:
    """One row per (baseline, seed): the baseline's name, its parameter count, the eight metrics,
    for fits to `target` (a key of target.TARGETS) from the training data the networks of that seed
    see (with their noise: data.with_noise), scored against the truth."""
    rows = [dict(row) for seed in seeds for row in _seed_baselines(int(seed), n_points, val_fraction, target, noise)]
    return pd.DataFrame(rows)


@functools.lru_cache(maxsize=8192)
def _seed_baselines(seed: int, n_points: int, val_fraction: float, target: str, noise: float) -> tuple[dict, ...]:
    """baseline_runs' rows for one seed: a function of the split and the target alone (not of any
    network's engine, dtype or width), so the reports of one process share them (the committed
    reports' tests regenerate the same 200 seeds for each engine)."""
    t = get_target(target)
    split = make_split(n_points, val_fraction, seed)
    x, xv = split.x_train, split.x_val
    f, df = with_noise(t.f(x), t.df(x), noise, seed)
    degree = best_degree(x, f, xv, t.f(xv), t.df(xv))
    # No interpolation-degree polynomial: least squares at degree len(x) - 1 truncates the
    # singular values below rcond, so its errors (1e4 on f') are set by rounding, and moved in the
    # third digit when the data moved by a few ulps.
    fits: list[tuple[str, int, Predictor]] = [
        (CHEBYSHEV, degree + 1, _chebyshev(x, f, degree)),
        ("cubic spline", 4 * (len(x) - 1), _spline(x, f)),
        ("cubic Hermite spline (uses f')", 4 * (len(x) - 1), _hermite(x, f, df)),
    ]
    return tuple(
        {"baseline": name, "seed": seed, "n_params": n_params, **_score(predict, xv, t)}
        for name, n_params, predict in fits
    )
