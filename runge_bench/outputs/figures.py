"""Which figures a report gets, decided from what its runs vary; drawing lives in plots.py.

Each figure is planned first, its caption and file decided from the results alone, and drawn only
when drawing is on (plots.drawing): a report's text, or a site's list of figures, costs no plotting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..analysis import frontier, tables, zoo
from ..analysis.baselines import at_floor, report_floor
from ..analysis.study import StudyResults
from ..problem.data import plot_grid
from ..problem.published import PUBLISHED, metric_column
from ..problem.targets import get_target
from ..problem.vocabulary import (
    GRID_MAX,
    GRID_METRICS,
    GRID_MSE,
    KEY_METRICS,
    METRIC_LABELS,
    METRICS,
    NUMERIC_AXES,
    OPTIMIZERS,
    REGIME_AXES,
)
from . import plots

Figure = tuple[str, str]  # (caption, path relative to the report)


@dataclass(frozen=True)
class Plan:
    """A figure of the report: its caption, its file's stem under figures/, and how to draw it
    (a laid-out figure, saved by the caller)."""

    caption: str
    stem: str
    draw: Callable[[], plots.plt.Figure]

    @property
    def path(self) -> str:
        return f"figures/{self.stem}.{plots.WEB_FORMAT}"


def report_figures(r: StudyResults, fig_dir: Path) -> list[Figure]:
    """Every figure that fits the study's results, in the order the report shows them: drawn into
    fig_dir when drawing is on (plots.drawing), else only listed."""
    plans = figure_plans(r)
    if plots.drawing_on():
        for plan in plans:
            plots.save(plan.draw(), fig_dir / plan.stem)
    return [(plan.caption, plan.path) for plan in plans]


def figure_plans(r: StudyResults) -> list[Plan]:
    """The report's figures, planned (nothing drawn), in the order the report shows them."""
    t, df, cell, order = r.tables, r.runs, r.cell, r.order
    baselines = tables.select(t.baselines, {k: cell.get(k, df[k].iloc[0]) for k in tables.baseline_keys(t.baselines)})
    out = _from_tables(
        df,
        t.summary,
        t.ranking,
        baselines,
        cell,
        order,
        r.fits.members,
        r.fits.curves,
        floor=t.floor if r.frontier is None else None,  # a frontier study draws its own
        target_members=r.fits.target_members,
        profiles=t.profiles,
    )
    if len(order) >= 2:
        out.append(_data_profiles(r))
    planned = (_sensitivity_lead(r), _zoo_versus(r), _tuning_budget(r))
    return out + [p for p in planned if p] + _frontier(r)


def _from_tables(
    df: pd.DataFrame,
    summary: pd.DataFrame,
    ranking: pd.DataFrame,
    baselines: pd.DataFrame,
    cell: dict,
    order: list[str],
    members: dict,
    curves: dict,
    floor: pd.DataFrame | None = None,
    target_members: dict | None = None,
    profiles: pd.DataFrame | None = None,
) -> list[Plan]:
    """Plan every figure that fits the runs. members and curves: per_seed_arrays of the reference
    cell's ok runs (the fits and loss curves; empty when none could be read); baselines: those of
    the reference cell's target; floor: tables.floor_table; target_members: per target, the
    members of the reference cell with that target (when the study varies the target)."""
    ok = tables.select(df[df.status == "ok"], cell)
    ok = tables.select(df[df.status == "ok"], cell)
    where = tables.describe_cell(cell)
    out = []
    proto = tables.seed_protocol_runs(df)
    if not proto.empty:
        out.append(_reproduction(proto, order))
    if members:
        out += _fits_and_curves(members, curves, where, get_target(cell.get("target", df.target.iloc[0])))
    if target_members:
        out.append(_fits_by_target(target_members, {k: v for k, v in cell.items() if k != "target"}))
    axes = tables.cell_axes(df)
    if floor is not None and not floor.empty and (set(REGIME_AXES) & set(axes)):
        out.append(_floor_gap(floor, cell, order))
    if not ok.empty:
        out.append(_distributions(ok, baselines, order, where))
    for axis in [a for a in axes if a in NUMERIC_AXES]:
        out.append(_by_axis(summary, baselines, cell, axis, order))
    if "deriv_weight" in axes:
        out.append(_tradeoff(summary, baselines, cell, order))
    if "width" in axes:
        out.append(_heatmap_width(summary, cell, order))
    if "width" in axes and "deriv_weight" in axes:
        out.append(_heatmaps_width_weight(summary, cell, order))
    if not ranking.empty:
        out.append(_ranking(ranking))
    if profiles is not None and not profiles.empty:
        out.append(_profiles(profiles, order))
    return out


