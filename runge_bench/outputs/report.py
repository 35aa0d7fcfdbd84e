"""A results store -> tables (csv, md, tex), figures (png, pdf) and a self-contained report.md.

`report` reads the store only; it never trains. The same store always gives the same files.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..analysis import profiles, sensitivity, stats, tables, tuning, zoo
from ..analysis.baselines import DEGREE_RULE, study_baselines
from ..analysis.findings import findings, pair_sentence
from ..engine.environment import analysis_versions
from ..problem.activations import activation_order
from ..problem.config import CONFIG_FIELDS, PROTOCOL_VERSION
from ..problem.errors import UserError
from ..problem.published import SOURCE
from ..problem.targets import target_order
from ..problem.vocabulary import GRID_MAX, GRID_MSE, KEY_METRICS, METRIC_LABELS, METRICS, REGIME_AXES
from ..runs.files import written_whole
from ..runs.loading import (
    RUNS_COLUMNS,
    Source,
    cell_arrays,
    last_epochs,
    load_runs,
    study_text,
    training_versions,
    validation_curves,
)
from . import latex, plots
from .figures import report_figures


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


def write_tables(source: Source, df: pd.DataFrame, cell: dict, order: list[str], out: Path) -> Tables:
    """Compute the report's tables from the runs and write them under out/; order: the activations'
    order (every table's rows, every pair's a and b)."""
    baselines = study_baselines(df, cell)
    summary, bsum = tables.summary_table(df), tables.baseline_summary(baselines)
    t = Tables(
        summary=summary,
        comparisons=tables.comparisons_table(df, order),
        effects=tables.axis_effects_table(df, cell, list(METRICS)),
        ranking=tables.ranking_table(df, order),
        reproduction=tables.reproduction_table(df),
        baselines=baselines,
        baseline_summary=bsum,
        cell_rankings=tables.cell_rankings(df, GRID_MSE, order),
        floor=tables.floor_table(df, summary, baselines, bsum),
        refinement=tables.refinement_table(df, last_epochs(source, df)),
        profiles=(
            profiles.profiles_table(df, list(KEY_METRICS), order)
            if len(order) >= 2 and profiles.has_cells(df)
            else pd.DataFrame()
        ),
    )
    d = out / "tables"
    d.mkdir(parents=True, exist_ok=True)
    df[[c for c in RUNS_COLUMNS if c in df.columns]].sort_values(["run_id"]).to_csv(d / "runs.csv", index=False)
    t.summary.to_csv(d / "summary.csv", index=False)
    t.comparisons.to_csv(d / "comparisons.csv", index=False)
    (d / "summary.md").write_text(tables.to_markdown(t.summary))
    (d / "comparisons.md").write_text(tables.to_markdown(t.comparisons))
    _paper_tables(source.name, df, t, order, d)
    if not t.effects.empty:
        t.effects.to_csv(d / "axis_effects.csv", index=False)
    if not t.ranking.empty:
        t.ranking.to_csv(d / "ranking.csv", index=False)
    if not t.reproduction.empty:
        t.reproduction.to_csv(d / "reproduction.csv", index=False)
        (d / "reproduction.md").write_text(tables.to_markdown(t.reproduction))
    t.baselines.to_csv(d / "baselines.csv", index=False)
    t.baseline_summary.to_csv(d / "baselines_summary.csv", index=False)
    t.floor.to_csv(d / "floor.csv", index=False)
    for name, table in (("cell_rankings", t.cell_rankings), ("refinement", t.refinement), ("profiles", t.profiles)):
        if not table.empty:
            table.to_csv(d / f"{name}.csv", index=False)
    return t


def _paper_tables(study: str, df: pd.DataFrame, t: Tables, order: list[str], d: Path) -> None:
    """The tables a paper prints (latex.py): compact per-cell tables of the key metrics (csv, md,
    tex), and LaTeX of the summary, the comparisons and the reproduction."""
    for metric in KEY_METRICS:
        cells = latex.cell_table(t.summary, t.comparisons, metric, order)
        cells.to_csv(d / f"cells_{metric}.csv", index=False)
        (d / f"cells_{metric}.md").write_text(latex.cell_markdown(cells, order))
        (d / f"cells_{metric}.tex").write_text(latex.cell_tex(cells, order, metric, study))
    (d / "summary.tex").write_text(latex.summary_tex(t.summary, KEY_METRICS, study))
    if not t.comparisons.empty:
        (d / "comparisons.tex").write_text(
            latex.comparisons_tex(t.comparisons, KEY_METRICS, study, tables.cell_axes(df), df)
        )
    if not t.reproduction.empty:
        (d / "reproduction.tex").write_text(latex.reproduction_tex(t.reproduction, study))


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
    and swapped in whole (runs.files.written_whole), so that nothing of an earlier report (of
    another study, or of another shape of this one) survives among the new files, and a report
    that fails half-way (a full disk, Ctrl-C) leaves the earlier one as it was. tune: axes each
    activation is tuned over (analysis.tuning), for a section comparing them at their own best
    settings. draw=False: the same report.md and tables, figures not rendered (tests)."""
    stage = on_stage or (lambda text: None)
    out = Path(out_dir) if out_dir is not None else source.store.parent
    for d in (out, out / "tables", out / "figures"):
        if d.exists() and not d.is_dir():
            raise UserError("exists and is not a directory: the report cannot be written there", path=d)
    if (out / "report.md").is_dir():
        raise UserError("is a directory: the report cannot be written there", path=out / "report.md")
    df, notes = load_runs(source)
    if tune:
        tuning.check_tuned(df, tune)
    stage(f"{len(df)} runs read; computing tables, tests and baselines")
    with written_whole(out, "the report") as staging, plots.drawing(draw):
        _write_report(source, df, notes, staging, stage, tune or [])
    return out / "report.md"


