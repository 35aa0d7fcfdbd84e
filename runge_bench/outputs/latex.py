"""Tables for papers: compact per-cell tables and LaTeX that compiles as it is.

Every `.tex` is a booktabs table made by pandas' `Styler.to_latex`: caption above, a `\\label`,
numbers typeset by siunitx (`\\num{...}`), human headers, and a `longtable` past LONG_ROWS rows.
A document using them needs `\\usepackage{booktabs, siunitx, longtable, graphicx}`; `tests/test_latex.py`
compiles each with pdflatex where it is installed.

The compact per-cell table is the one a paper prints: rows are the cells of the grid, columns the
activations, an entry is the median over seeds with its order-statistic 95% CI; the lowest median of a
row is bold, and marked † when it is significantly lower than every other activation of its cell
(two-sided Wilcoxon on log ratios over seeds, Holm within the cell, p < 0.05).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..analysis import stats, tables
from ..problem.config import CONFIG_FIELDS
from ..problem.vocabulary import METRIC_LABELS_TEX

LONG_ROWS = 40
HEADERS = {
    "width": "width",
    "depth": "depth",
    "deriv_weight": r"$\lambda$",
    "lr": "lr",
    "epochs": "epochs",
    "batch_size": "batch",
    "n_points": "points",
    "val_fraction": "val. share",
    "dtype": "dtype",
    "activation": "activation",
}


def num(x: float) -> str:
    """A number for siunitx: \\num{2.40e-08} (3 significant figures, scientific outside
    [1e-3, 1e4) as in the Markdown tables); -- where missing."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "--"
    return rf"\num{{{tables.sci(float(x))}}}"


def plain(x: float) -> str:
    """The same number for Markdown and terminals."""
    return tables.sci(x)


def cell_table(summary: pd.DataFrame, comparisons: pd.DataFrame, metric: str, order: list[str]) -> pd.DataFrame:
    """One metric as a compact grid: a row per cell of the axes other than activation, per
    activation the median with its CI, which activation is lowest and whether it is significantly
    lower than each other one in that cell. Plain numbers (the .csv)."""
    s = summary[summary.metric == metric]
    axes = [c for c in s.columns if c in CONFIG_FIELDS and c != "activation"]
    rows = []
    for key, g in s.groupby(axes, sort=True) if axes else [((), s)]:
        key = key if isinstance(key, tuple) else (key,)
        row: dict = dict(zip(axes, key))
        by_act = g.set_index("activation")
        for act in order:
            if act in by_act.index:
                r = by_act.loc[act]
                row |= {f"{act}_median": r["median"], f"{act}_lo": r["median_lo"], f"{act}_hi": r["median_hi"]}
        medians = {a: row.get(f"{a}_median", np.nan) for a in order}
        finite = {a: m for a, m in medians.items() if np.isfinite(m)}
        best = min(finite, key=finite.get) if finite else ""
        row["best"], row["best_significant"] = best, _beats_all(comparisons, dict(zip(axes, key)), metric, best, finite)
        rows.append(row)
    return pd.DataFrame(rows)


def _beats_all(comparisons: pd.DataFrame, cell: dict, metric: str, best: str, present: dict) -> bool:
    """Whether `best` is significantly lower than every other activation of the cell."""
    if not best or len(present) < 2 or comparisons.empty:
        return False
    c = tables.select(comparisons, cell)
    c = c[(c.metric == metric) & ((c.a == best) | (c.b == best))]
    wins = (c.p_holm < stats.ALPHA) & (((c.a == best) & (c.favours == "a")) | ((c.b == best) & (c.favours == "b")))
    return len(c) == len(present) - 1 and bool(wins.all())


def _entry(row: pd.Series, act: str, fmt) -> str:
    m = row.get(f"{act}_median", np.nan)
    if not np.isfinite(m):
        return "--" if fmt is num else "–"
    lo, hi = row.get(f"{act}_lo", np.nan), row.get(f"{act}_hi", np.nan)
    ci = f" [{fmt(lo)}, {fmt(hi)}]" if np.isfinite(lo) else ""
    if fmt is num:
        text = (rf"\underline{{{num(m)}}}" if row["best"] == act else num(m)) + (
            rf"\,{{\scriptsize{ci}}}" if ci else ""
        )
        return text + (r"$^\dagger$" if row["best"] == act and row["best_significant"] else "")
    text = (f"**{plain(m)}**" if row["best"] == act else plain(m)) + ci
    return text + (" †" if row["best"] == act and row["best_significant"] else "")