def _profiles(profiles: pd.DataFrame, order: list[str]) -> Plan:
    return Plan(
        "Performance profiles (Dolan & Moré 2002) over every (cell, seed) problem: the share of problems on "
        "which an activation's error is within a factor tau of the best activation's (a run not ok never is)",
        "profiles",
        lambda: plots.profiles_figure(
            profiles, [m for m in KEY_METRICS if m in set(profiles.metric)], order, "Performance profiles"
        ),
    )


def _reproduction(proto: pd.DataFrame, order: list[str]) -> Plan:
    columns = [metric_column(q, m) for q, m in (("f", "mse"), ("f", "max"), ("df", "mse"), ("df", "max"))]
    published = {(act, metric_column(q, m)): v for (act, q, m), v in PUBLISHED.items()}
    title = (
        f"The seed report's Tables 1-2 (red stars, "
        f"one run each) against the same protocol over {proto.seed.nunique()} seeds"
    )
    return Plan(
        "The seed report's published numbers (validation split) against our seeds",
        "reproduction",
        lambda: plots.reproduction_figure(proto, published, columns, order, title),
    )


def _legend(ax, fontsize: int) -> None:
    """A legend where the panel has labelled artists (baselines far below the data have none)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=fontsize, frameon=False, loc="best")


def _fits_and_curves(members: dict, curves: dict, where: str, target) -> list[Plan]:
    x = plot_grid()
    title = f"Fits of f and f′ ({where}): median-seed model (dashed), band over all seeds"
    return [
        Plan(
            f"Fits of f and f′ and pointwise errors ({where}); the median seed by validation loss, the band "
            "spanning all seeds",
            "fits",
            lambda: plots.fits_figure(x, target.f(x), target.df(x), members, title),
        ),
        Plan(
            f"Training (solid) and validation (dashed) loss against epoch ({where})",
            "loss_curves",
            lambda: plots.curves_figure(curves, f"Loss curves ({where}): median and IQR over seeds"),
        ),
    ]


def _distributions(ok: pd.DataFrame, baselines: pd.DataFrame, order: list[str], where: str) -> Plan:
    def draw() -> plots.plt.Figure:
        fig = plots.distributions_figure(
            ok,
            list(METRICS),
            order,
            f"Errors over seeds ({where}); "
            "grey: baselines (median over seeds), drawn, or written under a panel they lie far below",
        )
        for ax, metric in zip(fig.axes, METRICS):
            plots.baseline_lines(baselines, metric, ax)
        _legend(fig.axes[0], fontsize=6)
        return plots.finish(fig)  # again: room for the notes of baselines below the axes

    return Plan(f"Each metric over seeds, per activation ({where}), with the baselines", "distributions", draw)


def _by_axis(summary: pd.DataFrame, baselines: pd.DataFrame, cell: dict, axis: str, order: list[str]) -> Plan:
    others = {k: v for k, v in cell.items() if k != axis}
    metrics = GRID_METRICS

    def draw() -> plots.plt.Figure:
        fig = plots.axis_figure(
            tables.select(summary, others),
            axis,
            metrics,
            order,
            f"Error against {axis} ({tables.describe_cell(others)}): median and 95% CI over seeds; grey: baselines",
        )
        if axis != "deriv_weight":
            for ax, metric in zip(fig.axes, metrics):
                plots.baseline_lines(baselines, metric, ax)
            _legend(fig.axes[0], fontsize=6)
            plots.finish(fig)
        return fig

    return Plan(f"Error against {axis}" + (" (log-log)" if axis == "width" else ""), f"by_{axis}", draw)


def _tradeoff(summary: pd.DataFrame, baselines: pd.DataFrame, cell: dict, order: list[str]) -> Plan:
    others = {k: v for k, v in cell.items() if k != "deriv_weight"}

    def draw() -> plots.plt.Figure:
        s = tables.select(summary, others)
        points = s.pivot_table(index=["activation", "deriv_weight"], columns="metric", values="median").reset_index()
        fig, axes = plots.plt.subplots(1, 2, figsize=(11, 4.2))
        for ax, kind in zip(axes, ("mse", "max")):
            plots.tradeoff_panel(points, f"grid_f_{kind}", f"grid_df_{kind}", order, ax=ax)
            plots.baseline_points(baselines, f"grid_f_{kind}", f"grid_df_{kind}", ax)
        axes[0].legend(fontsize=7, frameon=False)
        fig.suptitle(
            f"What the derivative loss buys and costs ({tables.describe_cell(others)}): median over seeds "
            "per (activation, λ)",
            fontsize=10,
        )
        return plots.finish(fig)

    return Plan("The deriv_weight trade-off: f error against f′ error", "tradeoff", draw)


def _heatmap_width(summary: pd.DataFrame, cell: dict, order: list[str]) -> Plan:
    others = {k: v for k, v in cell.items() if k != "width"}

    def draw() -> plots.plt.Figure:
        s = tables.select(summary, others)
        fig, axes = plots.plt.subplots(1, 2, figsize=(12, 0.6 * len(order) + 2.2))
        for ax, metric in zip(axes, GRID_MSE):
            t = s[s.metric == metric].pivot_table(index="activation", columns="width", values="median").reindex(order)
            plots.heatmap_panel(t, metric, ax=ax)
        fig.suptitle(f"Median error over activation x width ({tables.describe_cell(others)})", fontsize=10)
        return plots.finish(fig)

    return Plan("Median error over activation and width", "heatmap_width", draw)


def _heatmaps_width_weight(summary: pd.DataFrame, cell: dict, order: list[str]) -> Plan:
    """Width x λ for every activation (rows: f MSE, f′ MSE): the whole grid, not one λ's slice."""
    others = {k: v for k, v in cell.items() if k not in ("width", "deriv_weight")}

    def draw() -> plots.plt.Figure:
        s = tables.select(summary, others)
        fig, axes = plots.plt.subplots(2, len(order), figsize=(3.6 * len(order), 6.4), squeeze=False)
        for row, metric in enumerate(GRID_MSE):
            m = s[(s.metric == metric) & (s["median"] > 0)]["median"]
            limits = (float(m.min()), float(m.max())) if len(m) else None  # one colour scale per row
            for col, act in enumerate(order):
                t = s[(s.metric == metric) & (s.activation == act)].pivot_table(
                    index="width", columns="deriv_weight", values="median"
                )
                ax = plots.heatmap_panel(t, metric, ax=axes[row, col], limits=limits)
                ax.set_title(f"{act}: {METRIC_LABELS[metric]}", fontsize=9)
                ax.set_xlabel("deriv_weight (λ)")
        title = "Median error over width x λ, per activation; one colour scale per row" + (
            f" ({tables.describe_cell(others)})" if others else ""
        )
        fig.suptitle(title, fontsize=10)
        return plots.finish(fig)

    return Plan("Median error over width and derivative-loss weight, per activation", "heatmap_width_weight", draw)


