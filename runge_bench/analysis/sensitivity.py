"""One factor at a time around a reference protocol: does a conclusion survive the protocol?

A study of [[case]]s that each move one factor away from the seed protocol (studies/sensitivity.toml)
asks of every conclusion drawn at the protocol's cell whether it holds at each level of each
factor. Here:

- `factor_steps`: every cell one factor away from another cell of the study, its *parent*: the
  cell it equals but for that factor, which sits at the reference cell's level there. Context
  axes (CONTEXT: the derivative-loss weight and the checkpoint) may differ from the reference as
  well, so that "20 points at lambda 0" is a step from "1000 points at lambda 0". A cell that
  differs from the reference only in a context axis is a step of that axis.
- `order_table`: for every step, pair of activations and metric, the pair's verdict in the parent
  and in the cell (Wilcoxon over seeds, Holm within the cell, as tables.comparisons_table) and how
  it changed: kept, reversed, lost (became inconclusive), gained (became significant), or
  inconclusive in both; with the cell's ratio and its interval.
- `lambda_table`: per cell at lambda 0 with a twin at lambda 1 (equal otherwise), per activation and
  metric, err(lambda 1) / err(lambda 0) paired by seed (the same seed gives the same split, init and
  noise), Holm over the cells of the same factor.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..problem.vocabulary import METRIC_LABELS
from . import stats, tables
from .findings import Finding
from .stats import ALPHA

CONTEXT = ("deriv_weight", "checkpoint")  # axes a step may share with its parent away from the reference


def _cells(df: pd.DataFrame, axes: list[str]) -> list[dict]:
    """The study's cells (combinations of the cell axes that have runs), in sorted order."""
    if not axes:
        return [{}]
    combos = df[axes].drop_duplicates().sort_values(axes, kind="stable")
    return [dict(zip(axes, row)) for row in combos.itertuples(index=False, name=None)]


def one_at_a_time(df: pd.DataFrame) -> bool:
    """Whether the study moves factors one at a time around a reference (a [[case]] design: some
    combinations of its axes' levels have no runs) rather than crossing them in a full grid, whose
    axes the report's Along each axis and Across cells sections already cover."""
    axes = tables.cell_axes(df)
    if len(axes) < 2:
        return False
    full = int(np.prod([df[a].nunique(dropna=False) for a in axes]))
    return len(_cells(df, axes)) < full


def factor_steps(df: pd.DataFrame, reference: dict) -> pd.DataFrame:
    """One row per cell one factor away from its parent (see the module docstring): factor, its
    level in the cell (level) and in the parent (level_from), the context (the context axes that differ from the
    reference, as text), and the cell and parent as dicts (columns `cell`, `parent`)."""
    axes = tables.cell_axes(df)
    cells = _cells(df, axes)
    keys = {tuple(c[a] for a in axes) for c in cells}
    rows = []
    for c in cells:
        diff = [a for a in axes if c[a] != reference[a]]
        main = [a for a in diff if a not in CONTEXT]
        if len(main) == 1:
            factor = main[0]
        elif not main and len(diff) == 1:
            factor = diff[0]
        else:
            continue  # the reference itself, or two factors at once
        parent = {**c, factor: reference[factor]}
        if tuple(parent[a] for a in axes) not in keys:
            continue
        context = ", ".join(f"{a}={c[a]}" for a in diff if a != factor)
        rows.append(
            {
                "factor": factor,
                "level": c[factor],
                "level_from": reference[factor],
                "context": context,
                "cell": c,
                "parent": parent,
            }
        )
    return pd.DataFrame(rows, columns=["factor", "level", "level_from", "context", "cell", "parent"])


def _verdict(row) -> str:
    if row is None or np.isnan(row.p_holm) or row.p_holm >= ALPHA or row.favours not in ("a", "b"):
        return "inconclusive"
    return f"{row.a if row.favours == 'a' else row.b} lower"


CHANGES = ("kept", "reversed", "lost", "gained", "inconclusive in both")


def _change(before: str, after: str) -> str:
    if before == after:
        return "inconclusive in both" if before == "inconclusive" else "kept"
    if before == "inconclusive":
        return "gained"
    return "lost" if after == "inconclusive" else "reversed"


