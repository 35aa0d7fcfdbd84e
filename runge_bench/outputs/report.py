"""A study's results -> tables (csv, md, tex), figures (png, pdf) and a self-contained report.md.

`report` reads the store only, once (analysis.study.study_results), and never trains; this module
only renders what that computed. The same store always gives the same files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis import glance, stats, tables
from ..analysis.baselines import (
    DEGREE_RULE,
    RATIONAL_RULE,
    REPORT_FLOOR,
    at_floor,
    rational_skipped,
    rational_targets,
    unreported,
)
from ..analysis.study import StudyResults, study_results
from ..problem.config import CONFIG_FIELDS, PROTOCOL_VERSION
from ..problem.errors import UserError
from ..problem.published import SOURCE
from ..problem.vocabulary import GRID_MAX, GRID_MSE, KEY_METRICS, METRIC_LABELS, REGIME_AXES
from ..runs.loading import Source
from . import plots
from .figures import report_figures
from .files import check_output, written_whole
from .kinds import frontier_section, sensitivity_section, tuned_section, zoo_section
from .markdown import claims, figures, to_markdown, with_ci, write_markdown
from .tablefiles import write_tables


def build_report(
    source: Source,
    out_dir: Path | None = None,
    on_stage: Callable[[str], None] | None = None,
    tune: list[str] | None = None,
    draw: bool = True,
) -> Path:
    """Write tables/, figures/ and report.md for a store into out_dir (the store's directory by
    default); return the report's path. on_stage(text) is told what it is doing, for a progress
    line (a large study takes a minute).

    A report owns its tables/, figures/ and report.md: they are written into a fresh directory
    and swapped in whole (files.written_whole), so that nothing of an earlier report (of another
    study, or of another shape of this one) survives among the new files, and a report that fails
    half-way (a full disk, Ctrl-C) leaves the earlier one as it was. tune: axes each activation is
    tuned over (analysis.tuning), for a section comparing them at their own best settings.
    draw=False: the same report.md and tables, figures not rendered (tests)."""
    stage = on_stage or (lambda text: None)
    out = Path(out_dir) if out_dir is not None else source.store.parent
    for d in (out, out / "tables", out / "figures"):
        if d.exists() and not d.is_dir():
            raise UserError("exists and is not a directory: the report cannot be written there", path=d)
    if (out / "report.md").is_dir():
        raise UserError("is a directory: the report cannot be written there", path=out / "report.md")
    check_output(out, "the report")  # before the work: a link where it writes is refused at once
    results = study_results(source, tune, on_stage=stage)
    stage("drawing figures")
    with written_whole(out, "the report") as staging, plots.drawing(draw):
        write_report(results, staging)
    return out / "report.md"


def write_report(r: StudyResults, out: Path) -> None:
    """The report's tables/, figures/ and report.md, written into `out` (a fresh directory)."""
    write_tables(r, out / "tables")
    drawn = report_figures(r, out / "figures")
    write_markdown(out / "report.md", report_lines(r, {Path(rel).stem: (caption, rel) for caption, rel in drawn}))


def report_lines(r: StudyResults, by_stem: dict[str, tuple[str, str]]) -> list[str]:
    """report.md, line by line; by_stem: the figures drawn, (caption, path) by file stem."""
    t, df = r.tables, r.runs
    shown = lambda *stems: figures([by_stem[s] for s in stems if s in by_stem])
    axis_stems = [s for s in by_stem if s.startswith("by_")] + ["tradeoff", "heatmap_width", "heatmap_width_weight"]
    lines = [f"# runge-bench report: {r.name}", ""]
    if r.description:
        lines += [r.description, ""]
    lines += _glance(r, by_stem)
    lines += _hypotheses_section(r)
    lines += _study_section(r)
    lines += ["", *_findings_section(r.findings, declared=not r.hypotheses.empty)]
    lines += _reproduction_section(t.reproduction) + shown("reproduction")
    lines += _summary_section(df, t.summary, t.compact) + shown(
        "fits", "loss_curves", "fits_by_target", "distributions"
    )
    if any(s in by_stem for s in axis_stems):
        lines += ["", "## Along the axes", "", *shown(*axis_stems)]
    lines += _baselines_section(t.baseline_summary, t.baselines, df)
    if r.frontier is None:  # a frontier study's gaps to the best classical method replace this section
        lines += _floor_section(t.floor, tables.cell_axes(df)) + shown("floor_gap")
    lines += _refinement_section(t.refinement)
    lines += _checkpoints_section(t.checkpoints)
    lines += _comparisons_section(t.comparisons, t.compact, df)
    lines += _ranking_section(t.ranking) + shown("ranking", "profiles", "data_profiles")
    lines += sensitivity_section(r, by_stem.get("sensitivity_lead"))
    lines += zoo_section(r, by_stem.get("zoo_versus"))
    lines += tuned_section(r, by_stem.get("tuning_budget"))
    lines += frontier_section(r, [by_stem[s] for s in ("frontier_f", "frontier_df") if s in by_stem])
    return lines