def regime_label(row) -> str:
    """A cell's training regime from its dtype and optimizer, e.g. "float64 adam+lm" (either one
    alone where the other does not vary)."""
    return " ".join(str(row[a]) for a in REGIME_AXES if a in row)


def regimes_in_order(rows: pd.DataFrame) -> list[str]:
    """The regimes of rows, float32 before float64, then in OPTIMIZERS order."""
    keys = {(r.get("dtype", ""), r.get("optimizer", "")) for _, r in rows.iterrows()}
    keys = sorted(keys, key=lambda k: (k[0], OPTIMIZERS.index(k[1]) if k[1] in OPTIMIZERS else 99, k[1]))
    return [f"{d} {o}".strip() for d, o in keys]


def _floor_gap(floor: pd.DataFrame, cell: dict, order: list[str]) -> Plan:
    """The gap to the classical floor per regime (dtype and optimizer), per activation; a column
    per level of the first other cell axis (width, say), the rest at the reference cell."""
    return Plan(
        "The gap to the classical floor per training regime: network max error over the best baseline's "
        "(log; 1 = the baseline)",
        "floor_gap",
        lambda: _draw_floor_gap(floor, cell, order),
    )


def _draw_floor_gap(floor: pd.DataFrame, cell: dict, order: list[str]) -> plots.plt.Figure:
    others = [a for a in cell if a not in REGIME_AXES]
    panel_axis = others[0] if others else None
    fixed = {a: cell[a] for a in others[1:]}
    f = tables.select(floor, fixed)
    f = f.assign(regime=[regime_label(r) for _, r in f.iterrows()])
    regimes = regimes_in_order(f)
    levels = sorted(f[panel_axis].unique()) if panel_axis else [None]
    metrics = GRID_MAX
    fig, axes = plots.plt.subplots(len(metrics), len(levels), figsize=(4.8 * len(levels), 7), squeeze=False)
    for i, metric in enumerate(metrics):
        for j, level in enumerate(levels):
            part = f[(f.metric == metric) & ((f[panel_axis] == level) if panel_axis else True)]
            best = part.best_baseline.iloc[0] if len(part) else ""
            value = part.baseline_median.iloc[0] if len(part) else float("nan")
            said = (
                f"≤{tables.sci(value)}, the rounding floor: ratios are at least"
                if at_floor(metric, value)
                else tables.sci(value)
            )
            title = (
                f"{METRIC_LABELS[metric]}"
                + (f", {panel_axis}={level}" if panel_axis else "")
                + f"\n(1 = {plots.BASELINE_SHORT.get(best, best)}, {said})"
            )
            plots.floor_panel(part, regimes, order, title, ax=axes[i, j])
    _legend(axes[0, 0], fontsize=7)
    fig.suptitle(
        "The gap to the classical floor: median network error over seeds / the best baseline's median, "
        "dense grid" + (f" ({tables.describe_cell(fixed)})" if fixed else ""),
        fontsize=10,
    )
    return plots.finish(fig)


