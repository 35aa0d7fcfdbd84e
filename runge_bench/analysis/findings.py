"""A report's findings: sentences generated from its tables, each stating its scope.

A finding is a claim (one line) and its details: the scope, the counts and the test, one per
line (Finding). Every finding says in how many cells (or seeds) it holds, by which test, and
where it fails; nothing here is written for one particular result. A trend along an axis is checked at every
level of the other axes; a tie is never called a win; significance is always the two-sided
Wilcoxon signed-rank test on log error ratios, Holm-corrected over the family the sentence
speaks for, at stats.ALPHA.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..problem.targets import get_target
from ..problem.vocabulary import (
    CATEGORICAL_AXES,
    GRID_MAX,
    GRID_METRICS,
    GRID_MSE,
    METRIC_LABELS,
    REGIME_AXES,
)
from . import stats, tables
from .baselines import at_floor

ALPHA = stats.ALPHA
Finding = tuple[str, list[str]]  # a claim, and its scope, counts and test (a line each)
FLOOR_FINDINGS = "The gap to the classical floor, per regime"  # a section title glance.py reads
MAX_LISTED = 6  # a sentence names the cells of a category when it has at most this many


def _names(rows: pd.DataFrame, axes: list[str]) -> str:
    """The cells of rows named by their axes' values, "width=16, deriv_weight=0.0; width=32, ...",
    or "" when there are none, no axes, or more than MAX_LISTED (then the count says it)."""
    if rows.empty or not axes or len(rows) > MAX_LISTED:
        return ""
    columns = zip(*(rows[a].tolist() for a in axes))  # column-wise: an int axis stays int
    return "; ".join(", ".join(f"{a}={v}" for a, v in zip(axes, values)) for values in columns)


def _listed(groups: list[tuple[str, pd.DataFrame]], axes: list[str]) -> list[str]:
    """A detail line per named group of cells ("lower: width=16, ..."), where they are few enough."""
    return [f"{label}: {names}" for label, rows in groups if (names := _names(rows, axes))]


def _verdicts(rows: pd.DataFrame, one: str, other: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Rows where the test (p_holm < ALPHA) favours `one`, where it favours `other`, and the rest."""
    sig = rows.p_holm < ALPHA
    return (
        rows[sig & (rows.favours == one)],
        rows[sig & (rows.favours == other)],
        rows[~(sig & rows.favours.isin([one, other]))],
    )


def _under_bh(rows: pd.DataFrame, one: str, other: str, names: tuple[str, str]) -> str:
    """The same count under Benjamini-Hochberg over the report (p_bh < ALPHA): the larger family,
    with false discoveries bounded in share rather than in probability."""
    sig = rows.p_bh < ALPHA
    return (
        f"with Benjamini-Hochberg over the report instead, {names[0]} in {int((sig & (rows.favours == one)).sum())}, "
        f"{names[1]} in {int((sig & (rows.favours == other)).sum())}"
    )


def run_counts(df: pd.DataFrame) -> Finding:
    counts = df.status.value_counts()
    return (
        f"{len(df)} runs: {counts.get('ok', 0)} ok, {counts.get('diverged', 0)} diverged, "
        f"{counts.get('failed', 0)} failed.",
        ["Only ok runs enter the statistics."],
    )


def _inverse(ratio: float) -> float:
    """1 / ratio, where a ratio of 0 (an exact fit on one side) turns into inf, not an error."""
    return float(np.inf) if ratio == 0 else 1.0 / ratio