def study_line(df: pd.DataFrame, order: list[str]) -> str:
    """The study in a line: its runs, what varies and what is fixed."""
    axes = tables.cell_axes(df)
    levels = [f"{a} ({', '.join(tables.sci(v) for v in sorted(df[a].unique()))})" for a in axes]
    acts = f"{df.activation.nunique()} activations ({', '.join(order)})"
    seeds = f"{df.seed.nunique()} seeds"
    cells = df.groupby(axes).ngroups if axes else 1
    if cells == int(np.prod([df[a].nunique() for a in axes])):  # a full grid
        return f"{len(df)} runs: {' x '.join([acts, *levels, seeds])}; the rest fixed (see Study)."
    return (
        f"{len(df)} runs: {acts} x {seeds} in each of {cells} cells, not a full grid; the levels: "
        f"{'; '.join(levels)}; the rest fixed (see Study)."
    )


def _glance(r: StudyResults, by_stem: dict[str, tuple[str, str]]) -> list[str]:
    """The question, the study in a line, the one figure that answers it and at most five
    findings, chosen by a stated rule (analysis.glance) from those the report states in full below."""
    lines = ["## At a glance", ""]
    if r.question:
        lines += [f"**Question.** {r.question}", ""]
    lines += [f"**Study.** {study_line(r.runs, r.order)}", ""]
    stem = glance.figure_stem(list(by_stem), tables.cell_axes(r.runs))
    if stem:
        lines += figures([by_stem[stem]])
    if r.glance:
        lines += [
            f"**Findings**, chosen by rule ({r.glance_rule}); all of them are under Findings and in the sections "
            "below:",
            "",
        ]
        lines += [*claims(r.glance), ""]
    return lines


HYPOTHESIS_COLUMNS = ["hypothesis", "cells", "seeds", "ratio", "p_holm", "verdict", "status", "declared_at"]


def _hypotheses_section(r: StudyResults) -> list[str]:
    """The study file's declared hypotheses, tested in one family (analysis.hypotheses)."""
    h = r.hypotheses
    if h.empty:
        return []
    shown = h.assign(ratio=with_ci(h.ratio, h.ratio_lo, h.ratio_hi))
    return [
        "## Declared hypotheses",
        "",
        f"The study file's [[hypothesis]] tables, tested exactly as declared: per seed, log(error(better)) - "
        f"log(error(worse)) (averaged over its cells when it spans several), the Hodges-Lehmann ratio "
        f"better/worse with its exact 95% CI, the two-sided Wilcoxon signed-rank test, Holm over the {len(h)} "
        "of them (one family). Supported or contradicted where Holm p < 0.05, else inconclusive. "
        "Confirmatory where the hypothesis was declared (recorded by a sweep) before the first of its runs "
        "was trained; exploratory otherwise, until `runge-bench confirm` re-tests it on fresh seeds. "
        "`tables/hypotheses.csv` has every column.",
        "",
        *claims(r.hypothesis_findings),
        "",
        to_markdown(shown, HYPOTHESIS_COLUMNS),
    ]


def _findings_section(found: dict, declared: bool = False) -> list[str]:
    status = (
        "unlike the declared hypotheses above, which are confirmatory where declared before their runs"
        if declared
        else "a study file's [[hypothesis]] tables declare confirmatory ones"
    )
    lines = [
        "## Findings",
        "",
        f"Exploratory: chosen and tested after the data ({status}). "
        "Generated from the tables below; each claim is followed by its scope and test. Significance: two-sided "
        "Wilcoxon signed-rank test on log error ratios, paired by seed, Holm-corrected over the family each "
        'finding names, p < 0.05. Not significant means inconclusive, never "no difference": the interval says '
        "what remains possible.",
        "",
    ]
    for title, said in found.items():
        if title:
            lines += [f"### {title}", ""]
        lines += [*claims(said), ""]
    return lines