def _write_report(
    source: Source, df: pd.DataFrame, notes: list[str], out: Path, stage: Callable[[str], None], tune: list[str]
) -> None:
    """The report's tables/, figures/ and report.md, written into `out` (a fresh directory)."""
    cell, order = tables.reference_cell(df), activation_order(df.activation)
    notes = notes + _without_ok_runs(df, order)
    t = write_tables(source, df, cell, order, out)
    stage("drawing figures")
    ok = df[df.status == "ok"]
    members, curves, unreadable = cell_arrays(source, tables.select(ok, cell))
    target_members = {}
    if "target" in cell:  # the fits of every target, the other axes at the reference cell
        for name in target_order(df.target):
            m, _, bad = cell_arrays(source, tables.select(ok, {**cell, "target": name}))
            target_members[name], unreadable = m, sorted(set(unreadable) | set(bad))
    figures = report_figures(
        df,
        t.summary,
        t.ranking,
        tables.select(t.baselines, {k: cell.get(k, df[k].iloc[0]) for k in tables.baseline_keys(t.baselines)}),
        cell,
        order,
        out / "figures",
        members,
        curves,
        floor=t.floor,
        target_members=target_members,
        profiles=t.profiles,
    )
    if unreadable:
        notes.append(
            f"{len(unreadable)} runs' curves and predictions could not be read (a damaged row) and "
            f"are left out of the figures: {', '.join(unreadable[:5])}{' ...' if len(unreadable) > 5 else ''}."
        )
    compact = bool(len(t.summary) > 16 * len(METRICS) and tables.cell_axes(df))
    if len(order) >= 2:
        figures.append(_data_profiles(source, df, order, out))
    sens = _sensitivity_section(df, t, cell, order, out)
    versus = _zoo_section(df, order, out)
    tuned = _tuned_section(df, tune, order, out) if tune else Section([])
    extra = [sens, versus, tuned]  # in the report's order
    figures += [x.figure for x in extra if x.figure]
    found = findings(
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
    )
    by_stem = {Path(rel).stem: (caption, rel) for caption, rel in figures}
    gap = found.get(FLOOR_FINDINGS, [])
    floor = Section([], [gap[-1], gap[-2]] if len(gap) > 1 else gap)  # the spline match, the last regime
    own = [versus, tuned, floor, sens]  # which one's findings lead "At a glance", first that has any
    shown = lambda *stems: _figures([by_stem[s] for s in stems if s in by_stem])  # noqa: E731
    axis_stems = [s for s in by_stem if s.startswith("by_")] + ["tradeoff", "heatmap_width", "heatmap_width_weight"]
    text = study_text(source)
    lines = [f"# runge-bench report: {source.name}", ""]
    if text["description"]:
        lines += [text["description"], ""]
    lines += _glance(text["question"], df, t, cell, order, found, own, by_stem, tuned=bool(tune))
    lines += _study_section(source, df, order, cell, notes, training_versions(source.store, list(df.run_id)))
    lines += ["", *_findings_section(found)]
    lines += _reproduction_section(t.reproduction) + shown("reproduction")
    lines += _summary_section(df, t.summary, compact) + shown("fits", "loss_curves", "fits_by_target", "distributions")
    if any(s in by_stem for s in axis_stems):
        lines += ["", "## Along the axes", "", *shown(*axis_stems)]
    lines += _baselines_section(t.baseline_summary)
    lines += _floor_section(t.floor, tables.cell_axes(df)) + shown("floor_gap")
    lines += _refinement_section(t.refinement)
    lines += _comparisons_section(t.comparisons, compact, df)
    lines += _ranking_section(t.ranking) + shown("ranking", "profiles", "data_profiles")
    for x in extra:
        lines += x.lines
    (out / "report.md").write_text("\n".join(tables.wrap_markdown(lines)).rstrip() + "\n")