def pair_sentence(row: pd.Series) -> Finding:
    """One comparison of two activations in one cell (a row of tables.comparisons_table), told
    from the side the test favours (or, with no test, the side lower in more seeds)."""
    a, b, a_wins, n, ties = row.a, row.b, row.a_wins, row.n_pairs, row.ties
    b_wins = n - a_wins - ties
    ratio, r_lo, r_hi = row.ratio, row.ratio_lo, row.ratio_hi
    share, lo, hi = row.share_a_lower, row.share_lo, row.share_hi
    if row.favours == "b" or (row.favours == "" and b_wins > a_wins):
        a, b, a_wins, b_wins = b, a, b_wins, a_wins
        ratio, r_lo, r_hi = _inverse(ratio), _inverse(r_hi), _inverse(r_lo)
        share, lo, hi = 1 - share, 1 - hi, 1 - lo
    label = METRIC_LABELS[row.metric]
    tied = f", {ties} tied" if ties else ""
    effect = f"error ratio {a}/{b} {tables.sci(ratio)}"
    effect += f" (95% CI {tables.sci(r_lo)}-{tables.sci(r_hi)})" if not np.isnan(r_lo) else " (too few seeds for a CI)"
    seeds = f"{a} lower in {a_wins} of {n} seeds, {b} in {b_wins}{tied}"
    if not np.isnan(lo):
        seeds += f" (share {share:.2f}, 95% CI {lo:.2f}-{hi:.2f})"
    if np.isnan(row.p_holm):
        verdict = "no winner (a tie)" if a_wins == b_wins else "no test"
        return f"{label}: {verdict}: {effect}.", [f"{seeds}.", f"{row.note}."]
    p = (
        f"Wilcoxon on log ratios p = {tables.sci(row.p_holm)} (Holm), {tables.sci(row.p_bh)} (BH over the report), "
        f"{tables.sci(row.p_by)} (BY)."
    )
    if row.p_holm < ALPHA:
        return f"{label}: {a} significantly lower than {b}: {effect}.", [f"{seeds}.", p]
    return (
        f"{label}: inconclusive: {effect}.",
        ["Not significant; the interval says what remains possible.", f"{seeds}.", p],
    )


def across_cells(comparisons: pd.DataFrame, axes: list[str], metrics: list[str], runs: pd.DataFrame) -> list[Finding]:
    """Per pair of activations and metric: the cells where each side is significantly lower,
    where neither is, and the test across cells (tables.compact_comparisons)."""
    out = []
    compact = tables.compact_comparisons(comparisons, metrics, runs)
    for r in compact.itertuples():
        g = comparisons[(comparisons.a == r.a) & (comparisons.b == r.b) & (comparisons.metric == r.metric)]
        a_cells, b_cells, neither = _verdicts(g, "a", "b")
        ratio = f"ratio {r.a}/{r.b} {tables.sci(r.ratio_across_cells)}"
        if not np.isnan(r.ratio_across_lo):
            ratio += f" (95% CI {tables.sci(r.ratio_across_lo)}-{tables.sci(r.ratio_across_hi)})"
        across = (
            f"Over the cells, with the seeds as units: {ratio}, Wilcoxon over {r.seeds} seeds p = "
            f"{tables.sci(r.p_across_cells_holm)} (Holm)."
            if not np.isnan(r.p_across_cells_holm)
            else f"Over the cells, with the seeds as units: {ratio}; too few seeds for a test."
        )
        out.append(
            (
                f"{r.a} vs {r.b}, {METRIC_LABELS[r.metric]}, over {r.cells} cells ({' x '.join(axes)}): {r.a} "
                f"significantly lower in {len(a_cells)}, {r.b} in {len(b_cells)}, neither in {len(neither)}.",
                [
                    *_listed([(f"{r.a} lower", a_cells), (f"{r.b} lower", b_cells), ("neither", neither)], axes),
                    f"Wilcoxon on log ratios over seeds, Holm over the pairs of each cell, p < {ALPHA}; "
                    f"{_under_bh(g, 'a', 'b', (r.a, r.b))}.",
                    f"{r.a} lower in every seed in {r.a_won_every_seed} cells, {r.b} in {r.b_won_every_seed}; per-cell "
                    f"median ratio {r.a}/{r.b} from {tables.sci(r.median_ratio_min)} to "
                    f"{tables.sci(r.median_ratio_max)} (median {tables.sci(r.median_ratio_median)}).",
                    across,
                ],
            )
        )
    return out


