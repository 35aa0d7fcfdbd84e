"""Tables for papers: compact per-cell tables and LaTeX that compiles as it is.

Every `.tex` is a booktabs table made by pandas' `Styler.to_latex`: caption above, a `\\label`,
human headers, activations named as papers write them (ReLU, Tanh, SiLU, ...), and a `longtable`
past LONG_ROWS rows. One number format per table: every measured value in scientific notation,
3 significant figures (8.85 x 10^-4, never 0.00426 beside it); an interval is written in the
exponent of its estimate, 8.85 (2.79-22.1) x 10^-4, so that it reads at print size. A document
using them needs `\\usepackage{booktabs, longtable, graphicx}`; `tests/test_latex.py` compiles each
with pdflatex where it is installed, and renders one to PNG.

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
from .markdown import to_markdown

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


PAPER_NAMES = {
    "relu": "ReLU",
    "tanh": "Tanh",
    "silu": "SiLU",
    "softplus": "Softplus",
    "gelu": "GELU",
    "elu": "ELU",
    "mish": "Mish",
    "leaky_relu": "Leaky ReLU",
    "sin": "Sine",
}
_ESCAPE = {c: "\\" + c for c in "&%$#_{}"} | {"~": r"\textasciitilde{}", "^": r"\^{}", "\\": r"\textbackslash{}"}


def escape(text: str) -> str:
    """Text safe in LaTeX."""
    return "".join(_ESCAPE.get(ch, ch) for ch in str(text))


def name(activation: str) -> str:
    """An activation as a paper writes it; a formula activation verbatim in typewriter type."""
    return PAPER_NAMES.get(activation) or rf"\texttt{{{escape(activation)}}}"


def _exponent(x: float) -> int:
    """The power of ten of x's 3-significant-figure mantissa (9.996e-5 rounds to 1.00e-4)."""
    return int(f"{abs(x):.2e}".split("e")[1])


def _mantissa(x: float, e: int) -> str:
    """x / 10^e to 3 significant figures."""
    v = x / 10.0**e
    if v == 0:
        return "0"
    return f"{v:.{max(0, 2 - _exponent(v))}f}"  # trailing zeros kept: 1.70, not 1.7


def num(x: float) -> str:
    """A measured value: $8.85 \\times 10^{-4}$, 3 significant figures, always scientific (one
    format per table); -- where missing."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "--"
    x = float(x)
    if x == 0:
        return "$0$"
    e = _exponent(x)
    return rf"${_mantissa(x, e)} \times 10^{{{e}}}$"


def num_ci(m: float, lo: float, hi: float, brackets: str = "()") -> str:
    """An estimate with its interval in the estimate's exponent: $8.85$ (2.79--22.1) $\\times 10^{-4}$."""
    if m is None or not math.isfinite(m):
        return "--"
    if m == 0 or lo is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return num(m)
    e = _exponent(m)
    o, c = brackets
    return (
        rf"${_mantissa(m, e)}$\,{{\scriptsize {o}{_mantissa(lo, e)}--{_mantissa(hi, e)}{c}}}"
        rf"\,$\times 10^{{{e}}}$"
    )


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


STACK_ABOVE = 4  # a per-cell table with more activation columns puts each interval under its estimate


def _stacked(m: float, lo: float, hi: float, best: bool, dagger: bool) -> str:
    """An estimate over its interval (in the estimate's power of ten), two lines in one cell: a
    table of many activations stays readable at print size."""
    e = _exponent(m) if m != 0 else 0
    mark = r"^{\dagger}" if dagger else ""
    head = rf"${_mantissa(m, e)}{mark} \times 10^{{{e}}}$"
    head = rf"\underline{{{head}}}" if best else head
    tail = rf"\\{{\scriptsize ({_mantissa(lo, e)}--{_mantissa(hi, e)})}}" if math.isfinite(lo) and m != 0 else ""
    return rf"\begin{{tabular}}[t]{{@{{}}l@{{}}}}{head}{tail}\end{{tabular}}"