def _study_section(r: StudyResults) -> list[str]:
    df, order, cell = r.runs, r.order, r.cell
    lines = ["## Study", "", f"- store: `{r.source.store.name}` ({len(df)} runs, protocol version {PROTOCOL_VERSION})"]
    for axis in [a for a in tables.varying_axes(df) if df[a].nunique() > 1]:
        values = order if axis == "activation" else sorted(df[axis].unique())
        lines.append(f"- varies **{axis}**: {', '.join(map(str, values))}")
    lines.append(f"- seeds: {df.seed.nunique()} ({df.seed.min()}-{df.seed.max()}); {stats.reach(df.seed.nunique())}")
    fixed = [c for c in CONFIG_FIELDS if c != "seed" and c not in tables.varying_axes(df)]
    lines.append("- fixed: " + ", ".join(f"{c}={df[c].iloc[0]}" for c in fixed))
    lines.append(f"- primary metric: {METRIC_LABELS[r.primary]} (the study's `primary`; the headline findings use it)")
    if cell:
        lines.append(f"- reference cell (the per-cell figures): {tables.describe_cell(cell)}")
    lines.append(_engines_line(df, order))
    lines.append(f"- total training time {df.wall_s.sum() / 60:.1f} min (summed over workers)")
    lines += [f"- trained with: {v} ({n} runs)" for v, n in r.training_versions]
    lines.append(
        "- this report's baselines and statistics computed with: "
        + ", ".join(f"{k} {v}" for k, v in r.analysis_versions.items())
    )
    return lines + [f"- note: {n}" for n in r.notes]


def _engines_line(df: pd.DataFrame, order: list[str]) -> str:
    """The engine of every activation; where they differ, that their comparisons are marked."""
    engines = tables.engines_of(df)
    if len(set(engines.values())) <= 1:
        return f"- engine: {', '.join(sorted(df.engine.unique()))} (every run)"
    by_engine: dict[str, list[str]] = {}
    for a in order:
        if a in engines:
            by_engine.setdefault(engines[a], []).append(a)
    said = "; ".join(f"{e} ({', '.join(acts)})" for e, acts in by_engine.items())
    return (
        f"- engines: {said}. A comparison of activations trained by different engines carries the engines' "
        'difference too: its row\'s note says "engines differ" (the fidelity studies measure that difference)'
    )


def _reproduction_section(reproduction: pd.DataFrame) -> list[str]:
    if reproduction.empty:
        return []
    return [
        "## Reproduction of the seed report",
        "",
        f"Published: {SOURCE}. Ours: the same protocol over {int(reproduction.n.min())} seeds; "
        "median with the distribution-free order-statistic CI (exact coverage at least 95%; none below 6 seeds), 5th-95th percentile, and where the published value "
        "falls among our seeds.",
        "",
        to_markdown(reproduction.drop(columns=["n"])),
    ]


def _summary_section(df: pd.DataFrame, summary: pd.DataFrame, compact: bool) -> list[str]:
    lines = [
        "## Summary over seeds",
        "",
        "Median with the distribution-free order-statistic CI (exact coverage at least 95%; none below 6 seeds), IQM (interquartile mean) with a 95% percentile-bootstrap CI over "
        "seeds (10,000 resamples, seeded by the cell); n_ok runs per group.",
    ]
    if compact:
        lines += [
            "Compact view: the median of two key metrics per cell; `tables/summary.csv` has every "
            "statistic of all eight metrics for every cell.",
            "",
        ]
        for metric in GRID_MSE:
            lines += [
                f"**{METRIC_LABELS[metric]}**, median over seeds",
                "",
                to_markdown(tables.compact_summary(summary, tables.cell_axes(df), metric)),
            ]
        return lines
    md_summary = summary[summary.metric.isin(KEY_METRICS)] if len(summary) > 40 else summary
    if md_summary is not summary:
        lines[-1] += " Key metrics shown; `tables/summary.csv` has all eight."
    columns = [c for c in summary.columns if c not in ("mean", "sd", "iqm_lo", "iqm_hi")]
    return lines + ["", to_markdown(md_summary, columns)]


def _e(x: float) -> str:
    return f"{x:.0e}".replace("e-0", "e-")