def along_axes(effects: pd.DataFrame, metrics: list[str]) -> list[Finding]:
    """Per numeric axis, activation and metric: what the step from the axis's lowest level to the
    reference level, and from the reference to its highest, does at every level of the other
    axes (tables.axis_effects_table)."""
    out = []
    if effects.empty:
        return out
    for axis, ga in effects.groupby("axis", sort=False):
        levels = sorted(set(ga["from"]) | set(ga["to"]))
        steps = {(levels[0], s_to) for s_to in ga["to"]} & set(zip(ga["from"], ga["to"]))
        steps |= {(s_from, levels[-1]) for s_from in ga["from"]} & set(zip(ga["from"], ga["to"]))
        for lo, hi in sorted(steps):
            for (act, metric), g in ga[(ga["from"] == lo) & (ga["to"] == hi)].groupby(
                ["activation", "metric"], sort=False
            ):
                if metric not in metrics:
                    continue
                others = [o for o in g.others.iloc[0].split(", ") if o]
                up, down, neither = _verdicts(g, "from", "to")
                where = f"over {len(g)} cells ({' x '.join(others)})" if others else "in the one cell"
                out.append(
                    (
                        f"{act}, {axis} {lo:g} → {hi:g}, {METRIC_LABELS[metric]}, {where}: error higher at "
                        f"{axis}={hi:g} in {len(up)}, lower in {len(down)}, neither in {len(neither)}.",
                        [
                            *_listed([("higher", up), ("lower", down), ("neither", neither)], others),
                            f"Wilcoxon on log ratios over seeds, Holm over the cells, p < {ALPHA}; "
                            f"{_under_bh(g, 'from', 'to', ('higher', 'lower'))}.",
                            f"Per-cell median ratio error({axis}={hi:g}) / error({axis}={lo:g}) from "
                            f"{tables.sci(g.median_ratio.min())} to {tables.sci(g.median_ratio.max())}.",
                        ],
                    )
                )
    return out


def rankings(ranking: pd.DataFrame, metrics: list[str]) -> list[Finding]:
    """Mean ranks, Friedman's test, which pairs the pairwise tests separate (tables.ranking_table),
    and the pairs on the Nemenyi critical difference's edge."""
    out = []
    for metric in metrics:
        r = ranking[ranking.metric == metric].sort_values("mean_rank", kind="stable")
        if r.empty:
            continue
        acts, ranks, cd, pairs = tables.separated_pairs(ranking, metric)
        apart = [f"{a} < {b}" for a, b, separated in pairs if separated]
        close = [f"{a}, {b}" for a, b, separated in pairs if not separated]
        edge = [f"{a}, {b}" for a, b in tables.borderline_pairs(ranking, metric)]
        out.append(
            (
                f"Mean rank on {METRIC_LABELS[metric]}: {', '.join(f'{a} {m:.2f}' for a, m in zip(acts, ranks))}; "
                f"Friedman p = {tables.sci(r.friedman_p.iloc[0])}.",
                [
                    f"Over {r.n_blocks.iloc[0]} blocks ({r.blocks.iloc[0]}); rank 1 = lowest median error. Ranks say "
                    "which is lower, not by how much.",
                    f"Separated (Wilcoxon over seeds, Holm over the pairs, p < {ALPHA}): {', '.join(apart) or 'none'}.",
                    f"Not separated, so in no order (inconclusive): {'; '.join(close) or 'none'}.",
                    f"On the edge of the Nemenyi CD {cd:.2f} (within one rank step): {'; '.join(edge) or 'none'}.",
                ],
            )
        )
    return out


def published_runs(df: pd.DataFrame, reproduction: pd.DataFrame) -> list[Finding]:
    """The seed report's numbers per activation as what they are, one run: against our seeds of
    the same protocol, on all its published numbers at once. A run of our distribution lies beyond
    all n of our seeds on one metric with probability 1 / (n + 1) (exchangeability), and on all of
    its correlated metrics together at most that: one event, never one per number."""
    proto = tables.seed_protocol_runs(df)
    out = []
    for act, rows in reproduction.groupby("activation", sort=False):
        ours = proto[proto.activation == act]
        columns = [f"val_{q}_{m}" for q, m in zip(rows.quantity, rows.metric)]
        published = rows.published.to_numpy(float)
        values = ours[columns].to_numpy(float)
        n = len(values)
        worse = int(np.all(values < published, axis=1).sum())  # seeds the published run is worse than on every number
        better = int(np.all(values > published, axis=1).sum())
        k = len(columns)
        if worse == n or better == n:
            side = "above" if worse == n else "below"
            out.append(
                (
                    f"{act}: the published run lies {side} all {n} of our seeds on every one of its {k} numbers.",
                    [
                        f"A run of our distribution does so on one number with probability 1/{n + 1} "
                        f"({1 / (n + 1):.3f}), and on all {k} together at most that: one event, not {k}.",
                    ],
                )
            )
        else:
            out.append(
                (
                    f"{act}: taken jointly, the published run is not beyond all {n} of our seeds: worse than {worse} "
                    f"of them on every one of its {k} numbers, better than {better} on every one.",
                    [
                        "One run per activation, its numbers taken together (they are not independent); a number "
                        "outside our 5-95% range can still be inside the range of all our seeds.",
                    ],
                )
            )
    return out