def order_table(comparisons: pd.DataFrame, steps: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Per step, pair and metric: the verdicts in the parent and in the cell, their change, and
    the cell's ratio a/b with its CI (Hodges-Lehmann, exact signed-rank interval)."""
    rows = []
    if comparisons.empty:
        return pd.DataFrame(rows)
    for step in steps.itertuples():
        here = tables.select(comparisons, step.cell)
        there = tables.select(comparisons, step.parent)
        for r in here[here.metric.isin(metrics)].itertuples():
            p = there[(there.a == r.a) & (there.b == r.b) & (there.metric == r.metric)]
            before, after = _verdict(next(p.itertuples()) if len(p) else None), _verdict(r)
            rows.append(
                {
                    "factor": step.factor,
                    "level": step.level,
                    "level_from": step.level_from,
                    "context": step.context,
                    "metric": r.metric,
                    "a": r.a,
                    "b": r.b,
                    "n_pairs": r.n_pairs,
                    "ratio_from": p.ratio.iloc[0] if len(p) else np.nan,
                    "ratio": r.ratio,
                    "ratio_lo": r.ratio_lo,
                    "ratio_hi": r.ratio_hi,
                    "verdict_from": before,
                    "verdict": after,
                    "change": _change(before, after),
                    "p_holm": r.p_holm,
                }
            )
    return pd.DataFrame(rows)


def lambda_table(df: pd.DataFrame, metrics: list[str], reference: dict) -> pd.DataFrame:
    """Per cell at deriv_weight 0 with a twin at deriv_weight 1 (every other axis equal), per
    activation and metric: err(lambda 1) / err(lambda 0) paired by seed, its CI and test; `factor`
    and `level` name the axis in which the pair of cells differs from the reference's (none: the
    reference's own lambda pair). p_holm: Holm over the levels of one factor (per activation and
    metric), the claim "the derivative loss helps at every level" being one family."""
    axes = tables.cell_axes(df)
    if "deriv_weight" not in axes:
        return pd.DataFrame()
    ok = df[df.status == "ok"]
    rows = []
    for c in _cells(df, axes):
        if c["deriv_weight"] != 0.0:
            continue
        twin = {**c, "deriv_weight": 1.0}
        moved = [a for a in axes if a != "deriv_weight" and c[a] != reference[a]]
        if len(moved) > 1:
            continue
        factor = moved[0] if moved else ""
        for act, g in ok.groupby("activation", sort=False):
            zero = tables.select(g, c).set_index("seed")
            one = tables.select(g, twin).set_index("seed")
            seeds = sorted(set(zero.index) & set(one.index))
            if not seeds:
                continue
            for metric in metrics:
                t = stats.paired_test(one.loc[seeds, metric].to_numpy(float), zero.loc[seeds, metric].to_numpy(float))
                rows.append(
                    {
                        "factor": factor,
                        "level": c[factor] if factor else np.nan,
                        "activation": act,
                        "metric": metric,
                        "n_pairs": t.n_pairs,
                        "ratio": t.ratio,
                        "ratio_lo": t.ratio_ci[0],
                        "ratio_hi": t.ratio_ci[1],
                        "helps": {"a": "yes", "b": "no: worse"}.get(t.favours, "") if t.p_value < ALPHA else "",
                        "p_wilcoxon": t.p_value,
                    }
                )
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["p_holm"] = np.nan
    for _, idx in out.groupby(["factor", "activation", "metric"], sort=False).groups.items():
        out.loc[idx, "p_holm"] = stats.holm(out.loc[idx, "p_wilcoxon"].to_numpy(float))
    out["helps"] = [
        ("yes" if r.ratio < 1 else "no: worse") if r.p_holm < ALPHA else "inconclusive" for r in out.itertuples()
    ]
    return out


def _levels(values) -> str:
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def findings(order: pd.DataFrame, lam: pd.DataFrame, lead: tuple[str, str] | None) -> list[Finding]:
    """Findings from order_table and lambda_table, each naming its scope and test: per factor, how
    the verdicts changed; the lead pair's lead off the reference; the derivative loss per factor."""
    test = f"Wilcoxon over seeds, Holm over the pairs of each cell, p < {ALPHA}."
    out: list[Finding] = []
    if not order.empty:
        out += [_factor_finding(factor, g, test) for factor, g in order.groupby("factor", sort=False)]
    if lead is not None and not order.empty:
        a, b = lead
        g = order[(order.a == a) & (order.b == b) & order.metric.str.endswith("_mse")]  # the MSEs of f and f'
        for metric, gm in g.groupby("metric", sort=False):
            below = gm[gm.ratio < 10]
            gone = gm[gm.verdict != f"{b} lower"]
            # the counts the intervals allow: cells whose whole CI is below 10x, and those where it reaches below
            surely, maybe = int((gm.ratio_hi < 10).sum()), int((gm.ratio_lo < 10).sum())
            out.append(
                (
                    f"{b}'s lead over {a} on {METRIC_LABELS[metric]} (ratio {a}/{b}): below 10x in {len(below)} of "
                    f"{len(gm)} cells off the reference (by their 95% CIs, {surely} to {maybe}); not significant or "
                    f"reversed in {len(gone)}.",
                    [
                        _changes(gm),
                        *([f"Below 10x: {_where(below)}."] if len(below) else []),
                        *([f"Not significant or reversed: {_where(gone)}."] if len(gone) else []),
                        test,
                    ],
                )
            )
    if not lam.empty:
        out += [
            _lambda_finding(factor, metric, g)
            for (factor, metric), g in lam.groupby(["factor", "metric"], sort=False)
            if factor
        ]
    return out


def _factor_finding(factor: str, g: pd.DataFrame, test: str) -> Finding:
    """How the verdicts changed one factor away (order_table's rows of that factor), the
    reversals named."""
    counts = g.change.value_counts()
    shown = ", ".join(f"{k} {int(counts.get(k, 0))}" for k in CHANGES)
    levels = _levels(sorted(set(g.level)))
    rev = g[g.change == "reversed"]
    return (
        f"{factor} at {levels}: of {len(g)} verdicts (pair x metric x level), {shown}.",
        [
            f"Each level against {factor}={g.level_from.iloc[0]} with the rest equal; {test}",
            *[
                f"Reversed: {r.a} vs {r.b}, {METRIC_LABELS[r.metric]}, {factor}={r.level}"
                f"{f' ({r.context})' if r.context else ''}: {r.verdict_from} at {factor}={r.level_from}, "
                f"{r.verdict} here (ratio {r.a}/{r.b} {tables.sci(r.ratio)}, 95% CI "
                f"{tables.sci(r.ratio_lo)}-{tables.sci(r.ratio_hi)})."
                for r in rev.itertuples()
            ],
        ],
    )


def _lambda_finding(factor: str, metric: str, g: pd.DataFrame) -> Finding:
    """The derivative loss along one factor on one metric (lambda_table's rows), per activation."""
    details, helped, hurt = [], [], []
    for act, ga in g.groupby("activation", sort=False):
        ratios = ", ".join(
            f"{_levels([r.level])}: {tables.sci(r.ratio)} ({tables.sci(r.ratio_lo)}-{tables.sci(r.ratio_hi)})"
            for r in ga.sort_values("level").itertuples()
        )
        helps = ga[ga.helps == "yes"].sort_values("level")
        hurts = ga[ga.helps == "no: worse"].sort_values("level")
        said = f"helps significantly at {_levels(list(helps.level))}" if len(helps) else "helps significantly nowhere"
        if len(hurts):
            said += f", hurts significantly at {_levels(list(hurts.level))}"
            hurt.append(act)
        if len(helps) == len(ga):
            helped.append(act)
        details.append(f"{act} {ratios}: {said}.")
    return (
        f"The derivative loss by {factor}, {METRIC_LABELS[metric]}: helps at every level for "
        f"{', '.join(helped) or 'none'}; hurts somewhere for {', '.join(hurt) or 'none'}.",
        [
            f"Error at lambda 1 over lambda 0 per level, 95% CI; Wilcoxon over seeds, Holm over the levels "
            f"of {factor}, p < {ALPHA}.",
            *details,
        ],
    )


def _changes(cells: pd.DataFrame) -> str:
    """How many protocol changes the cells one factor away are, and why they are not independent."""
    changes = len(cells[["factor", "level"]].drop_duplicates())
    some = ", some trained at two settings of another factor (the cell's context)" if changes < len(cells) else ""
    return (
        f"The {len(cells)} cells are {changes} changes of the protocol{some}; they share their seeds' splits and "
        "initialisations, so they are not independent."
    )


def _where(rows: pd.DataFrame) -> str:
    return "; ".join(f"{r.factor}={r.level}{f' at {r.context}' if r.context else ''}" for r in rows.itertuples())