@dataclass(frozen=True)
class Section:
    """A study-specific section: its lines (its figure among them), the findings it offers to
    "At a glance" (best first), and its figure, if it draws one."""

    lines: list[str]
    glance: list = field(default_factory=list)  # findings.Finding
    figure: tuple[str, str] | None = None


def _figures(figs: list[tuple[str, str]]) -> list[str]:
    """Figures where they belong: the image, then its caption in italics."""
    lines = []
    for caption, rel in figs:
        lines += ["", f"![{Path(rel).stem}]({rel})", "", f"*{caption}.*"]
    return lines + ([""] if lines else [])


HEADLINE = ("relu", "tanh")  # the seed report's pair; another study's first two activations otherwise


def _headline_pair(order: list[str]) -> tuple[str, str] | None:
    if set(HEADLINE) <= set(order):
        return HEADLINE
    return (order[0], order[1]) if len(order) >= 2 else None


FLOOR_FINDINGS = "The gap to the classical floor, per regime"  # findings()'s section title
FIGURE_RULE = (
    "zoo_versus",
    "tuning_budget",
    "floor_gap",
    "sensitivity_lead",
    "ranking_targets",
    "heatmap_width_weight",
    "reproduction",
    "distributions",
)


def _glance(
    question: str,
    df: pd.DataFrame,
    t: Tables,
    cell: dict,
    order: list[str],
    found: dict,
    extra: list[Section],
    by_stem: dict[str, tuple[str, str]],
    tuned: bool = False,
) -> list[str]:
    """The question, the study in a line, the one figure that answers it and at most five
    findings, chosen by a stated rule from those the report states in full below."""
    axes = tables.cell_axes(df)
    levels = [f"{a} ({', '.join(tables.sci(v) for v in sorted(df[a].unique()))})" for a in axes]
    acts = f"{df.activation.nunique()} activations ({', '.join(order)})"
    seeds = f"{df.seed.nunique()} seeds"
    cells = df.groupby(axes).ngroups if axes else 1
    if cells == int(np.prod([df[a].nunique() for a in axes])):  # a full grid
        line = f"{len(df)} runs: {' x '.join([acts, *levels, seeds])}; the rest fixed (see Study)."
    else:
        line = (
            f"{len(df)} runs: {acts} x {seeds} in each of {cells} cells, not a full grid; the levels: "
            f"{'; '.join(levels)}; the rest fixed (see Study)."
        )
    lines = ["## At a glance", ""]
    if question:
        lines += [f"**Question.** {question}", ""]
    lines += [f"**Study.** {line}", ""]
    stems = dict(by_stem)
    if "target" in axes and "ranking" in stems:
        stems["ranking_targets"] = stems["ranking"]
    figure = next((stems[s] for s in FIGURE_RULE if s in stems), None)
    if figure:
        lines += _figures([figure])
    picked, rule = _picked(df, t, cell, order, found, extra, tuned)
    if picked:
        lines += [
            f"**Findings**, chosen by rule ({rule}); all of them are under Findings and in the sections below:",
            "",
        ]
        lines += [*claims(picked[:5]), ""]
    return lines


