"""'At a glance': the one figure and at most five findings a report leads with, chosen by a rule
that is stated beside them. Every renderer (report.md, the index) takes its lead from here.

The findings: the reproduction of the seed report where the study has it; the headline pair
(HEADLINE, else the first two activations) on f′ and f in the reference cell, where the seeds can
reject in its family, and over all cells; then the headline findings of the study's own section
(the precision frontier, against the incumbent, tuned, the floor or the protocol: the first that offers any). The figure:
the first of FIGURE_RULE that the report draws.
"""

from __future__ import annotations

import pandas as pd

from ..problem.hypothesis import DEFAULT_PRIMARY
from ..problem.vocabulary import GRID_MSE, METRIC_LABELS
from . import stats, tables
from .findings import FLOOR_FINDINGS, Finding, pair_sentence

HEADLINE_METRICS = ("grid_df_mse", "grid_f_mse")  # the primary, then the first other of these
HEADLINE = ("relu", "tanh")  # the seed report's pair; another study's first two activations otherwise
MOST = 5  # findings at a glance
DECLARED_FIRST = 3  # of them, at most this many declared hypotheses
FIGURE_RULE = (  # the figure at a glance: the first of these the report draws
    "frontier_f",
    "zoo_versus",
    "tuning_budget",
    "floor_gap",
    "sensitivity_lead",
    "ranking_targets",  # the ranking figure, where the study varies the target
    "heatmap_width_weight",
    "reproduction",
    "distributions",
)


def headline_pair(order: list[str]) -> tuple[str, str] | None:
    if set(HEADLINE) <= set(order):
        return HEADLINE
    return (order[0], order[1]) if len(order) >= 2 else None


def figure_stem(drawn: list[str], axes: list[str]) -> str | None:
    """The stem (file name) of the figure at a glance, of the figures a report drew."""
    aliases = {"ranking_targets": "ranking"} if "target" in axes else {}
    for stem in FIGURE_RULE:
        if aliases.get(stem, stem) in drawn:
            return aliases.get(stem, stem)
    return None


# What each study-specific section offers "At a glance", best first.


def zoo_offer(said: list[Finding]) -> list[Finding]:
    f_prime = METRIC_LABELS["grid_df_mse"]
    return [
        f
        for prefix in (f"{f_prime}, over all cells", f"{f_prime}: sine", f"{f_prime}, all cells")
        for f in said
        if f[0].startswith(prefix)
    ]


def tuned_offer(said: list[Finding], order: list[str]) -> list[Finding]:
    pair = headline_pair(order)
    if not pair:
        return []
    return [  # in each cell of the other axes, where the study has them (tuning.findings names it)
        f
        for metric in GRID_MSE[::-1]  # f′ (the default primary), then f
        for f in said
        if f[0].startswith("Tuned") and f", {METRIC_LABELS[metric]} (" in f[0] and f": {pair[0]} vs {pair[1]}:" in f[0]
    ] + [f for f in said if "edge of the searched range" in f[0]]


def floor_offer(found: dict[str, list[Finding]]) -> list[Finding]:
    """The spline match and the last regime's gap (findings.spline_match, floor_sentences)."""
    gap = found.get(FLOOR_FINDINGS, [])
    return [gap[-1], gap[-2]] if len(gap) > 1 else gap


def sensitivity_offer(said: list[Finding], lead: tuple[str, str] | None) -> list[Finding]:
    return [f for f in said if f[0].startswith(f"{lead[1]}'s lead")] if lead else []


def select(
    df: pd.DataFrame,
    reproduction: pd.DataFrame,
    comparisons: pd.DataFrame,
    cell: dict,
    order: list[str],
    found: dict[str, list[Finding]],
    offers: list[list[Finding]],
    tuned: bool,
    primary: str = DEFAULT_PRIMARY,
    declared: list[Finding] | None = None,
) -> tuple[list[Finding], str]:
    """The findings "At a glance" shows, and the rule that chose them (stated with them). offers:
    each study section's (study.study_results); tuned: the report compares the activations each
    at its own best setting (report --tune); primary: the study's primary metric; declared: the
    findings of its declared hypotheses, which lead."""
    own = next((x for x in offers if x), [])
    picked, rule = list((declared or [])[:DECLARED_FIRST]), []
    if picked:
        rule.append("the declared hypotheses (one family, Holm; confirmatory where declared before their runs)")
    if not reproduction.empty:
        picked.append(found[""][1])
        rule.append("the reproduction")
    pair = headline_pair(order)
    k, seeds = len(order), df[df.status == "ok"].seed.nunique()
    reachable = seeds >= 2 and stats.min_wilcoxon_p(seeds) * k * (k - 1) / 2 <= stats.ALPHA
    # Tuned, the reference cell is one setting of many; with many activations and few seeds the
    # all-pairs family cannot reject at all (the study's own section tests what it can).
    cannot = f"{seeds} seeds cannot reject among {k * (k - 1) // 2} pairs"
    if pair and not comparisons.empty and (tuned or (not reachable and own)):
        why = "the activations are tuned" if tuned else cannot
        rule.append(f"not the reference cell's {pair[0]} vs {pair[1]} ({why})")
    metrics = [primary, *[m for m in HEADLINE_METRICS if m != primary]][:2]
    on = f"on {METRIC_LABELS[metrics[0]]} (the primary metric) and {METRIC_LABELS[metrics[1]]}"
    if pair and not comparisons.empty and not tuned and not reachable and not own:  # its effect, said as inconclusive
        picked += _headline(comparisons, cell, pair, metrics)
        rule.append(f"{pair[0]} vs {pair[1]} {on} in the reference cell ({cannot}: the intervals say what is possible)")
    if pair and not comparisons.empty and not tuned and reachable:
        picked += _headline(comparisons, cell, pair, metrics)
        rule.append(f"{pair[0]} vs {pair[1]} {on} in the reference cell")
        if tables.cell_axes(df) and not own:
            prefix = f"{pair[0]} vs {pair[1]}, {METRIC_LABELS[metrics[0]]}"
            picked += [f for f in found.get("Across cells", []) if f[0].startswith(prefix)][:1]
            rule.append("the same pair over all cells on the primary metric")
    if not picked and not own:  # one activation: nothing to compare; what it ran and how close it got
        picked = [found[""][0], *found.get("Against the baselines", [])[:2]]
        rule.append("the runs, and the best network against the best baseline (one activation: no pair to compare)")
    if own:
        keep = max(MOST - len(picked), 2)
        picked = picked[: MOST - keep] + own[:keep]
        rule.append(
            "the headline findings of the study's own section (the frontier, against the incumbent, tuned, the floor or the protocol)"
        )
    return picked[:MOST], "; ".join(rule)


def _headline(comparisons: pd.DataFrame, cell: dict, pair: tuple[str, str], metrics: list[str]) -> list[Finding]:
    """The pair on the primary metric and one other in the reference cell, said as its sentence."""
    a, b = pair
    single = tables.select(comparisons, cell)
    rows = single[(single.a == a) & (single.b == b)]
    where = f"In the reference cell ({tables.describe_cell(cell)})" if cell else "Paired by seed"
    out = []
    for metric in metrics:
        r = rows[rows.metric == metric]
        if len(r):
            claim, details = pair_sentence(r.iloc[0])
            out.append(
                (f"{where}, {claim[0].lower()}{claim[1:]}" if claim[:1] == "F" else f"{where}, {claim}", details)
            )
    return out
