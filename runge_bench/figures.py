"""Which figures a report gets, decided from what its runs vary; drawing lives in plots.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import plots, tables
from .config import METRICS
from .store import Store
from .target import plot_grid, runge, runge_derivative

KEY_METRICS = ["val_f_mse", "val_df_mse", "grid_f_max", "grid_df_max"]


def describe_cell(cell: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in cell.items()) or "all runs"


def per_seed_arrays(store: Store, runs: pd.DataFrame) -> tuple[dict, dict]:
    """Predictions and curves of the given ok runs, by activation, for the fits and curves figures.
    Runs whose arrays cannot be read are left out (store.unreadable names them)."""
    arrays = store.arrays(list(runs.run_id))
    complete = {rid for rid, (c, p) in arrays.items() if {"f", "df"} <= set(p) and "epoch" in c}
    store.unreadable += sorted(set(arrays) - complete)
    runs = runs[runs.run_id.isin(complete)]
    members, curves = {}, {}
    for act, g in runs.groupby("activation", sort=False):
        g = g.assign(_total=g.val_f_mse + g.deriv_weight * g.val_df_mse).sort_values(["_total", "seed"])
        ids = list(g.run_id)
        f = np.stack([arrays[i][1]["f"] for i in ids]).astype(float)
        df = np.stack([arrays[i][1]["df"] for i in ids]).astype(float)
        members[act] = {"f": f, "df": df, "best": (len(ids) - 1) // 2}  # median of validation loss
        cs = [arrays[i][0] for i in ids]
        n = min(len(c["epoch"]) for c in cs)
        c = {k: np.stack([ci[k][:n] for ci in cs]).astype(float) for k in ("train_f", "train_df", "val_f", "val_df")}
        w = g.deriv_weight.to_numpy(float)[:, None]
        c["train_total"], c["val_total"] = c["train_f"] + w * c["train_df"], c["val_f"] + w * c["val_df"]
        c["epoch"] = cs[0]["epoch"][:n].astype(float)
        curves[act] = c
    return members, curves


def report_figures(store_path: Path, df: pd.DataFrame, summary: pd.DataFrame, ranking: pd.DataFrame,
                   baselines: pd.DataFrame, cell: dict, order: list[str], fig_dir: Path,
                   unreadable: list[str] | None = None) -> list[tuple[str, str]]:  # fmt: skip
    """Draw every figure that fits the runs; return (caption, path relative to the report). Runs
    whose stored arrays cannot be read are appended to `unreadable` and left out of the figures."""
    out = []
    ok = tables.select(df[df.status == "ok"], cell)
    where = describe_cell(cell)
    members, curves = {}, {}
    if not ok.empty:
        with Store(store_path) as store:
            members, curves = per_seed_arrays(store, ok)
            if unreadable is not None:
                unreadable += store.unreadable
    if members:
        x = plot_grid()
        fig = plots.fits_figure(x, runge(x), runge_derivative(x), members,
                                f"Fits of f and f′ ({where}): median-seed model (dashed), band over all seeds")
        plots.save(fig, fig_dir / "fits")
        out.append((f"Fits of f and f′ and pointwise errors ({where}); the median seed by validation "
                    "loss, the band spanning all seeds", "figures/fits.png"))  # fmt: skip
        plots.save(plots.curves_figure(curves, f"Loss curves ({where}): median and IQR over seeds"),
                   fig_dir / "loss_curves")  # fmt: skip
        out.append((f"Training (solid) and validation (dashed) loss against epoch ({where})", "figures/loss_curves.png"))
    if not ok.empty:
        fig = plots.distributions_figure(ok, list(METRICS), order, f"Errors over seeds ({where}); "
                                         "grey lines: baselines (median over seeds)")  # fmt: skip
        for ax, metric in zip(fig.axes, METRICS):
            plots.baseline_lines(baselines, metric, ax)
        fig.axes[0].legend(fontsize=6, frameon=False, loc="best")
        plots.save(fig, fig_dir / "distributions")
        out.append((f"Each metric over seeds, per activation ({where}), with the baselines", "figures/distributions.png"))
    for axis in tables.cell_axes(df):
        if axis not in tables.NUMERIC_AXES:
            continue
        others = {k: v for k, v in cell.items() if k != axis}
        s = tables.select(summary, others)
        metrics = ["grid_f_mse", "grid_df_mse", "grid_f_max", "grid_df_max"]
        fig = plots.axis_figure(s, axis, metrics, order, f"Error against {axis} ({describe_cell(others)}): "
                                "median and 95% CI over seeds; grey: baselines")  # fmt: skip
        if axis != "deriv_weight":
            for ax, metric in zip(fig.axes, metrics):
                plots.baseline_lines(baselines, metric, ax)
            fig.axes[0].legend(fontsize=6, frameon=False, loc="best")
        plots.save(fig, fig_dir / f"by_{axis}")
        out.append((f"Error against {axis}" + (" (log-log)" if axis == "width" else ""), f"figures/by_{axis}.png"))
    if "deriv_weight" in tables.cell_axes(df):
        others = {k: v for k, v in cell.items() if k != "deriv_weight"}
        s = tables.select(summary, others)
        points = s.pivot_table(index=["activation", "deriv_weight"], columns="metric", values="median").reset_index()
        fig, axes = plots.plt.subplots(1, 2, figsize=(11, 4.2))
        for ax, kind in zip(axes, ("mse", "max")):
            plots.tradeoff_panel(points, f"grid_f_{kind}", f"grid_df_{kind}", order, ax=ax)
            plots.baseline_points(baselines, f"grid_f_{kind}", f"grid_df_{kind}", ax)
        axes[0].legend(fontsize=7, frameon=False)
        fig.suptitle(f"What the derivative loss buys and costs ({describe_cell(others)}): median over seeds "
                     "per (activation, λ)", fontsize=10)  # fmt: skip
        fig.tight_layout()
        plots.save(fig, fig_dir / "tradeoff")
        out.append(("The deriv_weight trade-off: f error against f′ error", "figures/tradeoff.png"))
    if "width" in tables.cell_axes(df):
        others = {k: v for k, v in cell.items() if k != "width"}
        s = tables.select(summary, others)
        fig, axes = plots.plt.subplots(1, 2, figsize=(12, 0.6 * len(order) + 2.2))
        for ax, metric in zip(axes, ("grid_f_mse", "grid_df_mse")):
            t = s[s.metric == metric].pivot_table(index="activation", columns="width", values="median").reindex(order)
            plots.heatmap_panel(t, metric, ax=ax)
        fig.suptitle(f"Median error over activation x width ({describe_cell(others)})", fontsize=10)
        fig.tight_layout()
        plots.save(fig, fig_dir / "heatmap_width")
        out.append(("Median error over activation and width", "figures/heatmap_width.png"))
    if not ranking.empty:
        fig, axes = plots.plt.subplots(1, 2, figsize=(12, 3.2))
        for ax, metric in zip(axes, ("grid_f_mse", "grid_df_mse")):
            r = ranking[ranking.metric == metric]
            if r.empty:
                ax.axis("off")
                continue
            plots.cd_panel(list(r.activation), list(r.mean_rank), float(r.nemenyi_cd.iloc[0]),
                           f"{plots.LABELS[metric]}: mean rank over {int(r.n_blocks.iloc[0])} blocks "
                           f"(Friedman p = {tables.sci(float(r.friedman_p.iloc[0]))})", ax=ax)  # fmt: skip
        fig.tight_layout()
        plots.save(fig, fig_dir / "ranking")
        out.append(("Critical-difference diagram: activations joined by a bar do not differ significantly "
                    "(Nemenyi, 0.05)", "figures/ranking.png"))  # fmt: skip
    return out