def _picked(
    df: pd.DataFrame, t: Tables, cell: dict, order: list[str], found: dict, extra: list[Section], tuned: bool
) -> tuple[list, str]:
    """The findings "At a glance" shows, and the rule that chose them (stated with them). tuned:
    the report compares the activations each at its own best setting (report --tune)."""
    own = next((x.glance for x in extra if x.glance), [])  # the first study-specific section that offers any
    picked, rule = [], []
    if not t.reproduction.empty:
        picked.append(found[""][1])
        rule.append("the reproduction")
    pair = _headline_pair(order)
    k, seeds = len(order), df[df.status == "ok"].seed.nunique()
    reachable = seeds >= 2 and stats.min_wilcoxon_p(seeds) * k * (k - 1) / 2 <= stats.ALPHA
    # Tuned, the reference cell is one setting of many; with many activations and few seeds the
    # all-pairs family cannot reject at all (the study's own section tests what it can).
    if pair and not t.comparisons.empty and (tuned or not reachable):
        why = "the activations are tuned" if tuned else f"{seeds} seeds cannot reject among {k * (k - 1) // 2} pairs"
        rule.append(f"not the reference cell's {pair[0]} vs {pair[1]} ({why})")
    if pair and not t.comparisons.empty and not tuned and reachable:
        a, b = pair
        single = tables.select(t.comparisons, cell)
        rows = single[(single.a == a) & (single.b == b)]
        where = f"In the reference cell ({tables.describe_cell(cell)})" if cell else "Paired by seed"
        for metric in ("grid_df_mse", "grid_f_mse"):
            r = rows[rows.metric == metric]
            if len(r):
                claim, details = pair_sentence(r.iloc[0])
                picked.append(
                    (f"{where}, {claim[0].lower()}{claim[1:]}" if claim[:1] == "F" else f"{where}, {claim}", details)
                )
        rule.append(f"{a} vs {b} on f′ and f (dense-grid MSE) in the reference cell")
        if tables.cell_axes(df) and not own:
            across = [
                f
                for f in found.get("Across cells", [])
                if f[0].startswith(f"{a} vs {b}, {METRIC_LABELS['grid_df_mse']}")
            ]
            picked += across[:1]
            rule.append("the same pair over all cells on f′")
    if not picked and not own:  # one activation: nothing to compare; what it ran and how close it got
        picked = [found[""][0], *found.get("Against the baselines", [])[:2]]
        rule.append("the runs, and the best network against the best baseline (one activation: no pair to compare)")
    if own:
        keep = max(5 - len(picked), 2)
        picked = picked[: 5 - keep] + own[:keep]
        rule.append(
            "the headline findings of the study's own section (against the incumbent, tuned, the floor or the protocol)"
        )
    return picked[:5], "; ".join(rule)


