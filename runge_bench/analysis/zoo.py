"""Many activations against one: the seed report's winner (Tanh) against every other activation,
where each challenger lands, and whether smoothness orders them.

With nine activations a cell holds 36 pairs; Holm over 36 needs p < 0.0014, which 10 seeds cannot
reach (the smallest two-sided Wilcoxon p with 10 pairs is 0.00195). The question a zoo asks is
many-to-one ("does any activation beat Tanh?"): 8 pairs per cell, a family 10 seeds can reject
in. Tables out, sentences from tables (claim, then scope and test), as everywhere in analysis/.

Smoothness: an activation is twice continuously differentiable or not (Activation.smoothness).
Whether that predicts the ranking is a question about activations, not seeds: the units are the
activations, so the test is exact over the ways to pick which of them are "rough" (C(9, 3) = 84
for nine activations with three rough ones; the smallest p it can give is 1/84), on the
statistic "mean rank of the rough ones minus mean rank of the smooth ones", ranks within each
(cell, seed) block. One-sided: the direction (smooth lower error) is the hypothesis, stated
before looking (Sitzmann et al. 2020 argue it for derivatives).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
from scipy import stats as st

from ..problem.activations import ACTIVATIONS
from ..problem.vocabulary import METRIC_LABELS
from . import stats, tables
from .findings import Finding

INCUMBENT = "tanh"  # the seed report's winner: what every other activation is measured against
MIN_ACTIVATIONS = 5  # a report gets the zoo section with at least this many, the incumbent among them
SMOOTH = 2  # "smooth" here: twice continuously differentiable (the loss on f' trains through sigma'')


def applies(df: pd.DataFrame) -> bool:
    acts = set(df.loc[df.status == "ok", "activation"])
    return INCUMBENT in acts and len(acts) >= MIN_ACTIVATIONS


def versus_table(df: pd.DataFrame, order: list[str], metrics: list[str]) -> pd.DataFrame:
    """Every other activation against the incumbent, per cell (tables.comparisons_table with
    `against`: Holm over the challengers of a cell and metric)."""
    out = tables.comparisons_table(df, order, against=INCUMBENT)
    return out[out.metric.isin(metrics)].reset_index(drop=True) if not out.empty else out


def versus_summary(versus: pd.DataFrame, metrics: list[str], df: pd.DataFrame) -> pd.DataFrame:
    """Per challenger and metric over the cells (tables.compact_comparisons: per-cell verdicts, and
    across the cells with the seeds as units, Holm over the challengers of a metric)."""
    return tables.compact_comparisons(versus, metrics, df)


def _cell_medians(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    ok = df[df.status == "ok"]
    axes = tables.cell_axes(df)
    return (
        ok.groupby([*axes, "activation"], sort=True)[metric].median().reset_index()
        if axes
        else (ok.groupby("activation")[metric].median().reset_index())
    )


def ranks_table(df: pd.DataFrame, metrics: list[str], order: list[str]) -> pd.DataFrame:
    """Per activation and metric: its rank among the activations in each cell by median error over
    seeds (1 = lowest), the best, median and worst of those ranks, and in how many cells."""
    axes = tables.cell_axes(df)
    rows = []
    for metric in metrics:
        med = _cell_medians(df, metric)
        if axes:
            med["rank"] = med.groupby(axes)[metric].rank(method="average")
        else:
            med["rank"] = med[metric].rank(method="average")
        n_acts = med.activation.nunique()
        for act in [a for a in order if a in set(med.activation)]:
            r = med.loc[med.activation == act, "rank"].to_numpy(float)
            rows.append(
                {
                    "activation": act,
                    "metric": metric,
                    "cells": len(r),
                    "of": n_acts,
                    "best_rank": float(r.min()),
                    "median_rank": float(np.median(r)),
                    "worst_rank": float(r.max()),
                }
            )
    return pd.DataFrame(rows)


def smoothness_of(activation: str) -> float | None:
    a = ACTIVATIONS.get(activation)
    return None if a is None else a.smoothness


def smoothness_table(df: pd.DataFrame, metrics: list[str], by: str | None = "deriv_weight") -> pd.DataFrame:
    """Does smoothness order the activations? Per metric and level of `by` (each λ on its own; a
    level "all" when `by` varies): the activations with a stated smoothness split into smooth (at
    least twice continuously differentiable) and rough; within every (cell, seed) block where all
    of them have an ok run, ranks by error; the statistic mean rank(rough) - mean rank(smooth);
    its exact one-sided p over every way to pick as many rough activations; the share of (smooth,
    rough) pairs where the smooth one has the lower median error per cell, and the cells where
    every smooth activation is below every rough one."""
    ok = df[df.status == "ok"]
    known = sorted(a for a in ok.activation.unique() if smoothness_of(a) is not None)
    rough = [a for a in known if smoothness_of(a) < SMOOTH]
    smooth = [a for a in known if smoothness_of(a) >= SMOOTH]
    if not rough or not smooth:
        return pd.DataFrame()
    axes = tables.cell_axes(df)
    levels: list[object] = []
    if by in axes:
        levels = sorted(ok[by].unique()) + ["all"]
    else:
        levels = ["all"]
    rows = []
    for metric in metrics:
        for level in levels:
            part = ok[ok.activation.isin(known)]
            if level != "all":
                part = part[part[by] == level]
            wide = part.pivot_table(index=[*axes, "seed"], columns="activation", values=metric, aggfunc="first")
            wide = wide.reindex(columns=known).dropna()
            if wide.empty:
                continue
            mean_rank, p = _exact_rank_test(wide, known, rough)
            med = part.groupby([*axes, "activation"])[metric].median().unstack("activation").reindex(columns=known)
            share, separated = [], 0
            for _, row in med.dropna().iterrows():
                wins = [1.0 if row[s] < row[r] else 0.5 if row[s] == row[r] else 0.0 for s in smooth for r in rough]
                share.append(float(np.mean(wins)))
                separated += max(row[smooth]) < min(row[rough])
            rows.append(
                {
                    "metric": metric,
                    by or "level": level,
                    "smooth": ", ".join(smooth),
                    "rough": ", ".join(rough),
                    "blocks": len(wide),
                    "cells": len(share),
                    "mean_rank_smooth": float(np.mean([mean_rank[a] for a in smooth])),
                    "mean_rank_rough": float(np.mean([mean_rank[a] for a in rough])),
                    "labelings": math.comb(len(known), len(rough)),
                    "p_exact": p,
                    "share_smooth_lower_min": float(min(share)) if share else np.nan,
                    "share_smooth_lower_median": float(np.median(share)) if share else np.nan,
                    "cells_separated": int(separated),
                    "lowest_smooth": max(smooth, key=lambda a: mean_rank[a]),
                    "best_rough": min(rough, key=lambda a: mean_rank[a]),
                }
            )
    return pd.DataFrame(rows)


def _exact_rank_test(wide: pd.DataFrame, known: list[str], rough: list[str]) -> tuple[dict[str, float], float]:
    """Within each block (a row of `wide`: errors of the `known` activations), ranks by error; the
    mean rank of each activation, and the exact one-sided p of the rough ones' mean-rank gap over
    every way to call as many of the known activations rough."""
    ranks = st.rankdata(wide.to_numpy(float), axis=1)
    mean_rank = dict(zip(known, ranks.mean(axis=0)))
    is_rough = np.array([a in rough for a in known])
    observed = mean_rank_gap(ranks.mean(axis=0), is_rough)
    gaps = [
        mean_rank_gap(ranks.mean(axis=0), np.isin(np.arange(len(known)), pick))
        for pick in itertools.combinations(range(len(known)), len(rough))
    ]
    return mean_rank, float(np.mean(np.asarray(gaps) >= observed - 1e-12))


def mean_rank_gap(mean_ranks: np.ndarray, is_rough: np.ndarray) -> float:
    """Mean rank of the rough activations minus that of the smooth ones (positive: smooth lower)."""
    return float(mean_ranks[is_rough].mean() - mean_ranks[~is_rough].mean())


# ------------------------------------------------------------------------------- sentences


def _cells(n: int) -> str:
    return f"{n} cell{'s' if n != 1 else ''}"


def _ratio(r) -> str:
    ci = (
        f" ({tables.sci(r.ratio_across_lo)}-{tables.sci(r.ratio_across_hi)})" if not np.isnan(r.ratio_across_lo) else ""
    )
    return f"{r.a} {tables.sci(r.ratio_across_cells)}{ci}"


def _where(versus: pd.DataFrame, act: str, metric: str, axes: list[str], max_listed: int = 3) -> str:
    """The cells where `act` is significantly below the incumbent, named when there are few."""
    g = versus[(versus.a == act) & (versus.metric == metric) & (versus.p_holm < stats.ALPHA) & (versus.favours == "a")]
    if g.empty or not axes or len(g) > max_listed:
        return ""
    value = lambda v: f"{v:g}" if isinstance(v, (int, float)) else str(v)  # a categorical axis (target) too
    return ": " + "; ".join(", ".join(f"{a} {value(r[a])}" for a in axes) for _, r in g.iterrows())


def findings(
    summary: pd.DataFrame,
    ranks: pd.DataFrame,
    smoothness: pd.DataFrame,
    axes: list[str],
    focus: str = "grid_df_mse",
    versus: pd.DataFrame | None = None,
) -> list[Finding]:
    """Who beats the incumbent and where, over the cells and cell by cell (the cells named from
    `versus` when few); where sine lands; and whether smoothness orders the activations on `focus`
    (the smoothness table has every metric)."""
    versus = versus if versus is not None else pd.DataFrame(columns=["a", "metric", "p_holm", "favours"])
    out: list[Finding] = []
    family = summary.a.nunique() if not summary.empty else 0
    grid = " x ".join(axes) or "one cell"
    for metric, g in summary.groupby("metric", sort=False):
        out += _against_incumbent(metric, g, family, axes, versus)
    for metric, g in ranks.groupby("metric", sort=False):
        if INCUMBENT in set(g.activation) and "sin" in set(g.activation):
            out.append(_sine(metric, g, grid))
    for r in smoothness[smoothness.metric == focus].itertuples() if not smoothness.empty else []:
        out.append(_smoothness_finding(r))
    return out


def _against_incumbent(
    metric: str, g: pd.DataFrame, family: int, axes: list[str], versus: pd.DataFrame
) -> list[Finding]:
    """versus_summary's rows of one metric: the challengers over all cells, then cell by cell."""
    grid = " x ".join(axes) or "one cell"
    label = METRIC_LABELS[metric]
    cells, seeds = int(g.cells.max()), int(g.seeds.max())
    sig = g.p_across_cells_holm < stats.ALPHA
    lower, higher = g[sig & (g.ratio_across_cells < 1)], g[sig & (g.ratio_across_cells > 1)]
    by_ratio = g.sort_values("ratio_across_cells")
    over_all = (
        f"{label}, over all cells: {len(lower)} of {family} challengers below {INCUMBENT}, {len(higher)} above, "
        f"{family - len(lower) - len(higher)} inconclusive; lowest ratio {_ratio(by_ratio.iloc[0])}, "
        f"highest {_ratio(by_ratio.iloc[-1])}.",
        [
            f"Error ratio challenger/{INCUMBENT}: per seed the log ratio averaged over the {cells} cells "
            f"({grid}); Hodges-Lehmann over {seeds} seeds, exact 95% CI.",
            f"Wilcoxon over seeds, Holm over the {family} challengers, p < {stats.ALPHA}.",
        ],
    )
    beat = g[g.a_better > 0]
    lost = g[g.b_better > 0]
    by_cell = (
        f"{label}, cell by cell: below {INCUMBENT} somewhere: "
        + (
            ", ".join(f"{r.a} ({_cells(r.a_better)}{_where(versus, r.a, metric, axes)})" for r in beat.itertuples())
            or "none"
        )
        + f"; {INCUMBENT} below: "
        + (", ".join(f"{r.a} ({r.b_better})" for r in lost.itertuples()) or "none")
        + ".",
        [
            f"{family} challengers x {cells} cells ({grid}); Wilcoxon on log ratios over seeds, Holm over the "
            f"{family} challengers of each cell, p < {stats.ALPHA}.",
            "A cell without a verdict is inconclusive, not a tie.",
            _count_ranges(versus, metric, cells),
        ],
    )
    return [over_all, by_cell]


