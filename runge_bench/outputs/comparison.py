"""A comparison of two stores (analysis.compare) -> compare.csv, compare_conclusions.csv and
compare.md, and the few lines `runge-bench compare` prints. Only renders: every number comes from
analysis.compare."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis import stats
from ..analysis.compare import TAIL_FACTOR, VERDICTS, Comparison, changed_conclusions
from ..analysis.tables import sci
from ..problem.config import CONFIG_FIELDS
from ..problem.errors import UserError
from ..problem.vocabulary import GRID_MSE, METRIC_LABELS
from .files import written_whole
from .markdown import to_markdown, with_ci, write_markdown

LARGEST = 10  # cells listed at the top of compare.md


def _largest_shifts(c: Comparison) -> list[str]:
    """The cells whose medians moved most (either way), first in compare.md: a shift of the
    distribution shows there whatever the paired verdict says."""
    if c.cells.empty:
        return []
    moved = c.cells.assign(_size=np.abs(np.log(c.cells.cell_median_ratio_b_a.to_numpy(float))))
    top = moved.sort_values("_size", ascending=False, kind="stable").head(LARGEST).drop(columns="_size")
    return [
        f"## The {len(top)} largest shifts of a cell's median",
        "",
        to_markdown(_cells_shown(top)),
        "",
    ]


def _cells_shown(cells: pd.DataFrame) -> pd.DataFrame:
    """Cells of the comparison narrowed for reading (compare.csv has every column): each estimate
    with its interval in one column, the tails as counts."""
    axes = [a for a in cells.columns if a in CONFIG_FIELDS]
    return pd.DataFrame(
        {
            **{a: cells[a] for a in axes},
            "metric": cells.metric,
            "n": cells.n_matched,
            "paired B/A (95% CI)": with_ci(cells.median_ratio_b_a, cells.ratio_lo, cells.ratio_hi),
            "cell medians B/A (95% CI)": with_ci(cells.cell_median_ratio_b_a, cells.cell_ratio_lo, cells.cell_ratio_hi),
            "tail A, B": [f"{a}, {b}" for a, b in zip(cells.tail_a, cells.tail_b)],
            "p tail": cells.p_tail,
            "tail B-A (90% CI)": [f"{lo:+.3f} to {hi:+.3f}" for lo, hi in zip(cells.tail_diff_lo, cells.tail_diff_hi)],
            "rho": cells.pair_rho,
            "paired": cells.paired,
            "unpaired": cells.unpaired,
            "verdict": cells.verdict,
        }
    )


def describe(c: Comparison) -> str:
    """A few lines for the terminal: what was matched, the verdicts, the conclusions."""
    counts = c.counts
    changed, untestable = changed_conclusions(c)
    lines = [
        f"A: {c.a.store}",
        f"B: {c.b.store}",
        f"matched runs: {int(c.cells.groupby('metric').n_matched.sum().max()) if not c.cells.empty else 0}; "
        f"only in A: {len(c.only_a)}; only in B: {len(c.only_b)}; status changed: {len(c.status_changed)}",
        f"cells x metrics at margin x{c.margin:g} (tails ±{c.tail_margin:g}): "
        + ", ".join(f"{counts[v]} {v}" for v in VERDICTS),
        f"study-level conclusions (on the runs both hold): {len(c.conclusions) - len(changed) - untestable} same, "
        f"{untestable} not comparable, {len(changed)} changed",
    ]
    return "\n".join(lines)


def write_comparison(c: Comparison, out: Path) -> Path:
    """Write compare.csv (every cell and metric), compare_conclusions.csv and compare.md under
    out/, whole (files.written_whole); return compare.md's path."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError("exists and is not a directory: the comparison cannot be written there", path=out)
    with written_whole(out, "the comparison") as staging:
        _write_comparison(c, staging)
    return out / "compare.md"


TAIL_CELLS = 16  # at most this many cells get a sentence each on their tails
F_MSE = GRID_MSE[0]  # f's dense-grid MSE