def _sensitivity_section(df: pd.DataFrame, t: Tables, cell: dict, order: list[str], out: Path) -> Section:
    """With cells one factor away from the reference (analysis.sensitivity): whether each verdict
    survives each factor, the lead of the last activation over the first (with its figure), and
    what the derivative loss does where both lambdas were trained; their tables as CSV."""
    d = out / "tables"
    if not sensitivity.one_at_a_time(df):
        return Section([])
    steps = sensitivity.factor_steps(df, cell)
    if steps.empty:
        return Section([])
    order_t = sensitivity.order_table(t.comparisons, steps, list(KEY_METRICS))
    lam = sensitivity.lambda_table(df, list(KEY_METRICS), cell)
    if not order_t.empty:
        order_t.to_csv(d / "sensitivity_order.csv", index=False)
    if not lam.empty:
        lam.to_csv(d / "sensitivity_lambda.csv", index=False)
    lead = HEADLINE if set(HEADLINE) <= set(order) else None
    said = sensitivity.findings(order_t, lam, lead)
    figure = None
    if lead and not order_t.empty:
        a, b = lead
        rows = order_t[(order_t.a == a) & (order_t.b == b)]
        if not rows.empty:
            fig = plots.lead_figure(
                rows,
                [m for m in KEY_METRICS if m.endswith("_mse")],
                a,
                b,
                f"{b}'s lead over {a}, one factor away from the reference\n({tables.describe_cell(cell)})",
            )
            plots.save(fig, out / "figures" / "sensitivity_lead")
            figure = (
                f"Error ratio {a}/{b} (Hodges-Lehmann over seeds, exact 95% CI) in each cell one factor away from the "
                "reference; filled: significant (Holm over the pairs of the cell)",
                "figures/sensitivity_lead.png",
            )
    glance = [f for f in said if f[0].startswith(f"{lead[1]}'s lead")] if lead else []
    lines = [
        "## Sensitivity to the protocol",
        "",
        f"Each cell one factor away from another (its parent: the reference cell {tables.describe_cell(cell)}, or the "
        "cell that shares its derivative-loss weight or checkpoint): for every pair of activations and key metric, "
        "the verdict in the parent and in the cell (Wilcoxon over seeds, Holm over the pairs of the cell) and how "
        "it changed: kept, reversed, lost (significant in the parent only), gained (in the cell only), or "
        "inconclusive in both. `tables/sensitivity_order.csv` has every verdict, `tables/sensitivity_lambda.csv` "
        "the derivative loss's effect (error at lambda 1 over error at lambda 0, paired by seed) per cell.",
        "",
        *claims(said),
        *(_figures([figure]) if figure else [""]),
    ]
    if not order_t.empty:
        moved = order_t[order_t.change.isin(["reversed", "lost", "gained"])]
        lines += ["Verdicts that changed:", "", tables.to_markdown(moved) if len(moved) else "(none)", ""]
    if not lam.empty:
        lines += ["The derivative loss, lambda 1 against 0:", "", tables.to_markdown(lam), ""]
    return Section(lines, glance, figure)


def claims(pairs: list[tuple[str, list[str]]]) -> list[str]:
    """Findings as a nested list: the claim on its line, its scope and test on the lines below."""
    lines = []
    for claim, details in pairs:
        lines += [f"- {claim}", *[f"  - {d}" for d in details]]
    return lines


SMOOTHNESS_COLUMNS = [
    "metric",
    "deriv_weight",
    "blocks",
    "mean_rank_smooth",
    "mean_rank_rough",
    "p_exact",
    "cells_separated",
    "cells",
    "lowest_smooth",
    "best_rough",
]