def _entry(row: pd.Series, act: str, fmt, stacked: bool = False) -> str:
    m = row.get(f"{act}_median", np.nan)
    if not np.isfinite(m):
        return "--" if fmt is num else "–"
    lo, hi = row.get(f"{act}_lo", np.nan), row.get(f"{act}_hi", np.nan)
    ci = f" [{fmt(lo)}, {fmt(hi)}]" if np.isfinite(lo) else ""
    if fmt is num and stacked:
        return _stacked(m, lo, hi, row["best"] == act, row["best"] == act and bool(row["best_significant"]))
    if fmt is num:
        text = num_ci(m, lo, hi)
        if row["best"] == act and row["best_significant"]:  # the dagger on the estimate, before its interval
            text = text.replace("$\\,", "^{\\dagger}$\\,", 1) if "$\\," in text else text + r"$^{\dagger}$"
        return rf"\underline{{{text}}}" if row["best"] == act else text
    text = (f"**{plain(m)}**" if row["best"] == act else plain(m)) + ci
    return text + (" †" if row["best"] == act and row["best_significant"] else "")


def _display(table: pd.DataFrame, order: list[str], fmt) -> pd.DataFrame:
    axes = [c for c in table.columns if c in CONFIG_FIELDS]
    tex = fmt is num  # LaTeX cells: every name and value escaped (a Python target's name has "_")
    out = pd.DataFrame(
        {
            HEADERS.get(a, escape(a) if tex else a): [
                escape(_axis_value(v)) if tex else _axis_value(v) for v in table[a]
            ]
            for a in axes
        }
    )
    present = [act for act in order if f"{act}_median" in table]
    stacked = fmt is num and len(present) > STACK_ABOVE
    for act in present:
        out[name(act) if fmt is num else act] = [_entry(r, act, fmt, stacked) for _, r in table.iterrows()]
    return out


def _axis_value(v) -> str:
    if isinstance(v, float) and v.is_integer():
        return f"{v:g}"
    return str(v)


def cell_markdown(table: pd.DataFrame, order: list[str]) -> str:
    return to_markdown(_display(table, order, plain))


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
        head, _, tail = tex.rpartition("\\end{tabular}")  # the outer tabular's end (cells may nest one)
        tex = head + "\\end{tabular}}" + tail
    return tex


def cell_tex(table: pd.DataFrame, order: list[str], metric: str, study: str) -> str:
    display = _display(table, order, num)
    n_axes = len(display.columns) - sum(name(a) in display.columns for a in order)
    caption = (
        f"{escape(study)}: {METRIC_LABELS_TEX.get(metric, metric)}, median over seeds with its order-statistic 95\\% CI "
        "(in parentheses, in the median's power of ten). "
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
            "activation": [name(a) for a in r.activation],
            "quantity": ["$f$" if q == "f" else "$f'$" for q in r.quantity],
            "metric": ["MSE" if m == "mse" else "max error" for m in r.metric],
            "published": [num(v) for v in r.published],
            "ours: median (95\\% CI)": [num_ci(m, lo, hi) for m, lo, hi in zip(r["median"], r.ci_low, r.ci_high)],
            "ours: 5--95\\%": [f"{num(a)} to {num(b)}" for a, b in zip(r.p05, r.p95)],
            "percentile": [f"{p:.0f}" for p in r.percentile],
            "published is": list(r.verdict),
        }
    )
    caption = (
        f"{escape(study)}: the seed report's published numbers (one run each, validation split) against the same "
        f"protocol over {int(r.n.min())} seeds."
    )
    return to_tex(display, caption, f"tab:{_label(study)}-reproduction", column_format="lllrlrrl", fit_width=True)