def _fits_by_target(target_members: dict, others: dict) -> Plan:
    where = tables.describe_cell(others)

    def draw() -> plots.plt.Figure:
        x = plot_grid()
        truths = {t: (get_target(t).f(x), get_target(t).df(x)) for t in target_members}
        title = f"Fits per target ({where}): the median seed (by validation loss) of each activation; thick grey: the target"
        return plots.target_fits_figure(x, truths, target_members, title)

    return Plan(
        f"Fits of f and f′ per target ({where}), the median-seed model of each activation", "fits_by_target", draw
    )


def _ranking(ranking: pd.DataFrame) -> Plan:
    def draw() -> plots.plt.Figure:
        fig, axes = plots.plt.subplots(1, 2, figsize=(12, 3.2))
        for ax, metric in zip(axes, GRID_MSE):
            r = ranking[ranking.metric == metric]
            if r.empty:
                ax.axis("off")
                continue
            plots.cd_panel(
                list(r.activation),
                list(r.mean_rank),
                float(r.nemenyi_cd.iloc[0]),
                f"{METRIC_LABELS[metric]}: mean rank over {int(r.n_blocks.iloc[0])} blocks "
                f"(Friedman p = {tables.sci(float(r.friedman_p.iloc[0]))})",
                ax=ax,
            )
        return plots.finish(fig)

    return Plan(
        "Critical-difference diagram (Nemenyi, 0.05): a picture of the mean-rank order; which pairs differ is tested pair by pair (Rankings)",
        "ranking",
        draw,
    )