def _zoo_section(df: pd.DataFrame, order: list[str], out: Path) -> Section:
    """Many activations against the incumbent (analysis.zoo): who beats it and where, where each
    lands, whether smoothness orders them; tables as CSV, the ratios as a figure."""
    if not zoo.applies(df):
        return Section([])
    axes = tables.cell_axes(df)
    versus = zoo.versus_table(df, order, GRID_MSE)
    if versus.empty:
        return Section([])
    summary = zoo.versus_summary(versus, GRID_MSE, df)
    ranks = zoo.ranks_table(df, GRID_MSE, order)
    smooth = zoo.smoothness_table(df, GRID_MSE)
    d = out / "tables"
    versus.to_csv(d / "zoo_versus.csv", index=False)
    summary.to_csv(d / "zoo_summary.csv", index=False)
    ranks.to_csv(d / "zoo_ranks.csv", index=False)
    if not smooth.empty:
        smooth.to_csv(d / "zoo_smoothness.csv", index=False)
    columns = "deriv_weight" if "deriv_weight" in axes else None
    n = versus.a.nunique()
    fig = plots.versus_figure(
        versus, GRID_MSE, order, zoo.INCUMBENT, columns, f"{n} activations against {zoo.INCUMBENT}, cell by cell"
    )
    plots.save(fig, out / "figures" / "zoo_versus")
    caption = (
        f"Each activation's error ratio to {zoo.INCUMBENT} per cell (Hodges-Lehmann estimate over seeds with its "
        "exact 95% CI; left of the dashed line: lower error than the incumbent)"
    )
    shown = summary.assign(
        ratio=tables.with_ci(summary.ratio_across_cells, summary.ratio_across_lo, summary.ratio_across_hi),
        metric=summary.metric.map(METRIC_LABELS),
    )
    said = zoo.findings(summary, ranks, smooth, axes, versus=versus)
    f_prime = METRIC_LABELS["grid_df_mse"]
    glance = [f for f in said if f[0].startswith(f"{f_prime}, over all cells")]
    glance += [f for f in said if f[0].startswith(f"{f_prime}: sine")]
    glance += [f for f in said if f[0].startswith(f"{f_prime}, all cells")]
    lines = [
        f"## Against {zoo.INCUMBENT}: {n} challengers",
        "",
        f"The seed report's winner, {zoo.INCUMBENT}, against each other activation, paired by seed in every cell: a "
        f"family of {n} pairs per cell (all {n + 1} activations' pairs would be {n * (n + 1) // 2}, too many for "
        f"Holm to reject in with {df.seed.nunique()} seeds). Smoothness: twice continuously differentiable or not, "
        "tested with the activations as the units (analysis/zoo.py). `tables/zoo_versus.csv` has every cell, "
        "`zoo_summary.csv` the counts and the ratios over cells, `zoo_ranks.csv` the ranks, "
        "`zoo_smoothness.csv` the smoothness test.",
        "",
        *claims(said),
        *_figures([(caption, "figures/zoo_versus.png")]),
        *(
            ["Smoothness, every metric and level:", "", tables.to_markdown(smooth[SMOOTHNESS_COLUMNS]), ""]
            if len(smooth)
            else []
        ),
        tables.to_markdown(
            shown,
            ["a", "metric", "cells", "a_better", "b_better", "not_significant", "ratio", "p_across_cells_holm"],
        ),
        "",
    ]
    return Section(lines, glance, (caption, "figures/zoo_versus.png"))


DATA_PROFILE_FACTORS = (1, 2, 3, 4)  # panels: validation loss down 10^k from its first epoch