def reproduction_sentence(reproduction: pd.DataFrame) -> Finding:
    inside = reproduction[reproduction.verdict == "inside"]
    n = int(reproduction.n.min())
    outside = reproduction[reproduction.verdict != "inside"]
    return (
        f"{len(inside)} of {len(reproduction)} published numbers fall inside our 5-95% range over {n} seeds.",
        [
            "They are the numbers of one run per activation: not independent events.",
            *[
                f"Outside: {r.activation} {r.quantity} {r.metric} (published {tables.sci(r.published)}, "
                f"{r.verdict} our 5-95% range, percentile {r.percentile:.0f})."
                for r in outside.itertuples()
            ],
        ],
    )


def baseline_value(metric: str, value: float) -> str:
    """A baseline's error as printed: "at or below" its reporting floor where it sits there."""
    return f"at or below {tables.sci(value)} (rounding)" if at_floor(metric, value) else tables.sci(value)


def against_baselines(summary: pd.DataFrame, baseline_summary: pd.DataFrame, axes: list[str]) -> list[Finding]:
    """The best network cell (by median over seeds) against the best baseline, per max error and
    per target and split (a network and a baseline are compared on the same data only)."""
    keys = tables.baseline_keys(baseline_summary)
    out = []
    for key, bt in baseline_summary.groupby(keys, sort=False):
        where_fitted = dict(zip(keys, key))
        shared = {k: v for k, v in where_fitted.items() if k in axes}
        s_t = tables.select(summary, shared)
        on = f" on {tables.describe_cell(shared).replace('target=', 'target ')}" if shared else ""
        for metric in GRID_MAX:
            s = s_t[s_t.metric == metric].dropna(subset=["median"])
            b = bt[bt.metric == metric]
            if s.empty or b.empty:
                continue
            best = s.loc[s["median"].idxmin()]
            where = ", ".join(f"{a}={best[a]}" for a in ["activation", *axes] if a != "target")
            bb = b.loc[b["median"].idxmin()]
            floored = at_floor(metric, bb["median"])  # the baseline is at or below its value: the gap at least
            out.append(
                (
                    f"Best network cell{on} on {METRIC_LABELS[metric]}: {'at least ' if floored else ''}"
                    f"{tables.sci(best['median'] / bb['median'])}x the best baseline.",
                    [
                        f"Network: {where}, {tables.sci(best['median'])} (median over seeds).",
                        f"Baseline: {bb.baseline}, {baseline_value(metric, bb['median'])}.",
                    ],
                )
            )
    return out


