"""A study's results, computed once: the store read in one pass, every table and finding of its report.

    store ──read_store──> StudyResults (here: frames, findings, arrays; no files, no drawing)
                              ├── outputs/report.py    report.md and its sections
                              ├── outputs/tablefiles.py tables/ as CSV, Markdown and LaTeX
                              ├── outputs/figures.py   figures/
                              └── api.results          the same object, in a notebook

`study_results(source)` is what `runge-bench report` computes before it renders anything; a
renderer never opens a store or computes a statistic. The object depends on the store's contents
only (the runs are sorted as they are read), never on the order in which runs were stored.

    from runge_bench import api

    r = api.results("ablation")
    r.tables.comparisons          # every paired comparison, as tables/comparisons.csv has it
    r.findings["Across cells"]    # [(claim, [scope, test, ...]), ...]
    r.glance                      # the findings "At a glance" leads with
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..engine.environment import analysis_versions
from ..problem.activations import activation_order
from ..problem.hypothesis import DEFAULT_PRIMARY
from ..problem.targets import target_order
from ..problem.vocabulary import GRID_MSE, KEY_METRICS, METRICS
from ..runs.loading import Source, StoreContents, per_seed_arrays, read_store, validation_curves
from . import frontier, glance, hypotheses, profiles, sensitivity, tables, tuning, zoo
from .baselines import study_baselines
from .findings import Finding, findings


@dataclass(frozen=True)
class Tables:
    """Every table a report is built from (also written to tables/ as CSV, Markdown and LaTeX)."""

    summary: pd.DataFrame
    comparisons: pd.DataFrame
    effects: pd.DataFrame  # tables.axis_effects_table
    ranking: pd.DataFrame
    reproduction: pd.DataFrame
    baselines: pd.DataFrame  # per target of the study, seed and baseline
    baseline_summary: pd.DataFrame
    cell_rankings: pd.DataFrame  # tables.cell_rankings
    profiles: pd.DataFrame  # profiles.profiles_table (empty with one activation or one cell)
    floor: pd.DataFrame  # tables.floor_table
    refinement: pd.DataFrame  # tables.refinement_table
    checkpoints: pd.DataFrame  # tables.checkpoint_table (empty without checkpoint "best_val")
    compact: bool  # many cells: the report shows compact views of the summary and comparisons


@dataclass(frozen=True)
class Fits:
    """The reference cell's ok runs, shaped for the fits and loss-curve figures
    (runs.loading.per_seed_arrays): by activation, predictions (`members`) and curves; per target,
    the members of the reference cell with that target (when the study varies the target); and
    the runs whose arrays could not be read."""

    members: dict
    curves: dict
    target_members: dict
    unreadable: list[str]


@dataclass(frozen=True)
class Sensitivity:
    """Cells one factor away from the reference (analysis.sensitivity)."""

    order: pd.DataFrame  # every verdict in the parent cell and in the cell
    lam: pd.DataFrame  # the derivative loss's effect per cell
    findings: list[Finding]
    lead: tuple[str, str] | None  # the pair whose lead the section draws (glance.HEADLINE)
    lead_rows: pd.DataFrame  # order's rows of that pair


@dataclass(frozen=True)
class Zoo:
    """Many activations against the incumbent (analysis.zoo)."""

    versus: pd.DataFrame
    summary: pd.DataFrame
    ranks: pd.DataFrame
    smoothness: pd.DataFrame
    findings: list[Finding]


@dataclass(frozen=True)
class Tuned:
    """Each activation at its own best setting of the tuned axes (analysis.tuning)."""

    axes: list[str]
    selecting: list[int]  # the seeds that choose the settings
    evaluating: list[int]  # the seeds that compare them
    settings: pd.DataFrame
    chosen: pd.DataFrame  # the chosen settings, in the activations' order
    compared: pd.DataFrame  # tables.comparisons_table of the tuned runs
    key: pd.DataFrame  # compared, key metrics only
    budget: pd.DataFrame
    splits: tuning.Splits  # the selection repeated over random halvings of the seeds
    findings: list[Finding]


@dataclass(frozen=True)
class Frontier:
    """The precision frontier (analysis.frontier): network and classical cells, the fewest
    parameters reaching each threshold, the gap to the best classical method, and the findings."""

    cells: pd.DataFrame  # network_cells
    fewest: pd.DataFrame  # per target, noise, activation and method
    classical: pd.DataFrame  # classical_cells
    classical_fewest: pd.DataFrame  # per target, noise and classical method
    gaps: pd.DataFrame  # gap_table
    findings: list[Finding]  # the goal first, then a finding per target and noise


@dataclass(frozen=True)
class StudyResults:
    """Everything a report of one store shows, as data."""

    name: str
    source: Source
    runs: pd.DataFrame  # runs.loading.load_runs's frame (every status)
    notes: list[str]  # what the report says was left out or could not be read
    description: str
    question: str
    training_versions: list[tuple[str, int]]  # library sets the runs were trained with, and their counts
    analysis_versions: dict[str, str]  # the libraries these statistics and baselines were computed with
    cell: dict  # the reference cell (tables.reference_cell)
    order: list[str]  # the activations, in registry order
    tables: Tables
    findings: dict[str, list[Finding]]  # by section title ("" for the opening ones)
    fits: Fits
    data_profiles: pd.DataFrame  # profiles.data_profiles (empty with one activation)
    sensitivity: Sensitivity | None
    zoo: Zoo | None
    tuned: Tuned | None
    glance: list[Finding]  # at most five findings, chosen by glance_rule
    glance_rule: str
    primary: str = DEFAULT_PRIMARY  # the metric the headline findings use (the study's `primary`)
    hypotheses: pd.DataFrame = field(default_factory=pd.DataFrame)  # hypotheses.hypotheses_table
    hypothesis_findings: list[Finding] = field(default_factory=list)  # confirmatory or exploratory, each said
    offers: list[list[Finding]] = field(default_factory=list)  # the study sections' headline findings
    frontier: Frontier | None = None  # studies of the methods built for precision (frontier.has_frontier)


DATA_PROFILE_FACTORS = (1, 2, 3, 4)  # panels: validation loss down 10^k from its first epoch


def study_results(
    source: Source, tune: list[str] | None = None, on_stage: Callable[[str], None] | None = None
) -> StudyResults:
    """Read the store once and compute every table and finding of its report. tune: axes each
    activation is tuned over (analysis.tuning); on_stage(text) is told what it is doing."""
    stage = on_stage or (lambda text: None)
    contents = read_store(source, _arrays_wanted)
    df = contents.runs
    if tune:
        tuning.check_tuned(df, tune)
    stage(f"{len(df)} runs read; computing tables, tests and baselines")
    cell, order = tables.reference_cell(df), activation_order(df.activation)
    t = _tables(df, cell, order, contents)
    fits = _fits(df, cell, contents)
    notes = contents.notes + _without_ok_runs(df, order) + _unreadable(fits.unreadable)
    found = _findings(df, t, cell, contents.primary)
    sens, versus = _sensitivity(df, t, cell, order), _zoo(df, order)
    tuned = _tuned(df, tune, order, contents.primary) if tune else None
    front = _frontier(df, t, contents.arrays) if frontier.has_frontier(df) else None
    offers = [  # in the order "At a glance" takes the first that offers any
        front.findings if front else [],
        glance.zoo_offer(versus.findings if versus else []),
        glance.tuned_offer(tuned.findings if tuned else [], order),
        glance.floor_offer(found),
        glance.sensitivity_offer(sens.findings if sens else [], sens.lead if sens else None),
    ]
    declared = hypotheses.hypotheses_table(df, contents.hypotheses, contents.finished)
    declared_found = hypotheses.findings(declared)
    picked, rule = glance.select(
        df, t.reproduction, t.comparisons, cell, order, found, offers, bool(tune), contents.primary, declared_found
    )
    return StudyResults(
        name=source.name,
        source=source,
        runs=df,
        notes=notes,
        description=contents.text["description"],
        question=contents.text["question"],
        training_versions=contents.training_versions(),
        analysis_versions=analysis_versions(),
        cell=cell,
        order=order,
        tables=t,
        findings=found,
        fits=fits,
        data_profiles=_data_profiles(df, order, contents) if len(order) >= 2 else pd.DataFrame(),
        sensitivity=sens,
        zoo=versus,
        tuned=tuned,
        glance=picked,
        glance_rule=rule,
        offers=offers,
        primary=contents.primary,
        hypotheses=declared,
        hypothesis_findings=declared_found,
        frontier=front,
    )


def _frontier(df: pd.DataFrame, t: Tables, arrays: dict) -> Frontier:
    baselines = t.baselines if "noise" in t.baselines else t.baselines.assign(noise=float(df.noise.iloc[0]))
    bsum = (
        t.baseline_summary
        if "noise" in t.baseline_summary
        else t.baseline_summary.assign(noise=float(df.noise.iloc[0]))
    )
    cells = frontier.network_cells(df, arrays)
    classical = pd.concat(
        [frontier.classical_cells(df, baselines), frontier.interpolant_cells(bsum, df)], ignore_index=True
    )
    gaps = frontier.gap_table(df, cells, baselines, bsum)
    return Frontier(
        cells=cells,
        fewest=frontier.fewest(cells, [*frontier.CONDITION, "activation", "method"]),
        classical=classical,
        classical_fewest=frontier.fewest(classical, [*frontier.CONDITION, "method"], floored=True),
        gaps=gaps,
        findings=[frontier.goal_finding(cells), *frontier.gap_findings(gaps)],
    )


def _findings(df: pd.DataFrame, t: Tables, cell: dict, primary: str) -> dict[str, list[Finding]]:
    return findings(
        df,
        t.comparisons,
        t.effects,
        t.reproduction,
        t.ranking,
        t.summary,
        t.baseline_summary,
        cell,
        t.cell_rankings,
        t.floor,
        primary,
    )


def _arrays_wanted(df: pd.DataFrame) -> list[str]:
    """The runs whose curves and predictions a report reads: every run for the data profiles (two
    or more activations), else the reference cell's ok runs (of every target), the refined ones
    and those scored at their best epoch."""
    if df.activation.nunique() >= 2:
        return list(df.run_id)
    ok = df[df.status == "ok"]
    cell = {k: v for k, v in tables.reference_cell(df).items() if k != "target"}
    wanted = set(tables.select(ok, cell).run_id) | set(ok[(ok.optimizer != "adam") | (ok.checkpoint != "last")].run_id)
    return sorted(wanted)


def _unreadable(bad: list[str]) -> list[str]:
    """A note naming the runs whose arrays could not be read, if any."""
    if not bad:
        return []
    return [
        f"{len(bad)} runs' curves and predictions could not be read (a damaged row) and "
        f"are left out of the figures: {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}."
    ]


def _without_ok_runs(df: pd.DataFrame, order: list[str]) -> list[str]:
    """A note for each activation that has runs but none ok: it has no statistics, no rank and no
    pair, and the report says so rather than leave it out in silence."""
    notes = []
    for act in order:
        statuses = df.loc[df.activation == act, "status"].value_counts()
        if statuses.get("ok", 0) == 0:
            counts = ", ".join(f"{n} {s}" for s, n in statuses.items())
            notes.append(f"{act} has no ok run ({counts}): it is left out of the comparisons and rankings.")
    return notes


def _tables(df: pd.DataFrame, cell: dict, order: list[str], contents: StoreContents) -> Tables:
    """The report's tables from the runs; order: the activations' order (every table's rows,
    every pair's a and b)."""
    baselines = study_baselines(df, cell)
    summary, bsum = tables.summary_table(df), tables.baseline_summary(baselines)
    return Tables(
        summary=summary,
        comparisons=tables.comparisons_table(df, order),
        effects=tables.axis_effects_table(df, cell, list(METRICS)),
        ranking=tables.ranking_table(df, order),
        reproduction=tables.reproduction_table(df),
        baselines=baselines,
        baseline_summary=bsum,
        cell_rankings=tables.cell_rankings(df, GRID_MSE, order),
        floor=tables.floor_table(df, summary, baselines, bsum),
        refinement=tables.refinement_table(df, contents.last_epochs()),
        checkpoints=tables.checkpoint_table(df, contents.best_epochs(), order),
        profiles=(
            profiles.profiles_table(df, list(KEY_METRICS), order)
            if len(order) >= 2 and profiles.has_cells(df)
            else pd.DataFrame()
        ),
        # many cells, or so many axes that the full tables would not fit a page's width
        compact=bool(tables.cell_axes(df)) and (len(summary) > 16 * len(METRICS) or len(tables.cell_axes(df)) >= 3),
    )


def _fits(df: pd.DataFrame, cell: dict, contents: StoreContents) -> Fits:
    ok = df[df.status == "ok"]
    members, curves, unreadable = per_seed_arrays(contents.arrays, tables.select(ok, cell))
    target_members = {}
    if "target" in cell:  # the fits of every target, the other axes at the reference cell
        for name in target_order(df.target):
            m, _, bad = per_seed_arrays(contents.arrays, tables.select(ok, {**cell, "target": name}))
            target_members[name], unreadable = m, sorted(set(unreadable) | set(bad))
    return Fits(members, curves, target_members, unreadable)


def _data_profiles(df: pd.DataFrame, order: list[str], contents: StoreContents) -> pd.DataFrame:
    curves = validation_curves(contents.arrays, df)
    top = int(df.epochs.max())
    epochs = np.unique(np.concatenate([[1], np.geomspace(1, top, 120).round(), [top]]).astype(int))
    if df.deriv_weight.nunique() < 2:
        return profiles.data_profiles(curves, dict(zip(df.run_id, df.activation)), DATA_PROFILE_FACTORS, epochs)
    # The validation loss is MSE(f) + lambda MSE(f'): runs of different lambdas minimise different
    # objectives, so their profiles are kept apart, one per lambda.
    parts = []
    for lam, g in df.groupby("deriv_weight", sort=True):
        own = {rid: curves[rid] for rid in g.run_id if rid in curves}
        table = profiles.data_profiles(own, dict(zip(g.run_id, g.activation)), DATA_PROFILE_FACTORS, epochs)
        parts.append(table.assign(deriv_weight=lam))
    table = pd.concat(parts, ignore_index=True)
    return table[["deriv_weight", *[c for c in table.columns if c != "deriv_weight"]]]


def _sensitivity(df: pd.DataFrame, t: Tables, cell: dict, order: list[str]) -> Sensitivity | None:
    """With cells one factor away from the reference: whether each verdict survives each factor,
    the lead of the headline pair, and what the derivative loss does where both lambdas ran."""
    if not sensitivity.one_at_a_time(df):
        return None
    steps = sensitivity.factor_steps(df, cell)
    if steps.empty:
        return None
    order_t = sensitivity.order_table(t.comparisons, steps, list(KEY_METRICS))
    lam = sensitivity.lambda_table(df, list(KEY_METRICS), cell)
    lead = glance.HEADLINE if set(glance.HEADLINE) <= set(order) else None
    rows = order_t[(order_t.a == lead[0]) & (order_t.b == lead[1])] if lead and not order_t.empty else pd.DataFrame()
    return Sensitivity(order_t, lam, sensitivity.findings(order_t, lam, lead), lead, rows)


def _zoo(df: pd.DataFrame, order: list[str]) -> Zoo | None:
    """Many activations against the incumbent: who beats it and where, where each lands, whether
    smoothness orders them."""
    if not zoo.applies(df):
        return None
    versus = zoo.versus_table(df, order, GRID_MSE)
    if versus.empty:
        return None
    summary = zoo.versus_summary(versus, GRID_MSE, df)
    ranks = zoo.ranks_table(df, GRID_MSE, order)
    smooth = zoo.smoothness_table(df, GRID_MSE)
    said = zoo.findings(summary, ranks, smooth, tables.cell_axes(df), versus=versus)
    return Zoo(versus, summary, ranks, smooth, said)


def _tuned(df: pd.DataFrame, tune: list[str], order: list[str], primary: str) -> Tuned:
    """Each activation at its own best setting: the settings, the comparison on the evaluation
    seeds, and the expected best against the tuning budget."""
    selecting, evaluating = tuning.split_seeds(df.seed)
    settings = tuning.settings_table(df, tune)
    compared = tables.comparisons_table(tuning.tuned_runs(df, tune, settings), order)
    chosen = settings[settings.chosen].sort_values("activation", key=lambda a: a.map(order.index), kind="stable")
    chosen = chosen.assign(edge=tuning.edges(df, tune, chosen))
    key = compared[compared.metric.isin(tuning.METRICS_TUNED)] if not compared.empty else compared
    if not key.empty:  # the primary metric's first
        key = key.sort_values("metric", key=lambda m: m != primary, kind="stable")
    splits = tuning.splits_table(df, tune, order)
    return Tuned(
        axes=list(tune),
        selecting=selecting,
        evaluating=evaluating,
        settings=settings,
        chosen=chosen,
        compared=compared,
        key=key,
        budget=tuning.budget_table(settings, tune),
        splits=splits,
        findings=tuning.findings(key, splits, chosen, selecting, evaluating, primary) if not key.empty else [],
    )