def _data_profiles(source: Source, df: pd.DataFrame, order: list[str], out: Path) -> tuple[str, str]:
    curves = validation_curves(source, df)
    top = int(df.epochs.max())
    epochs = np.unique(np.concatenate([[1], np.geomspace(1, top, 120).round(), [top]]).astype(int))
    table = profiles.data_profiles(curves, dict(zip(df.run_id, df.activation)), DATA_PROFILE_FACTORS, epochs)
    table.to_csv(out / "tables" / "data_profiles.csv", index=False)
    fig = plots.data_profiles_figure(table, order, f"Data profiles of training ({len(curves)} runs, every cell pooled)")
    plots.save(fig, out / "figures" / "data_profiles")
    return (
        "Data profiles (Moré & Wild 2009): the share of each activation's runs whose validation loss has fallen by "
        "10^k from its first epoch within a number of epochs (every cell pooled; at stored epochs)",
        "figures/data_profiles.png",
    )


def _tuned_section(df: pd.DataFrame, tune: list[str], order: list[str], out: Path) -> Section:
    """Each activation at its own best setting of the tuned axes (analysis.tuning): the settings,
    the comparison on the evaluation seeds, and the expected best against the tuning budget."""
    selecting, evaluating = tuning.split_seeds(df.seed)
    settings = tuning.settings_table(df, tune)
    runs = tuning.tuned_runs(df, tune, settings)
    compared = tables.comparisons_table(runs, order)
    budget = tuning.budget_table(settings, tune)
    d = out / "tables"
    settings.to_csv(d / "tuning_settings.csv", index=False)
    compared.to_csv(d / "tuned_comparisons.csv", index=False)
    budget.to_csv(d / "tuning_budget.csv", index=False)
    names = ", ".join(tune)
    fig = plots.budget_figure(
        budget,
        order,
        f"Expected best validation loss against {names} settings tried (seeds {selecting[0]}-{selecting[-1]})",
    )
    plots.save(fig, out / "figures" / "tuning_budget")
    chosen = settings[settings.chosen].sort_values("activation", key=lambda a: a.map(order.index), kind="stable")
    lines = [
        f"## Tuned comparison ({names})",
        "",
        f"Each activation at its own best {names}: chosen by the median validation loss (MSE(f) + deriv_weight x "
        f"MSE(f')) over seeds {', '.join(map(str, selecting))} (selection), then compared paired by seed on seeds "
        f"{', '.join(map(str, evaluating))} (evaluation) at those settings; no evaluation run enters a selection. "
        f"Out of {settings.groupby('activation').size().max()} settings per activation. Comparisons as in Paired "
        "comparisons (Hodges-Lehmann ratio with its exact interval, Wilcoxon over the evaluation seeds, Holm over "
        "the pairs of a cell).",
        "",
        "Chosen settings:",
        "",
        tables.to_markdown(chosen.drop(columns=["chosen"])),
        "",
    ]
    caption = (
        f"Expected best validation loss against the number of {names} settings tried, per activation "
        "(drawn without replacement from those run; band: one standard deviation of the best of k)"
    )
    figure = (caption, "figures/tuning_budget.png")
    key = compared[compared.metric.isin(KEY_METRICS)] if not compared.empty else compared
    said = tuning.findings(key) if not key.empty else []
    lines += [*claims(said), *_figures([figure])]
    if not key.empty:
        lines += [tables.to_markdown(_pairs_shown(key)), ""]
    pair = _headline_pair(order)
    glance = [
        f for f in said if pair and f[0].startswith(f"Tuned, {METRIC_LABELS['val_df_mse']}: {pair[0]} vs {pair[1]}")
    ]
    glance += [
        f for f in said if pair and f[0].startswith(f"Tuned, {METRIC_LABELS['val_f_mse']}: {pair[0]} vs {pair[1]}")
    ]
    return Section(lines, glance, figure)


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


