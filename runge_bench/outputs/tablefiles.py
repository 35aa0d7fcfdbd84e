"""A study's results -> its tables/ directory: every table as CSV, the ones a paper prints as
Markdown and LaTeX too (latex.py). Only writes: every number comes from analysis.study."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..analysis import tables
from ..analysis.study import StudyResults
from ..problem.vocabulary import KEY_METRICS
from ..runs.loading import RUNS_COLUMNS
from . import latex
from .markdown import to_markdown


def write_tables(r: StudyResults, d: Path) -> None:
    """Every table of the report under d (the report's tables/)."""
    d.mkdir(parents=True, exist_ok=True)
    t, df = r.tables, r.runs
    df[[c for c in RUNS_COLUMNS if c in df.columns]].sort_values(["run_id"]).to_csv(d / "runs.csv", index=False)
    t.summary.to_csv(d / "summary.csv", index=False)
    t.comparisons.to_csv(d / "comparisons.csv", index=False)
    (d / "summary.md").write_text(to_markdown(t.summary))
    (d / "comparisons.md").write_text(to_markdown(t.comparisons))
    _paper_tables(r, d)
    if not t.reproduction.empty:
        (d / "reproduction.md").write_text(to_markdown(t.reproduction))
    always = {"baselines": t.baselines, "baselines_summary": t.baseline_summary, "floor": t.floor}
    if len(r.order) >= 2:
        always["data_profiles"] = r.data_profiles
    nonempty = {
        "axis_effects": t.effects,
        "ranking": t.ranking,
        "reproduction": t.reproduction,
        "cell_rankings": t.cell_rankings,
        "refinement": t.refinement,
        "checkpoints": t.checkpoints,
        "hypotheses": r.hypotheses,
        "profiles": t.profiles,
    }
    if r.sensitivity:
        nonempty |= {"sensitivity_order": r.sensitivity.order, "sensitivity_lambda": r.sensitivity.lam}
    if r.zoo:
        always |= {"zoo_versus": r.zoo.versus, "zoo_summary": r.zoo.summary, "zoo_ranks": r.zoo.ranks}
        nonempty["zoo_smoothness"] = r.zoo.smoothness
    if r.tuned:
        always |= {
            "tuning_settings": r.tuned.settings,
            "tuned_comparisons": r.tuned.compared,
            "tuning_budget": r.tuned.budget,
            "tuning_choices": r.tuned.splits.choices,
            "tuning_splits": r.tuned.splits.holds,
        }
    if r.frontier:
        always |= {
            "frontier_cells": r.frontier.cells,
            "frontier": r.frontier.fewest,
            "frontier_classical": r.frontier.classical_fewest,
            "frontier_gaps": r.frontier.gaps,
        }
    _csv(d, always)
    _csv(d, {name: table for name, table in nonempty.items() if not table.empty})


def _csv(d: Path, frames: dict[str, pd.DataFrame]) -> None:
    for name, table in frames.items():
        table.to_csv(d / f"{name}.csv", index=False)


def _paper_tables(r: StudyResults, d: Path) -> None:
    """The tables a paper prints: compact per-cell tables of the key metrics (csv, md, tex), and
    LaTeX of the summary, the comparisons and the reproduction."""
    t, study, order = r.tables, r.name, r.order
    for metric in KEY_METRICS:
        cells = latex.cell_table(t.summary, t.comparisons, metric, order)
        cells.to_csv(d / f"cells_{metric}.csv", index=False)
        (d / f"cells_{metric}.md").write_text(latex.cell_markdown(cells, order))
        (d / f"cells_{metric}.tex").write_text(latex.cell_tex(cells, order, metric, study))
    (d / "summary.tex").write_text(latex.summary_tex(t.summary, KEY_METRICS, study))
    if not t.comparisons.empty:
        (d / "comparisons.tex").write_text(
            latex.comparisons_tex(t.comparisons, KEY_METRICS, study, tables.cell_axes(r.runs), r.runs)
        )
    if not t.reproduction.empty:
        (d / "reproduction.tex").write_text(latex.reproduction_tex(t.reproduction, study))
