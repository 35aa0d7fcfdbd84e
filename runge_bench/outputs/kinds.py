"""The report sections of particular kinds of study, rendered from analysis.study's results: the
zoo (many activations against the incumbent), the sensitivity study (cells one factor away from
the reference) and the tuned comparison (report --tune). Their numbers and findings are computed
in analysis/ (zoo.py, sensitivity.py, tuning.py, gathered by study.py); their figures are drawn
by figures.py; this module only writes their text."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..analysis import frontier, tables, zoo
from ..analysis.baselines import report_floor
from ..analysis.study import StudyResults
from ..analysis.tables import sci
from ..analysis.tuning import SPLIT_SEED, share
from ..problem.vocabulary import METRIC_LABELS
from .figures import Figure
from .markdown import claims, figures, to_markdown, with_ci


def sensitivity_section(r: StudyResults, figure: Figure | None) -> list[str]:
    """Whether each verdict survives each factor, the headline pair's lead (with its figure), and
    what the derivative loss does where both lambdas were trained."""
    s = r.sensitivity
    if s is None:
        return []
    lines = [
        "## Sensitivity to the protocol",
        "",
        f"Each cell one factor away from another (its parent: the reference cell {tables.describe_cell(r.cell)}, or "
        "the cell that shares its derivative-loss weight or checkpoint): for every pair of activations and key "
        "metric, the verdict in the parent and in the cell (Wilcoxon over seeds, Holm over the pairs of the cell) "
        "and how it changed: kept, reversed, lost (significant in the parent only), gained (in the cell only), or "
        "inconclusive in both. `tables/sensitivity_order.csv` has every verdict, `tables/sensitivity_lambda.csv` "
        "the derivative loss's effect (error at lambda 1 over error at lambda 0, paired by seed) per cell.",
        "",
        *claims(s.findings),
        *(figures([figure]) if figure else [""]),
    ]
    if not s.order.empty:
        moved = s.order[s.order.change.isin(["reversed", "lost", "gained"])]
        lines += ["Verdicts that changed:", "", to_markdown(moved) if len(moved) else "(none)", ""]
    if not s.lam.empty:
        lines += ["The derivative loss, lambda 1 against 0:", "", to_markdown(s.lam), ""]
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


def zoo_section(r: StudyResults, figure: Figure | None) -> list[str]:
    """Who beats the incumbent and where, where each lands, whether smoothness orders them."""
    z = r.zoo
    if z is None:
        return []
    n = z.versus.a.nunique()
    shown = z.summary.assign(
        ratio=with_ci(z.summary.ratio_across_cells, z.summary.ratio_across_lo, z.summary.ratio_across_hi),
        metric=z.summary.metric.map(METRIC_LABELS),
    )
    smooth = z.smoothness
    return [
        f"## Against {zoo.INCUMBENT}: {n} challengers",
        "",
        f"The seed report's winner, {zoo.INCUMBENT}, against each other activation, paired by seed in every cell: a "
        f"family of {n} pairs per cell (all {n + 1} activations' pairs would be {n * (n + 1) // 2}, too many for "
        f"Holm to reject in with {r.runs.seed.nunique()} seeds). Smoothness: twice continuously differentiable or "
        "not, tested with the activations as the units (analysis/zoo.py). `tables/zoo_versus.csv` has every cell, "
        "`zoo_summary.csv` the counts and the ratios over cells, `zoo_ranks.csv` the ranks, "
        "`zoo_smoothness.csv` the smoothness test.",
        "",
        *claims(z.findings),
        *(figures([figure]) if figure else []),
        *(
            ["Smoothness, every metric and level:", "", to_markdown(smooth[SMOOTHNESS_COLUMNS]), ""]
            if len(smooth)
            else []
        ),
        to_markdown(
            shown,
            ["a", "metric", "cells", "a_better", "b_better", "not_significant", "ratio", "p_across_cells_holm"],
        ),
        "",
    ]


def tuned_section(r: StudyResults, figure: Figure | None) -> list[str]:
    """Each activation at its own best setting: the settings, the comparison on the evaluation
    seeds, and the expected best against the tuning budget."""
    tu = r.tuned
    if tu is None:
        return []
    names = ", ".join(tu.axes)
    lines = [
        f"## Tuned comparison ({names})",
        "",
        f"Each activation at its own best {names}: chosen by the median validation loss (MSE(f) + deriv_weight x "
        f"MSE(f')) over seeds {', '.join(map(str, tu.selecting))} (selection), then compared paired by seed on seeds "
        f"{', '.join(map(str, tu.evaluating))} (evaluation) at those settings; no evaluation run enters a selection. "
        f"Out of {tu.settings.groupby('activation').size().max()} settings per activation. Comparisons as in Paired "
        "comparisons (Hodges-Lehmann ratio with its exact interval, Wilcoxon over the evaluation seeds, Holm over "
        "the pairs of a cell).",
        "",
        f"One split is one draw of which seeds select, and that can decide a finding: the selection and the "
        f"comparison are repeated over {tu.splits.n} random splits of the seeds into halves (drawn from seed "
        f"{SPLIT_SEED}). Each finding says in what share of them it holds (significant, Holm over the cell's "
        "pairs); its pooled ratio is the median of the splits' estimates on the log scale, with a standard error "
        "that adds their spread around it to each split's own (as in repeated cross-fitting, Chernozhukov et al. "
        "2018): the splits share their runs, so no test treats them as independent. A chosen setting at the "
        "lowest or highest value searched is flagged (`edge`). Metrics: the dense grid's MSE of f′ (the primary) "
        "and of f (secondary); `tables/tuned_comparisons.csv` has every metric of the first split, "
        "`tables/tuning_splits.csv` every pair of every split's summary.",
        "",
        "Chosen settings (first split):",
        "",
        to_markdown(tu.chosen.drop(columns=["chosen"])),
        "",
        f"How often each setting is chosen over the {tu.splits.n} splits:",
        "",
        to_markdown(_choice_summary(tu)),
        "",
        *claims(tu.findings),
        *(figures([figure]) if figure else []),
    ]
    if not tu.key.empty:
        lines += [to_markdown(pairs_shown(tu.key)), ""]
    return lines


def _choice_summary(tu) -> pd.DataFrame:
    """Per activation (and cell of the other axes), the settings chosen over the splits, most often
    first: "value (share)", at most five, the rest counted."""
    keys = [c for c in tu.splits.choices.columns if c not in (*tu.axes, "splits", "share", "edge")]
    rows = []
    for key, g in tu.splits.choices.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        said = [
            f"{', '.join(sci(getattr(r, a)) for a in tu.axes)} ({share(r.share)}{', edge' if r.edge else ''})"
            for r in g.head(5).itertuples()
        ]
        if len(g) > 5:
            said.append(f"{len(g) - 5} more ({share(g.share.iloc[5:].sum())})")
        rows.append({**dict(zip(keys, key)), "chosen in the splits": "; ".join(said)})
    return pd.DataFrame(rows)


def pairs_shown(c: pd.DataFrame) -> pd.DataFrame:
    """tables.comparisons_table narrowed for reading: each interval in one column with its estimate."""
    return pd.DataFrame(
        {
            "a": c.a,
            "b": c.b,
            "metric": c.metric,
            "pairs": c.n_pairs,
            "a lower": c.a_wins,
            "ratio a/b (95% CI)": with_ci(c.ratio, c.ratio_lo, c.ratio_hi),
            "share a lower (95% CI)": [
                f"{v:.2f} ({lo:.2f}-{hi:.2f})" if np.isfinite(lo) else f"{v:.2f}"
                for v, lo, hi in zip(c.share_a_lower, c.share_lo, c.share_hi)
            ],
            "p (Holm)": c.p_holm,
            "favours": c.favours,
        }
    )


def _reach_table(fewest: pd.DataFrame, by: list[str], floored: bool = False) -> pd.DataFrame:
    """fewest (long by metric) as one row per group: the parameters reaching each threshold of f
    and of f′ ("—": none of the sizes tried), and the lowest median reached."""
    rows = []
    for key, g in fewest.groupby(by, sort=False):
        row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        for r in g.itertuples():
            short = "f" if r.metric == "grid_f_max" else "f′"
            for t in frontier.THRESHOLDS[r.metric]:
                v = g.loc[r.Index, f"le_{t:g}"]
                below = floored and t < report_floor(r.metric)  # rounding there: not told apart
                row[f"{short} ≤ {t:g}"] = "below the floor" if below else "—" if pd.isna(v) else f"{int(v):,}"
            floor = "≤ " if floored and r.best <= report_floor(r.metric) else ""
            row[f"best {short}"] = f"{floor}{sci(r.best)} ({r.best_params:,})"
        rows.append(row)
    return pd.DataFrame(rows)


def frontier_section(r: StudyResults, drawn: list[Figure]) -> list[str]:
    """The fewest parameters reaching each precision, per activation and method and for the
    classical methods, the gap to the best classical method, and the goal."""
    fr = r.frontier
    if fr is None:
        return []
    worker_min = float(r.runs.wall_s.fillna(0).sum()) / 60
    return [
        "## The precision frontier",
        "",
        "How many parameters a network needs to reach each max error on the dense grid, per activation and method "
        "(the optimizer, and the number of stages: each later stage fits the scaled residual of the others, "
        "engine/stages.py), beside the classical methods at their own number of coefficients: Chebyshev least "
        "squares of every degree, AAA after every greedy step (3 numbers a term), Floater-Hormann through every "
        "training point. A threshold is reached by the fewest parameters (all stages counted) whose median over "
        "seeds is at or below it; errors below the reporting floor (f max 1e-10, f′ max 1e-7) are rounding and "
        "count as the floor on both sides. The gaps pair the best network cell with the best classical method "
        "seed by seed (Wilcoxon, Holm over the table): exploratory, since no hypothesis about them was declared "
        f"before the runs. Training took {worker_min:.3g} worker-minutes (the runs' wall times summed). "
        "`tables/frontier_cells.csv`, `frontier.csv`, `frontier_classical.csv` and `frontier_gaps.csv` have "
        "every number.",
        "",
        *claims(fr.findings),
        *figures(drawn),
        "Fewest parameters reaching each max error (dense grid), networks:",
        "",
        to_markdown(_reach_table(fr.fewest, [*frontier.CONDITION, "activation", "method"])),
        "",
        "The same for the classical methods:",
        "",
        to_markdown(_reach_table(fr.classical_fewest, [*frontier.CONDITION, "method"], floored=True)),
        "",
        "The gap to the best classical method (ratio network/classical, Hodges-Lehmann with its exact 95% CI):",
        "",
        to_markdown(_gaps_shown(fr.gaps), GAP_COLUMNS),
        "",
    ]


GAP_COLUMNS = [
    *frontier.CONDITION,
    "metric",
    "activation",
    "method",
    "width",
    "network_median",
    "baseline",
    "baseline_median",
    "ratio",
    "share_network_lower",
    "p_holm",
]


def _gaps_shown(gaps: pd.DataFrame) -> pd.DataFrame:
    """The gap table as the report prints it: medians at the floor as "≤ floor", ratios with CIs."""
    floored = lambda col: [f"≤ {v:.3g}" if v <= report_floor(m) else sci(v) for v, m in zip(col, gaps.metric)]
    return gaps.assign(
        metric=gaps.metric.map(METRIC_LABELS),
        ratio=with_ci(gaps.ratio, gaps.ratio_lo, gaps.ratio_hi),
        baseline=gaps.baseline.str.split(",").str[0],
        network_median=floored(gaps.network_median),
        baseline_median=floored(gaps.baseline_median),
    )