def _data_profiles(r: StudyResults) -> Plan:
    table = r.data_profiles
    by_lambda = "deriv_weight" in table
    keys = ["deriv_weight", "activation"] if by_lambda else ["activation"]
    n = int(table.groupby(keys).runs.first().sum())  # the runs whose curves were read
    pooled = "the cells of each derivative-loss weight pooled, one row per weight" if by_lambda else "every cell pooled"
    return Plan(
        "Data profiles (Moré & Wild 2009): the share of each activation's runs whose validation loss has fallen by "
        f"10^k from its first epoch within a number of epochs ({pooled}, since the validation loss is "
        "MSE(f) + deriv_weight x MSE(f′); at stored epochs)"
        if by_lambda
        else "Data profiles (Moré & Wild 2009): the share of each activation's runs whose validation loss has fallen "
        "by 10^k from its first epoch within a number of epochs (every cell pooled; at stored epochs)",
        "data_profiles",
        lambda: plots.data_profiles_figure(table, r.order, f"Data profiles of training ({n} runs, {pooled})"),
    )


def _sensitivity_lead(r: StudyResults) -> Plan | None:
    """The headline pair's error ratio in each cell one factor away from the reference."""
    s = r.sensitivity
    if s is None or s.lead is None or s.lead_rows.empty:
        return None
    a, b = s.lead
    title = f"{b}'s lead over {a}, one factor away from the reference\n({tables.describe_cell(r.cell)})"
    return Plan(
        f"Error ratio {a}/{b} (Hodges-Lehmann over seeds, exact 95% CI) in each cell one factor away from the "
        "reference; filled: significant (Holm over the pairs of the cell)",
        "sensitivity_lead",
        lambda: plots.lead_figure(s.lead_rows, [m for m in KEY_METRICS if m.endswith("_mse")], a, b, title),
    )


def _zoo_versus(r: StudyResults) -> Plan | None:
    if r.zoo is None:
        return None
    versus = r.zoo.versus
    columns = "deriv_weight" if "deriv_weight" in tables.cell_axes(r.runs) else None
    n = versus.a.nunique()
    title = f"{n} challengers against {zoo.INCUMBENT} ({n + 1} activations), cell by cell"
    return Plan(
        f"Each activation's error ratio to {zoo.INCUMBENT} per cell (Hodges-Lehmann estimate over seeds with its "
        "exact 95% CI; left of the dashed line: lower error than the incumbent)",
        "zoo_versus",
        lambda: plots.versus_figure(versus, GRID_MSE, r.order, zoo.INCUMBENT, columns, title),
    )


def _tuning_budget(r: StudyResults) -> Plan | None:
    if r.tuned is None:
        return None
    names, sel = ", ".join(r.tuned.axes), r.tuned.selecting
    title = f"Expected best validation loss against {names} settings tried (seeds {sel[0]}-{sel[-1]})"
    return Plan(
        f"Expected best validation loss against the number of {names} settings tried, per activation "
        "(drawn without replacement from those run; band: one standard deviation of the best of k)",
        "tuning_budget",
        lambda: plots.budget_figure(r.tuned.budget, r.order, title),
    )


def _frontier(r: StudyResults) -> list[Plan]:
    """Error against parameters, every method and the classical ones, for f and for f'."""
    if r.frontier is None:
        return []
    conditions = frontier.conditions(r.runs)

    def plan(metric: str, stem: str) -> Plan:
        floor = report_floor(metric)
        title = f"{METRIC_LABELS[metric]} against parameters: networks (median over seeds) and classical methods"
        return Plan(
            f"{METRIC_LABELS[metric]} against parameters per target and noise: each activation (colour) and method "
            f"(circle Adam, square Adam+Gauss-Newton, triangle stages), median over seeds; grey: Chebyshev least "
            f"squares (solid) and AAA (dashed) at their own number of coefficients; dotted: the reporting floor "
            f"{floor:g}, below which errors are rounding",
            stem,
            lambda: plots.frontier_figure(r.frontier.cells, r.frontier.classical, conditions, metric, floor, title),
        )

    return [plan("grid_f_max", "frontier_f"), plan("grid_df_max", "frontier_df")]
