"""Performance profiles (Dolan & Moré 2002) over every problem of a study.

A problem is one (cell, seed): the runs of every activation on the same split, initialisation seed
and settings. For each problem, an activation's performance ratio is its error over the lowest
error any activation reached on that problem; a run that diverged or failed, or is missing, never
comes within any factor (ratio +inf). An activation's profile rho(tau) is the share of problems on
which its ratio is at most tau: rho(1) is how often it is the best, and the tau at which rho reaches
1 says how far behind it can fall. Unlike a mean rank, the profile of one activation does not change
when another is added, except through the per-problem best.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..problem.activations import activation_order
from . import tables


def has_cells(df: pd.DataFrame) -> bool:
    """Whether the runs span two or more cells (profiles over one cell are the per-cell tables again)."""
    axes = tables.cell_axes(df)
    return bool(axes) and len(df[axes].drop_duplicates()) >= 2


def performance_ratios(df: pd.DataFrame, metric: str, order: list[str]) -> pd.DataFrame:
    """Problems x activations (columns in `order`): each run's error over the problem's best; +inf
    where the run is not ok or missing. Problems where no activation has an ok run are left out."""
    axes = tables.cell_axes(df)
    keys = [*axes, "seed"]
    err = df.assign(_e=np.where(df.status == "ok", df[metric].to_numpy(float), np.inf))
    wide = err.pivot_table(index=keys, columns="activation", values="_e", aggfunc="first", dropna=False)
    wide = wide.reindex(columns=order).astype(float).fillna(np.inf)
    best = wide.min(axis=1)
    wide = wide[np.isfinite(best) & (best > 0)]
    return wide.div(best[wide.index], axis=0)


def profile(ratios: pd.DataFrame, taus: np.ndarray) -> pd.DataFrame:
    """activation, tau, share: the share of problems with ratio <= tau (rows per activation and tau)."""
    rows = []
    n = len(ratios)
    for act in ratios.columns:
        r = np.sort(ratios[act].to_numpy(float))
        within = np.searchsorted(r, taus * (1 + 1e-12), side="right")  # <= tau, a ratio of exactly tau included
        rows += [{"activation": act, "tau": float(t), "share": w / n} for t, w in zip(taus, within)]
    return pd.DataFrame(rows)


def tau_grid(ratios: pd.DataFrame, points: int = 200) -> np.ndarray:
    """From 1 to twice the largest finite ratio (at least 10), evenly spaced on a log axis."""
    finite = ratios.to_numpy(float)
    finite = finite[np.isfinite(finite)]
    top = max(10.0, 2.0 * float(finite.max())) if finite.size else 10.0
    return np.unique(np.concatenate([[1.0], np.geomspace(1.0, top, points)]))


def profiles_table(df: pd.DataFrame, metrics: list[str], order: list[str]) -> pd.DataFrame:
    """metric, activation, tau, share for each metric (see profile); with the problem count."""
    parts = []
    for metric in metrics:
        ratios = performance_ratios(df, metric, order)
        if ratios.empty:
            continue
        parts.append(profile(ratios, tau_grid(ratios)).assign(metric=metric, problems=len(ratios)))
    if not parts:
        return pd.DataFrame(columns=["metric", "activation", "tau", "share", "problems"])
    out = pd.concat(parts, ignore_index=True)
    return out[["metric", "activation", "tau", "share", "problems"]]


def data_profiles(curves: dict, activation: dict, factors: tuple[int, ...], epochs: np.ndarray) -> pd.DataFrame:
    """Data profiles of training (Moré & Wild 2009): per activation and k in `factors`, the share
    of its runs whose validation loss has fallen to 10^-k of its first epoch's by epoch e (a run's
    lowest loss so far, at its stored epochs: the curves are thinned, so an epoch between two
    stored ones counts at the next). curves: run_id -> (epochs, validation loss);
    activation: run_id -> its activation. A run that diverged reaches only what it reached before."""
    rows = []
    by_act: dict[str, list[str]] = {}
    for rid in curves:
        by_act.setdefault(activation[rid], []).append(rid)
    for act in activation_order(by_act):  # rows in registry order, whatever the order of the runs
        ids = by_act[act]
        for k in factors:
            reached = []
            for rid in ids:
                e, loss = curves[rid]
                finite = np.isfinite(loss)
                if not finite.any() or not np.isfinite(loss[0]) or loss[0] <= 0:
                    reached.append(np.inf)
                    continue
                hit = np.flatnonzero(finite & (loss <= loss[0] * 10.0**-k))
                reached.append(e[hit[0]] if len(hit) else np.inf)
            r = np.sort(np.asarray(reached))
            share = np.searchsorted(r, epochs, side="right") / len(r)
            rows += [
                {"activation": act, "k": k, "epoch": int(x), "share": s, "runs": len(r)} for x, s in zip(epochs, share)
            ]
    return pd.DataFrame(rows, columns=["activation", "k", "epoch", "share", "runs"])