def _floor_marked(summary: pd.DataFrame) -> pd.DataFrame:
    """The baseline summary with each value at its reporting floor written "≤floor"."""
    out = summary.astype(dict.fromkeys(("median", "median_lo", "median_hi"), object))
    for c in ("median", "median_lo", "median_hi"):
        out[c] = [f"≤{tables.sci(v)}" if at_floor(m, v) else v for m, v in zip(summary.metric, summary[c])]
    return out


def _baselines_section(baseline_summary: pd.DataFrame, baselines: pd.DataFrame, runs: pd.DataFrame) -> list[str]:
    floors = REPORT_FLOOR
    return [
        "## Baselines",
        "",
        "Classical approximators fitted to the same training points of each seed's split and scored "
        "on the same validation split and dense grid (median over seeds with its order-statistic 95% CI). The "
        f"Chebyshev least-squares fit's degree is chosen per seed on the validation split by a rule "
        f"that no rounding-level difference between machines can flip: {DEGREE_RULE}. The rational ones are "
        "the floor a numerical analyst would use on clean samples of a smooth function: Floater-Hormann "
        "interpolation and AAA, their blending degree or number of terms chosen per seed the same way "
        f"({RATIONAL_RULE}), f′ the exact derivative of the barycentric formula, not a difference. Chosen on "
        "the validation split, their validation errors are optimistic; their dense-grid errors are not. Errors "
        f"below {_e(floors['f_max'])} (f max), {_e(floors['df_max'])} (f′ max), {_e(floors['f_mse'])} and "
        f"{_e(floors['df_mse'])} (the MSEs) are rounding, which a few ulps of change in the data move by 20-180%: "
        "they are reported at those floors, marked ≤. `tables/baselines.csv` has every seed and the setting "
        "chosen (the degree, blending degree or number of terms).",
        "",
        *rational_targets(baselines),
        *unreported(baselines),
        *rational_skipped(runs),
        to_markdown(_floor_marked(baseline_summary[baseline_summary.metric.isin(KEY_METRICS)])),
    ]


def _floor_section(floor: pd.DataFrame, axes: list[str]) -> list[str]:
    """The networks against the classical floor, shown where the study varies the training regime."""
    if floor.empty or not set(REGIME_AXES) & set(axes):
        return []
    shown = floor[floor.metric.isin(GRID_MAX)]
    columns = [
        "activation",
        *axes,
        "metric",
        "n_ok",
        "median",
        "best_baseline",
        "baseline_median",
        "ratio_to_best",
        "spline_median_ratio",
        "share_lower_than_spline",
        "p_vs_spline",
    ]
    return [
        "## The gap to the classical floor",
        "",
        "Per cell: the network's median over seeds on the dense grid, the best baseline's median on the "
        "same target (`ratio_to_best` = network / baseline), and the network against the cubic spline seed "
        "by seed on the same split: the median per-seed ratio, the share of seeds where the network is "
        "lower, and the two-sided Wilcoxon p on log ratios (unadjusted). Max errors shown; "
        "`tables/floor.csv` has the MSEs too.",
        "",
        to_markdown(shown, columns),
    ]


def _refinement_section(refinement: pd.DataFrame) -> list[str]:
    if refinement.empty:
        return []
    return [
        "## Refinement after Adam",
        "",
        "Runs refined by L-BFGS or Levenberg-Marquardt after their Adam epochs: how many stopped before "
        "their iterations were done (an L-BFGS line search that found no lower loss, an LM damping that "
        "ran away) and the iterations they completed. A stopped run keeps the point it reached and counts "
        "as ok.",
        "",
        to_markdown(refinement),
    ]


def _checkpoints_section(checkpoints: pd.DataFrame) -> list[str]:
    if checkpoints.empty:
        return []
    return [
        "## Checkpoints",
        "",
        "Runs with checkpoint best_val are scored with the parameters of the epoch whose validation loss "
        "(MSE(f) + deriv_weight x MSE(f′)) was lowest: per cell, that epoch as stored with each run (median and "
        "range), and the runs whose best epoch came before their last. The validation split chose the "
        "epoch, so these runs' validation errors are optimistic; their dense-grid errors are not.",
        "",
        to_markdown(checkpoints.assign(best_epoch_median=[f"{v:g}" for v in checkpoints.best_epoch_median])),
    ]