def _display(table: pd.DataFrame, order: list[str], fmt) -> pd.DataFrame:
    axes = [c for c in table.columns if c in CONFIG_FIELDS]
    out = pd.DataFrame({HEADERS.get(a, a): [_axis_value(v) for v in table[a]] for a in axes})
    for act in order:
        if f"{act}_median" in table:
            out[act] = [_entry(r, act, fmt) for _, r in table.iterrows()]
    return out


def _axis_value(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return f"{v:g}"
    return str(v)


def cell_markdown(table: pd.DataFrame, order: list[str]) -> str:
    return tables.to_markdown(_display(table, order, plain))


def to_tex(
    display: pd.DataFrame, caption: str, label: str, *, column_format: str | None = None, fit_width: bool = False
) -> str:
    """A booktabs table of already-typeset cells (Styler.to_latex; longtable past LONG_ROWS rows).
    fit_width: a float's tabular is scaled to the text width (graphicx's resizebox), for tables
    as wide as the compact per-cell ones."""
    styler = display.style.hide(axis="index")
    fmt = column_format or "l" * len(display.columns)
    long = len(display) > LONG_ROWS
    tex = styler.to_latex(
        caption=caption,
        label=label,
        hrules=True,
        column_format=fmt,
        environment="longtable" if long else None,
        position_float=None if long else "centering",
    )
    if fit_width and not long:
        tex = tex.replace("\\begin{tabular}", "\\resizebox{\\linewidth}{!}{\\begin{tabular}", 1)
        tex = tex.replace("\\end{tabular}", "\\end{tabular}}", 1)
    return tex


def cell_tex(table: pd.DataFrame, order: list[str], metric: str, study: str) -> str:
    display = _display(table, order, num)
    n_axes = len(display.columns) - sum(a in display.columns for a in order)
    caption = (
        f"{study}: {METRIC_LABELS_TEX.get(metric, metric)}, median over seeds with its order-statistic 95\\% CI. "
        r"Underlined: the lowest median of the row; $^\dagger$: significantly lower than every other "
        r"activation of its cell (Wilcoxon signed-rank on log ratios over seeds, Holm, $p<0.05$)."
    )
    return to_tex(
        display,
        caption,
        f"tab:{_label(study)}-{metric}",
        fit_width=len(order) > 2,
        column_format="r" * n_axes + "l" * (len(display.columns) - n_axes),
    )


def reproduction_tex(reproduction: pd.DataFrame, study: str) -> str:
    r = reproduction
    display = pd.DataFrame(
        {
            "activation": r.activation,
            "quantity": ["$f$" if q == "f" else "$f'$" for q in r.quantity],
            "metric": ["MSE" if m == "mse" else "max error" for m in r.metric],
            "published": [num(v) for v in r.published],
            "ours: median [95\\% CI]": [
                f"{num(m)} [{num(lo)}, {num(hi)}]" for m, lo, hi in zip(r["median"], r.ci_low, r.ci_high)
            ],
            "ours: 5--95\\%": [f"{num(a)}--{num(b)}" for a, b in zip(r.p05, r.p95)],
            "percentile": [f"{p:.0f}" for p in r.percentile],
            "published is": list(r.verdict),
        }
    )
    caption = (
        f"{study}: the seed report's published numbers (one run each, validation split) against the same "
        f"protocol over {int(r.n.min())} seeds."
    )
    return to_tex(display, caption, f"tab:{_label(study)}-reproduction", column_format="lllrlrrl")


def comparisons_tex(
    comparisons: pd.DataFrame, metrics: list[str], study: str, axes: list[str], runs: pd.DataFrame
) -> str:
    """Pairs of activations: per cell when the study has one, else summarised over its cells."""
    if axes:
        c = tables.compact_comparisons(comparisons, metrics, runs)
        display = pd.DataFrame(
            {
                "a": c.a,
                "b": c.b,
                "metric": [METRIC_LABELS_TEX.get(m, m) for m in c.metric],
                "cells": c.cells,
                "a lower": c.a_better,
                "b lower": c.b_better,
                "neither": c.not_significant,
                "median ratio a/b": [
                    f"{num(m)} ({num(lo)}--{num(hi)})"
                    for m, lo, hi in zip(c.median_ratio_median, c.median_ratio_min, c.median_ratio_max)
                ],
                "ratio over cells": [
                    f"{num(m)} ({num(lo)}--{num(hi)})"
                    for m, lo, hi in zip(c.ratio_across_cells, c.ratio_across_lo, c.ratio_across_hi)
                ],
                "$p$ across cells": [num(p) for p in c.p_across_cells_holm],
            }
        )
        caption = (
            f"{study}: activations compared in every cell (Wilcoxon signed-rank on log ratios over seeds, "
            "Holm within the cell, $p<0.05$): in how many cells each is significantly lower; the median "
            "(range) over cells of the per-cell median ratio; the ratio averaged over the cells per seed, "
            "its Hodges-Lehmann estimate (exact 95\\% CI) and Wilcoxon test over the seeds (Holm)."
        )
        return to_tex(display, caption, f"tab:{_label(study)}-comparisons", column_format="lllrrrrllr")
    c = comparisons[comparisons.metric.isin(metrics)]
    display = pd.DataFrame(
        {
            "a": c.a,
            "b": c.b,
            "metric": [METRIC_LABELS_TEX.get(m, m) for m in c.metric],
            "pairs": c.n_pairs,
            "a lower": c.a_wins,
            "ratio a/b [95\\% CI]": [
                f"{num(r)} [{num(lo)}, {num(hi)}]" if np.isfinite(lo) else num(r)
                for r, lo, hi in zip(c.ratio, c.ratio_lo, c.ratio_hi)
            ],
            "share a lower [95\\% CI]": [
                f"{s:.2f} [{lo:.2f}, {hi:.2f}]" if np.isfinite(lo) else f"{s:.2f}"
                for s, lo, hi in zip(c.share_a_lower, c.share_lo, c.share_hi)
            ],
            "$p$ (Holm)": [num(p) for p in c.p_holm],
            "$p$ (BH)": [num(p) for p in c.p_bh],
        }
    )
    caption = (
        f"{study}: activations compared paired by seed: the ratio of errors (Hodges-Lehmann, exact "
        "signed-rank CI), the share of seeds where a is lower (Clopper-Pearson CI), the Wilcoxon "
        "signed-rank test on log error ratios, Holm over the pairs of a cell and metric, "
        "Benjamini-Hochberg over the report."
    )
    return to_tex(display, caption, f"tab:{_label(study)}-comparisons", column_format="lllrrllrr")


def summary_tex(summary: pd.DataFrame, metrics: list[str], study: str) -> str:
    s = summary[summary.metric.isin(metrics)]
    axes = [c for c in s.columns if c in CONFIG_FIELDS]
    display = pd.DataFrame({HEADERS.get(a, a): [_axis_value(v) for v in s[a]] for a in axes})
    display["metric"] = [METRIC_LABELS_TEX.get(m, m) for m in s.metric]
    display["$n$"] = list(s.n_ok)
    display["median [95\\% CI]"] = [
        f"{num(m)} [{num(lo)}, {num(hi)}]" for m, lo, hi in zip(s["median"], s.median_lo, s.median_hi)
    ]
    display["IQM [95\\% CI]"] = [f"{num(m)} [{num(lo)}, {num(hi)}]" for m, lo, hi in zip(s.iqm, s.iqm_lo, s.iqm_hi)]
    caption = f"{study}: errors over seeds, median with its order-statistic 95\\% CI, interquartile mean with a bootstrap one."
    return to_tex(
        display.reset_index(drop=True),
        caption,
        f"tab:{_label(study)}-summary",
        column_format="l" * (len(axes) + 1) + "rll",
    )


def _label(study: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in study)