def _count_ranges(versus: pd.DataFrame, metric: str, cells: int) -> str:
    """The counts of cells below the incumbent that the cells' intervals allow: from those whose
    whole 95% CI is below 1 to those whose CI reaches below 1, per challenger that has any."""
    g = versus[versus.metric == metric] if "ratio_lo" in versus else versus.iloc[0:0]
    said = []
    for a, rows in g.groupby("a", sort=False):
        surely, maybe = int((rows.ratio_hi < 1).sum()), int((rows.ratio_lo < 1).sum())
        if maybe:
            said.append(f"{a} {surely}-{maybe}" if maybe > surely else f"{a} {surely}")
    return (
        f"Cells below {INCUMBENT} by the cells' 95% CIs (unadjusted; from wholly below to reaching below), "
        f"of {cells}: " + (", ".join(said) if said else "none in any cell") + "."
    )


def _sine(metric: str, g: pd.DataFrame, grid: str) -> Finding:
    """Where sine (SIREN's initialisation) and the incumbent rank (ranks_table's rows of a metric)."""
    r = g[g.activation == "sin"].iloc[0]
    t = g[g.activation == INCUMBENT].iloc[0]
    return (
        f"{METRIC_LABELS[metric]}: sine (SIREN's initialisation) ranks {r.best_rank:g}-{r.worst_rank:g} of "
        f"{r.of} (median {r.median_rank:g}); {INCUMBENT} {t.best_rank:g}-{t.worst_rank:g} (median "
        f"{t.median_rank:g}).",
        [
            f"Rank by median error over seeds within each of {r.cells} cells ({grid}).",
            "Ranks say which is lower, not by how much (the ratios do).",
        ],
    )