def _findings_section(found: dict) -> list[str]:
    lines = [
        "## Findings",
        "",
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


def _study_section(
    source: Source, df: pd.DataFrame, order: list[str], cell: dict, notes: list[str], versions: list[tuple[str, int]]
) -> list[str]:
    lines = ["## Study", "", f"- store: `{source.store.name}` ({len(df)} runs, protocol version {PROTOCOL_VERSION})"]
    for axis in [a for a in tables.varying_axes(df) if df[a].nunique() > 1]:
        values = order if axis == "activation" else sorted(df[axis].unique())
        lines.append(f"- varies **{axis}**: {', '.join(map(str, values))}")
    lines.append(f"- seeds: {df.seed.nunique()} ({df.seed.min()}-{df.seed.max()}); {stats.reach(df.seed.nunique())}")
    fixed = [c for c in CONFIG_FIELDS if c != "seed" and c not in tables.varying_axes(df)]
    lines.append("- fixed: " + ", ".join(f"{c}={df[c].iloc[0]}" for c in fixed))
    if cell:
        lines.append(f"- reference cell (the per-cell figures): {tables.describe_cell(cell)}")
    lines.append(
        f"- engines: {', '.join(sorted(df.engine.unique()))}; "
        f"total training time {df.wall_s.sum() / 60:.1f} min (summed over workers)"
    )
    lines += [f"- trained with: {v} ({n} runs)" for v, n in versions]
    lines.append(
        "- this report's baselines and statistics computed with: "
        + ", ".join(f"{k} {v}" for k, v in analysis_versions().items())
    )
    return lines + [f"- note: {n}" for n in notes]


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
        tables.to_markdown(reproduction.drop(columns=["n"])),
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
                tables.to_markdown(tables.compact_summary(summary, tables.cell_axes(df), metric)),
            ]
        return lines
    md_summary = summary[summary.metric.isin(KEY_METRICS)] if len(summary) > 40 else summary
    if md_summary is not summary:
        lines[-1] += " Key metrics shown; `tables/summary.csv` has all eight."
    columns = [c for c in summary.columns if c not in ("mean", "sd", "iqm_lo", "iqm_hi")]
    return lines + ["", tables.to_markdown(md_summary, columns)]


def _baselines_section(baseline_summary: pd.DataFrame) -> list[str]:
    return [
        "## Baselines",
        "",
        "Classical approximators fitted to the same training points of each seed's split and scored "
        "on the same validation split and dense grid (median over seeds with its order-statistic 95% CI). The "
        f"Chebyshev least-squares fit's degree is chosen per seed on the validation split by a rule "
        f"that no rounding-level difference between machines can flip: {DEGREE_RULE}. Its validation "
        "errors are therefore optimistic; its dense-grid errors are not. `tables/baselines.csv` has "
        "every seed.",
        "",
        tables.to_markdown(baseline_summary[baseline_summary.metric.isin(KEY_METRICS)]),
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
        tables.to_markdown(shown, columns),
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
        tables.to_markdown(refinement),
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
            tables.to_markdown(_compact_shown(tables.compact_comparisons(comparisons, [*GRID_MSE, "grid_df_max"], df))),
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
        tables.to_markdown(comparisons[comparisons.metric.isin(KEY_METRICS)]),
    ]


def _pairs_shown(c: pd.DataFrame) -> pd.DataFrame:
    """tables.comparisons_table narrowed for reading: each interval in one column with its estimate."""
    return pd.DataFrame(
        {
            "a": c.a,
            "b": c.b,
            "metric": c.metric,
            "pairs": c.n_pairs,
            "a lower": c.a_wins,
            "ratio a/b (95% CI)": tables.with_ci(c.ratio, c.ratio_lo, c.ratio_hi),
            "share a lower (95% CI)": [
                f"{v:.2f} ({lo:.2f}-{hi:.2f})" if np.isfinite(lo) else f"{v:.2f}"
                for v, lo, hi in zip(c.share_a_lower, c.share_lo, c.share_hi)
            ],
            "p (Holm)": c.p_holm,
            "favours": c.favours,
        }
    )


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
            "ratio across cells (95% CI)": tables.with_ci(c.ratio_across_cells, c.ratio_across_lo, c.ratio_across_hi),
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
        tables.to_markdown(ranking),
    ]
