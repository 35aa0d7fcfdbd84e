"""Classical approximators on the same data, scored with the same metrics as the networks.

Each baseline sees exactly what a network with the same seed sees: the training points of that
seed's split (x, f(x) and, for the Hermite spline, f'(x)), and is scored on its validation split
and on the dense grid. They put the networks' errors in perspective.
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
import pandas as pd
from numpy.polynomial import Chebyshev
from numpy.polynomial import chebyshev as cheb
from scipy.interpolate import CubicHermiteSpline, CubicSpline
from scipy.linalg import solve_triangular

from .metrics import Predictor, errors
from .target import dense_grid, make_split, runge, runge_derivative

MAX_SCAN_DEGREE = 200  # the validation scan for the best degree stops here (errors grow past ~100)


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


def _score(predict: Predictor, x_val: np.ndarray) -> dict[str, float]:
    return errors(x_val, *predict(x_val), "val") | errors(dense_grid(), *predict(dense_grid()), "grid")


def best_degree(x: np.ndarray, f: np.ndarray, x_val: np.ndarray, f_val: np.ndarray, df_val: np.ndarray) -> int:
    """The Chebyshev degree whose least-squares fit to (x, f) has the lowest validation
    MSE(f) + MSE(f') against (f_val, df_val) at x_val, scanning 1..MAX_SCAN_DEGREE.

    Chosen on the validation split, so its validation metrics are optimistic; its dense-grid
    metrics are the honest ones.
    """
    top = min(MAX_SCAN_DEGREE, len(x) - 1)
    # One QR of the Chebyshev design matrix serves every degree: the least-squares fit of degree d
    # uses its first d+1 columns, Q[:, :d+1] and R[:d+1, :d+1].
    q, r = np.linalg.qr(cheb.chebvander(x, top))
    qtf = q.T @ f
    vander_val = cheb.chebvander(x_val, top)
    best, best_loss = 1, np.inf
    for degree in range(1, top + 1):
        c = solve_triangular(r[: degree + 1, : degree + 1], qtf[: degree + 1])
        fv, dfv = vander_val[:, : degree + 1] @ c, cheb.chebval(x_val, cheb.chebder(c))
        loss = np.mean((fv - f_val) ** 2) + np.mean((dfv - df_val) ** 2)
        if loss < best_loss:
            best, best_loss = degree, loss
    return best


def baseline_runs(seeds: list[int], n_points: int = 1000, val_fraction: float = 0.2) -> pd.DataFrame:
    """One row per (baseline, seed): the baseline's name, its parameter count, the eight metrics."""
    rows = []
    for seed in seeds:
        split = make_split(n_points, val_fraction, seed)
        x, xv = split.x_train, split.x_val
        f, df = runge(x), runge_derivative(x)
        max_degree = len(x) - 1  # as many coefficients as least squares on the training points allows
        degree = best_degree(x, f, xv, runge(xv), runge_derivative(xv))
        fits: list[tuple[str, int, Callable[[], Predictor]]] = [
            (f"chebyshev, degree {max_degree}", max_degree + 1, lambda: _chebyshev(x, f, max_degree)),
            ("chebyshev, best degree on validation", degree + 1, lambda: _chebyshev(x, f, degree)),
            ("cubic spline", 4 * (len(x) - 1), lambda: _spline(x, f)),
            ("cubic Hermite spline (uses f')", 4 * (len(x) - 1), lambda: _hermite(x, f, df)),
        ]
        for name, n_params, fit in fits:
            rows.append({"baseline": name, "seed": seed, "n_params": n_params, **_score(fit(), xv)})
    return pd.DataFrame(rows)