def _tails(c: Comparison) -> list[str]:
    """For a comparison of few cells (an engine-fidelity study), per cell, on f's dense-grid MSE:
    the runs in the tail on each side, the test, and the share the test could have found."""
    rows = c.cells[c.cells.metric == F_MSE] if not c.cells.empty else c.cells
    if rows.empty or len(rows) > TAIL_CELLS:
        return []
    axes = [a for a in c.cells.columns if a in CONFIG_FIELDS]
    lines = [f"## Tails of {METRIC_LABELS[F_MSE]}, cell by cell", ""]
    for r in rows.itertuples():
        where = ", ".join(f"{a}={getattr(r, a)}" for a in axes) or "all runs"
        n = r.n_matched
        found = (
            f"a share of {r.tail_detectable_b:.2f} or more in B would have been found 80% of the time"
            if np.isfinite(r.tail_detectable_b)
            else "too few runs for the tail test to find any share"
        )
        lines.append(
            f"- {where}: {r.verdict}; beyond {TAIL_FACTOR:g}x the pooled median, {r.tail_a} of {n} runs in A "
            f"({r.tail_a / n:.2f}) and {r.tail_b} of {n} in B ({r.tail_b / n:.2f}), Fisher p = {sci(r.p_tail)}; "
            f"{found}; the difference in shares B-A {r.tail_diff_lo:+.3f} to {r.tail_diff_hi:+.3f} (90% CI; "
            f"{'within' if -c.tail_margin < r.tail_diff_lo and r.tail_diff_hi < c.tail_margin else 'not shown within'} "
            f"the tail margin ±{c.tail_margin:g}); cell medians B/A {sci(r.cell_median_ratio_b_a)} (95% CI "
            f"{sci(r.cell_ratio_lo)}-{sci(r.cell_ratio_hi)})."
        )
    return [*lines, ""]


def _write_comparison(c: Comparison, out: Path) -> None:
    c.cells.to_csv(out / "compare.csv", index=False)
    c.conclusions.to_csv(out / "compare_conclusions.csv", index=False)
    lines = [*_head(c), *_largest_shifts(c), *_tails(c), *_verdicts(c), *_not_equivalent(c), *_conclusions(c)]
    for title, rows in (
        ("Runs only in A", c.only_a),
        ("Runs only in B", c.only_b),
        ("Runs stored in both with another status", c.status_changed),
    ):
        if not rows.empty:
            lines += [f"## {title}", "", to_markdown(rows)]
    write_markdown(out / "compare.md", lines)


def _head(c: Comparison) -> list[str]:
    """The title, the two stores, what was matched, and how a cell is judged."""
    return [
        "# runge-bench compare",
        "",
        f"- A: `{c.a.store}`",
        f"- B: `{c.b.store}`",
        (
            f"- runs matched by config but {', '.join(c.ignored)} (the stores differ in it): "
            if c.ignored
            else "- runs matched by config (run id): "
        )
        + f"only in A {len(c.only_a)}, only in B {len(c.only_b)}, "
        f"stored in both with another status {len(c.status_changed)}",
        *([f"- only seeds {c.seeds.start}-{c.seeds.stop - 1} (`--seeds`), in both stores"] if c.seeds else []),
        "",
        "Per cell and metric, two views of the matched ok runs. Paired: d = log(error in B) - "
        f"log(error in A) run by run; equivalent within x{c.margin:g} by TOST (both one-sided Wilcoxon "
        f"signed-rank tests of d against ±log {c.margin:g} reject at {stats.ALPHA}), different when shifted "
        f"beyond x{c.margin:g} (a one-sided test against +log {c.margin:g} or -log {c.margin:g} rejects at "
        f"{stats.ALPHA / 2:g}), the median ratio B/A with a 95% bootstrap CI. Unpaired (the cells as two "
        "samples: where runs are chaotic, pairing carries nothing, and `pair_rho`, the Spearman "
        "correlation of the pairs, says so): the ratio of the cell medians B/A with a 95% bootstrap CI, "
        "a Mann-Whitney test on log errors (`p_shift`), and the runs in the tail, beyond "
        f"{TAIL_FACTOR:g}x the pooled median, in A and in B (Fisher's exact test, `p_tail`; `tail_detectable_b`, the share of B's runs in the tail "
        "it would find with 80% power, A's share being tail_a / n, says what a tail test that does not reject "
        "could have seen); equivalent "
        f"when the median ratio's CI lies within x{c.margin:g} and the shares of runs in the tail are shown to "
        f"differ by less than {c.tail_margin:g} (tail margin: the 90% Newcombe interval of B's share minus A's, "
        f"`tail_diff_lo`-`tail_diff_hi`, inside ±{c.tail_margin:g}; a tail test that does not reject is not "
        f"enough), different when the CI lies wholly beyond x{c.margin:g} or the tails differ (p < {stats.ALPHA}). "
        "**equivalent**: "
        "both views equivalent; **different**: either view different; **inconclusive**: the rest, "
        "including cells too small for a test.",
        "",
    ]