def comparisons_tex(
    comparisons: pd.DataFrame, metrics: list[str], study: str, axes: list[str], runs: pd.DataFrame
) -> str:
    """Pairs of activations: per cell when the study has one, else summarised over its cells."""
    if axes:
        c = tables.compact_comparisons(comparisons, metrics, runs)
        display = pd.DataFrame(
            {
                "a": [name(a) for a in c.a],
                "b": [name(b) for b in c.b],
                "metric": [METRIC_LABELS_TEX.get(m, m) for m in c.metric],
                "cells": c.cells,
                "a lower": c.a_better,
                "b lower": c.b_better,
                "neither": c.not_significant,
                "median ratio a/b (range)": [
                    num_ci(m, lo, hi)
                    for m, lo, hi in zip(c.median_ratio_median, c.median_ratio_min, c.median_ratio_max)
                ],
                "ratio over cells (95\\% CI)": [
                    num_ci(m, lo, hi) for m, lo, hi in zip(c.ratio_across_cells, c.ratio_across_lo, c.ratio_across_hi)
                ],
                "$p$ across cells": [num(p) for p in c.p_across_cells_holm],
            }
        )
        caption = (
            f"{escape(study)}: activations compared in every cell (Wilcoxon signed-rank on log ratios over seeds, "
            "Holm within the cell, $p<0.05$): in how many cells each is significantly lower; the median "
            "(range) over cells of the per-cell median ratio; the ratio averaged over the cells per seed, "
            "its Hodges-Lehmann estimate (exact 95\\% CI) and Wilcoxon test over the seeds (Holm)."
        )
        return to_tex(display, caption, f"tab:{_label(study)}-comparisons", column_format="lllrrrrllr", fit_width=True)
    c = comparisons[comparisons.metric.isin(metrics)]
    display = pd.DataFrame(
        {
            "a": [name(a) for a in c.a],
            "b": [name(b) for b in c.b],
            "metric": [METRIC_LABELS_TEX.get(m, m) for m in c.metric],
            "pairs": c.n_pairs,
            "a lower": c.a_wins,
            "ratio a/b (95\\% CI)": [num_ci(r, lo, hi) for r, lo, hi in zip(c.ratio, c.ratio_lo, c.ratio_hi)],
            "share a lower [95\\% CI]": [
                f"{s:.2f} [{lo:.2f}, {hi:.2f}]" if np.isfinite(lo) else f"{s:.2f}"
                for s, lo, hi in zip(c.share_a_lower, c.share_lo, c.share_hi)
            ],
            "$p$ (Holm)": [num(p) for p in c.p_holm],
            "$p$ (BH)": [num(p) for p in c.p_bh],
        }
    )
    caption = (
        f"{escape(study)}: activations compared paired by seed: the ratio of errors (Hodges-Lehmann, exact "
        "signed-rank CI), the share of seeds where a is lower (Clopper-Pearson CI), the Wilcoxon "
        "signed-rank test on log error ratios, Holm over the pairs of a cell and metric, "
        "Benjamini-Hochberg over the report."
    )
    return to_tex(display, caption, f"tab:{_label(study)}-comparisons", column_format="lllrrllrr", fit_width=True)


def summary_tex(summary: pd.DataFrame, metrics: list[str], study: str) -> str:
    s = summary[summary.metric.isin(metrics)]
    axes = [c for c in s.columns if c in CONFIG_FIELDS]
    display = pd.DataFrame(
        {HEADERS.get(a, a): [name(v) if a == "activation" else escape(_axis_value(v)) for v in s[a]] for a in axes}
    )
    display["metric"] = [METRIC_LABELS_TEX.get(m, m) for m in s.metric]
    display["$n$"] = list(s.n_ok)
    display["median (95\\% CI)"] = [num_ci(m, lo, hi) for m, lo, hi in zip(s["median"], s.median_lo, s.median_hi)]
    display["IQM (95\\% CI)"] = [num_ci(m, lo, hi) for m, lo, hi in zip(s.iqm, s.iqm_lo, s.iqm_hi)]
    caption = f"{escape(study)}: errors over seeds, median with its order-statistic 95\\% CI, interquartile mean with a bootstrap one."
    return to_tex(
        display.reset_index(drop=True),
        caption,
        f"tab:{_label(study)}-summary",
        column_format="l" * (len(axes) + 1) + "rll",
    )


def _label(study: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in study)
