"""Error metrics of a trained network: MSE and max error of f and f' on validation and a dense grid."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..problem.data import Split, dense_grid, plot_grid
from ..problem.targets import TARGETS, Target

Predictor = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # x (n,) -> (f(x), f'(x))


def errors(
    x: np.ndarray, f: np.ndarray, df: np.ndarray, prefix: str, target: Target = TARGETS["runge"]
) -> dict[str, float]:
    """MSE and max absolute error of predictions f, f' at points x, against the target."""
    ef = np.asarray(f, np.float64) - target.f(x)
    edf = np.asarray(df, np.float64) - target.df(x)
    return {
        f"{prefix}_f_mse": float(np.mean(ef**2)),
        f"{prefix}_f_max": float(np.max(np.abs(ef))),
        f"{prefix}_df_mse": float(np.mean(edf**2)),
        f"{prefix}_df_max": float(np.max(np.abs(edf))),
    }


def evaluate(predict: Predictor, split: Split, target: Target) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Score a trained model: the eight metrics, and its predictions on the plotting grid."""
    metrics = errors(split.x_val, *predict(split.x_val), "val", target)
    grid = dense_grid()
    metrics |= errors(grid, *predict(grid), "grid", target)
    f, df = predict(plot_grid())
    return metrics, {"f": np.asarray(f, np.float32), "df": np.asarray(df, np.float32)}