def _comparisons_section(comparisons: pd.DataFrame, compact: bool, df: pd.DataFrame) -> list[str]:
    if comparisons.empty:
        return []
    if compact:
        return [
            "## Paired comparisons",
            "",
            "Per pair of activations, over all cells of the other axes: in how many cells each is "
            "significantly better (two-sided Wilcoxon signed-rank over seeds on log error ratios, "
            "Holm-corrected over the pairs of that cell and metric, p < 0.05) or won in every seed, the range and median of "
            "the per-cell median ratio error(a)/error(b), and across the cells with the seeds as units "
            "(the cells share their seeds' splits and initialisations, so they are not independent): per "
            "seed, the log ratio averaged over the cells; its Hodges-Lehmann estimate with the exact 95% "
            "CI (`ratio_across_cells`, `_lo`, `_hi`) and the Wilcoxon test over the seeds (Holm over the "
            "pairs). `tables/comparisons.csv` has every cell; the columns here: cells where a (b) is significantly "
            "lower, where neither is, where a (b) won every seed, the range of per-cell median ratios, the ratio "
            "across cells with its CI and its Holm-adjusted p.",
            "",
            to_markdown(_compact_shown(tables.compact_comparisons(comparisons, [*GRID_MSE, "grid_df_max"], df))),
        ]
    return [
        "## Paired comparisons",
        "",
        "Pairs share a seed (same split, same initialisation seed). The effect first: `ratio` is "
        "error(a)/error(b), the Hodges-Lehmann estimate on the log scale, with its exact 95% CI "
        "(`ratio_lo`-`ratio_hi`, inverting the signed-rank test; none below 6 seeds); `median_ratio` is "
        "the median of the per-seed ratios; `detectable_ratio` the smallest ratio (either way) the test "
        "could detect with 80% power at the observed spread, in its Holm family (what an inconclusive "
        "pair could have seen); `share_a_lower` the share of seeds in which a's error is "
        "lower (ties half) with its exact (Clopper-Pearson) 95% CI. Then the test: `p_wilcoxon` is the "
        "two-sided Wilcoxon signed-rank p on log(error(a)) - log(error(b)), `p_holm` it Holm-corrected "
        "over the pairs of the same cell and metric, `p_bh` Benjamini-Hochberg-adjusted over every "
        "test of this table (the report's false discovery rate, for independent or positively dependent "
        "tests), `p_by` Benjamini-Yekutieli over the same (the false discovery rate under any dependence: "
        "the pairs share seeds and splits); `favours` is the side its statistic "
        "points to. A p above 0.05 is no evidence of no difference: the ratio's interval says what is "
        "still possible. Key metrics shown; `tables/comparisons.csv` has all eight.",
        "",
        to_markdown(comparisons[comparisons.metric.isin(KEY_METRICS)]),
    ]


def _compact_shown(c: pd.DataFrame) -> pd.DataFrame:
    """tables.compact_comparisons narrowed for reading: intervals and ranges in one column each."""
    sci = tables.sci
    return pd.DataFrame(
        {
            "a": c.a,
            "b": c.b,
            "metric": c.metric,
            "cells": c.cells,
            "a lower": c.a_better,
            "b lower": c.b_better,
            "neither": c.not_significant,
            "a every seed": c.a_won_every_seed,
            "b every seed": c.b_won_every_seed,
            "per-cell median ratio": [
                f"{sci(lo)} to {sci(hi)}" for lo, hi in zip(c.median_ratio_min, c.median_ratio_max)
            ],
            "ratio across cells (95% CI)": with_ci(c.ratio_across_cells, c.ratio_across_lo, c.ratio_across_hi),
            "p (Holm)": c.p_across_cells_holm,
        }
    )


def _ranking_section(ranking: pd.DataFrame) -> list[str]:
    if ranking.empty:
        return []
    return [
        "## Rankings",
        "",
        "Mean rank per activation (1 = lowest error); Friedman test over blocks; `lower_than`: the "
        "activations it is separated from and below, each pair tested on its own (Wilcoxon signed-rank "
        "over seeds on the log ratio averaged over the cells, Holm over the pairs, p < 0.05; Benavoli, "
        "Corani & Mangili 2016). The Nemenyi critical difference (CD) is given as a picture of the order: "
        "its separations depend on which other activations are compared.",
        "",
        to_markdown(ranking),
    ]