def cell_ranking_sentences(cell_rankings: pd.DataFrame, axes: list[str], metrics: list[str]) -> list[Finding]:
    """Within every cell, the activations' mean ranks over seeds, Friedman's test and the pairs the
    Nemenyi CD separates."""
    out = []
    for key, g in cell_rankings.groupby(axes, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        where = ", ".join(f"{a}={v}" for a, v in zip(axes, key))
        for metric in metrics:
            if not (g.metric == metric).any():
                continue
            acts, ranks, cd, pairs = tables.separated_pairs(g, metric)
            r = g[g.metric == metric].iloc[0]
            apart = [f"{a} < {b}" for a, b, separated in pairs if separated]
            out.append(
                (
                    f"{where}, {METRIC_LABELS[metric]}: {', '.join(f'{a} {m:.2f}' for a, m in zip(acts, ranks))}.",
                    [
                        f"Mean rank over {r.n_blocks} seeds; Friedman p = {tables.sci(r.friedman_p)}.",
                        f"Separated (Wilcoxon over seeds, Holm): {', '.join(apart) or 'none'}.",
                    ],
                )
            )
    return out


def ranking_shifts(cell_rankings: pd.DataFrame, axes: list[str], cell: dict, metrics: list[str]) -> list[Finding]:
    """Does the ranking hold when a categorical axis (target, dtype, optimizer) leaves its reference
    level? Every cell against the cell with the reference levels of those axes and the same levels
    of the others: pairs the pairwise tests separate in both cells in the same order (holds), in
    opposite orders (flips), in one of the two only."""
    cats = [a for a in axes if a in CATEGORICAL_AXES]
    if not cats:
        return []
    out = []
    ref_levels = {a: cell[a] for a in cats}
    label = ", ".join(f"{a}={v}" for a, v in ref_levels.items())
    for metric in metrics:
        m = cell_rankings[cell_rankings.metric == metric]
        held = flipped = one_sided = compared = 0
        flips: list[str] = []
        for key, g in m.groupby(axes, sort=True):
            key = key if isinstance(key, tuple) else (key,)
            here = dict(zip(axes, key))
            if all(here[a] == ref_levels[a] for a in cats):
                continue
            ref = tables.select(m, {**here, **ref_levels})
            if ref.empty:
                continue
            compared += 1
            order_here = {(a, b): s for a, b, s in tables.separated_pairs(g, metric)[3]}
            order_ref = {(a, b): s for a, b, s in tables.separated_pairs(ref, metric)[3]}
            for (a, b), sep in order_here.items():
                if (a, b) in order_ref:
                    held += sep and order_ref[(a, b)]
                    one_sided += sep != order_ref[(a, b)]
                else:  # (b, a) in the reference order
                    flipped += sep and order_ref[(b, a)]
                    one_sided += sep != order_ref[(b, a)]
                    if sep and order_ref[(b, a)]:
                        flips.append(f"{a} < {b} at {', '.join(f'{k}={v}' for k, v in here.items())}")
        if compared:
            out.append(
                (
                    f"{METRIC_LABELS[metric]}: of the pairs separated both in a cell and at {label}, {held} keep "
                    f"their order and {flipped} reverse it; {one_sided} are separated in only one of the two.",
                    [
                        f"Each of {compared} cells against the cell with {label} at the same levels of the other "
                        "axes; separated: Wilcoxon over seeds, Holm over the pairs of the cell.",
                        *[f"Reversed: {f}." for f in flips],
                    ],
                )
            )
    return out


def floor_sentences(floor: pd.DataFrame, axes: list[str], target: str | None = None) -> list[Finding]:
    """How close each activation gets to the classical floor in each regime (cells of the regime
    axes): its best cell over the other axes, on f and f' max error, as a multiple of the best
    baseline's median; and the smallest networks whose f' max error matches the cubic spline's."""
    regime = [a for a in axes if a in REGIME_AXES]
    others = [a for a in axes if a not in REGIME_AXES and a != "target"]
    if not regime:
        return []
    out = []
    by = regime + (["target"] if "target" in axes else [])  # a network meets the floor of its own target
    for key, g in floor.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        name = " ".join(map(str, key[: len(regime)])) + (f" on target {key[-1]}" if "target" in axes else "")
        parts = []
        for metric in GRID_MAX:
            gm = g[g.metric == metric].dropna(subset=["median"])
            if gm.empty:
                continue
            each = []
            for act, ga in gm.groupby("activation", sort=False):
                b = ga.loc[ga["median"].idxmin()]
                at = f" at {', '.join(f'{a}={b[a]}' for a in others)}" if others else ""
                least = "≥" if at_floor(metric, b.baseline_median) else ""
                each.append(f"{act} {tables.sci(b['median'])}{at} ({least}{tables.sci(b.ratio_to_best)}x)")
            base = gm.iloc[0]
            parts.append(
                f"{METRIC_LABELS[metric]}: {'; '.join(each)} (best baseline: {base.best_baseline}, "
                f"{baseline_value(metric, base.baseline_median)})."
            )
        closest = g[g.metric.isin(GRID_MAX)].dropna(subset=["ratio_to_best"])
        claim = f"{name}: the best median over seeds per activation, as a multiple of the best baseline's"
        if not closest.empty:
            c = closest.loc[closest.ratio_to_best.idxmin()]
            least = "≥" if at_floor(c.metric, c.baseline_median) else ""
            claim += f"; closest: {c.activation}, {least}{tables.sci(c.ratio_to_best)}x on {METRIC_LABELS[c.metric]}"
        on = key[-1] if "target" in axes else target  # target: the study's one target, where it has one
        if on is not None and get_target(str(on)).rational:
            parts.append(
                "The target is rational: a rational method recovers it to rounding, so this floor is rounding."
            )
        out.append((claim + ".", parts))
    return out


def spline_match(floor: pd.DataFrame, axes: list[str], metric: str = "grid_df_max") -> list[Finding]:
    """The smallest networks (fewest parameters, then lowest error) whose error on `metric` is at or
    below the cubic spline's on the same split, by the median of per-seed ratios, with the paired
    test; or the closest cell when none is."""
    f = floor[floor.metric == metric].dropna(subset=["spline_median_ratio"])
    if f.empty:
        return []
    width_of = (lambda r: r["width"]) if "width" in f else (lambda r: 0)
    where = lambda r: ", ".join(f"{a}={r[a]}" for a in ["activation", *axes])
    facts = lambda r: (
        f"median per-seed ratio to the cubic spline {tables.sci(r.spline_median_ratio)}, network lower "
        f"in a share {r.share_lower_than_spline:.2f} of seeds, Wilcoxon on log ratios p = "
        f"{tables.sci(r.p_vs_spline)} (unadjusted)"
    )
    match = f[f.spline_median_ratio <= 1]
    if match.empty:
        r = f.loc[f.spline_median_ratio.idxmin()]
        return [
            (
                f"No cell matches the cubic spline on {METRIC_LABELS[metric]} (same split, per seed).",
                [f"The closest: {where(r)}.", f"Its {facts(r)}."],
            )
        ]
    match = match.assign(_w=[width_of(r) for _, r in match.iterrows()]).sort_values(["_w", "spline_median_ratio"])
    smallest = match[match._w == match._w.iloc[0]]
    return [
        (
            f"{len(match)} of {len(f)} cells are at or below the cubic spline on {METRIC_LABELS[metric]}.",
            [
                "By the median of per-seed ratios on the same split; the smallest networks among them follow.",
                *[f"{where(r)}: {facts(r)}." for _, r in smallest.iterrows()],
            ],
        )
    ]


def findings(
    df: pd.DataFrame,
    comparisons: pd.DataFrame,
    effects: pd.DataFrame,
    reproduction: pd.DataFrame,
    ranking: pd.DataFrame,
    summary: pd.DataFrame,
    baseline_summary: pd.DataFrame,
    cell: dict,
    cell_rankings: pd.DataFrame | None = None,
    floor: pd.DataFrame | None = None,
    primary: str = "grid_df_mse",
) -> dict[str, list[Finding]]:
    """Every finding of a report, by section title ("" for the opening ones). In the reference
    cell, the primary metric leads, then the dense grid's other metrics (those "At a glance" quotes)."""
    axes = tables.cell_axes(df)
    head = [run_counts(df)]
    if not reproduction.empty:
        head.append(reproduction_sentence(reproduction))
        head += published_runs(df, reproduction)
    out = {"": head}
    if not comparisons.empty:
        single = tables.select(comparisons, cell)
        # The primary metric first, then the dense grid's others: all four for one pair; for more
        # pairs, the two MSEs (fewer sentences). The validation split is small and, with best-validation
        # checkpoints, the stopping rule too: its metrics stay in the tables.
        grid = GRID_METRICS if df.activation.nunique() <= 2 else GRID_MSE
        metrics = [primary, *[m for m in grid if m != primary]]
        title = f"In the reference cell ({tables.describe_cell(cell)})" if axes else "Paired by seed"
        out[title] = [pair_sentence(r) for m in metrics for r in single.itertuples() if r.metric == m]
        if axes:
            out["Across cells"] = across_cells(comparisons, axes, GRID_MSE, df)
    if not ranking.empty:
        out["Rankings"] = rankings(ranking, GRID_MSE)
    if not effects.empty:
        out["Along each axis"] = along_axes(effects, GRID_MSE)
    if not baseline_summary.empty:
        out["Against the baselines"] = against_baselines(summary, baseline_summary, axes)
    if floor is not None and not floor.empty and set(axes) & set(REGIME_AXES):
        one = df.target.iloc[0] if df.target.nunique() == 1 else None
        out[FLOOR_FINDINGS] = floor_sentences(floor, axes, one) + spline_match(floor, axes)
    if cell_rankings is not None and not cell_rankings.empty and set(axes) & set(CATEGORICAL_AXES):
        metrics = GRID_MSE
        out["Does the ranking hold?"] = ranking_shifts(cell_rankings, axes, cell, metrics)
        out["Rankings within each cell"] = cell_ranking_sentences(cell_rankings, axes, metrics)
    return {k: v for k, v in out.items() if v}