def _verdicts(c: Comparison) -> list[str]:
    """The verdicts counted per metric and along each axis, and the median shifts per metric."""
    counts = c.counts
    lines = [
        "## Verdicts",
        "",
        to_markdown(
            c.cells.groupby("metric", sort=False)
            .verdict.value_counts()
            .unstack(fill_value=0)
            .reindex(columns=list(VERDICTS), fill_value=0)
            .reset_index()
        ),
        f"In all: {', '.join(f'{counts[v]} {v}' for v in VERDICTS)}.",
        "",
    ]
    for axis in [a for a in c.cells.columns if a in CONFIG_FIELDS]:
        by = c.cells.groupby(axis, sort=True).verdict.value_counts().unstack(fill_value=0)
        lines += [f"By {axis}:", "", to_markdown(by.reindex(columns=list(VERDICTS), fill_value=0).reset_index())]
    shift = (
        c.cells.groupby("metric", sort=False)
        .agg(
            median_ratio=("median_ratio_b_a", lambda r: float(np.exp(np.median(np.log(r))))),
            over_2x=("share_over_2x", "mean"),
            over_10x=("share_over_10x", "mean"),
        )
        .reset_index()
    )
    lines += [
        "Per metric over the cells: the median of the cells' median ratios B/A, and the mean share of "
        "runs per cell differing by more than 2x and 10x.",
        "",
        to_markdown(shift),
    ]
    return lines


def _not_equivalent(c: Comparison) -> list[str]:
    bad = c.cells[c.cells.verdict != "equivalent"]
    return [
        "## Cells not shown equivalent",
        "",
        "`compare.csv` has every column of every cell (the TOST and shift p-values, the shares beyond 2x and "
        "10x, the detectable tail share, notes).",
        "",
        to_markdown(_cells_shown(bad)) if not bad.empty else "None.",
        "",
    ]


def _conclusions(c: Comparison) -> list[str]:
    """How many of the study-level conclusions stayed the same, and those that changed."""
    changed, untestable = changed_conclusions(c)
    lines = [
        "## Study-level conclusions",
        "",
        f"Each paired comparison's verdict (Holm p < {stats.ALPHA} and the side favoured), each step "
        f"along an axis, each ranking's order and the pairs it separates (each pair by its own Wilcoxon "
        f"test, Holm), in the "
        f"report of A and of B, each drawn from the runs both stores hold: "
        f"{len(c.conclusions) - len(changed) - untestable} the same, {untestable} not comparable (neither "
        f"side's runs can test it), {len(changed)} changed.",
        "",
    ]
    if not changed.empty:
        moves = changed.groupby(["kind", "change"], sort=True).size().rename("conclusions").reset_index()
        lines += [
            "How they changed (a significant verdict that reverses is a change of direction; one that "
            "becomes not significant, or the reverse, is a change of certainty):",
            "",
            to_markdown(moves),
            "",
            to_markdown(changed.drop(columns=["same"])),
        ]
    return lines