def _smoothness_finding(r) -> Finding:
    """One row of smoothness_table, said."""
    level = getattr(r, "deriv_weight", "all")
    where = "all cells" if level == "all" else f"deriv_weight = {level:g}"
    verdict = "rank lower (better) than" if r.mean_rank_smooth < r.mean_rank_rough else "rank no lower than"
    significant = "significant" if r.p_exact < stats.ALPHA else "not significant: inconclusive"
    return (
        f"{METRIC_LABELS[r.metric]}, {where}: the smooth activations {verdict} the rough ones: mean rank "
        f"{r.mean_rank_smooth:.2f} against {r.mean_rank_rough:.2f}; fully apart in {r.cells_separated} of "
        f"{r.cells} cells.",
        [
            f"Smooth (twice continuously differentiable): {r.smooth}; rough: {r.rough}.",
            f"Ranks within {r.blocks} (cell, seed) blocks; worst smooth {r.lowest_smooth}, best rough {r.best_rough}.",
            f"Exact one-sided test over the {r.labelings} ways to call {len(r.rough.split(', '))} of the "
            f"activations rough: p = {tables.sci(r.p_exact)}, {significant} (smallest possible p "
            f"{tables.sci(1 / r.labelings)}).",
            "Descriptive of these activations: they were chosen, not sampled, so the test says how unusual this "
            "order is among the ways to label them, not that smoothness would order others.",
        ],
    )
