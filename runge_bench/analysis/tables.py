"""Runs DataFrame -> statistical tables (pandas); outputs/ renders them (markdown.py, latex.py).

Every table is computed from the `ok` runs only; diverged and failed runs are counted per group
and excluded from the statistics (the report says so). Bootstrap seeds derive from the group's
key, so a store always gives the same tables, byte for byte.
"""

from __future__ import annotations

import itertools
import math
import zlib

import numpy as np
import pandas as pd
from scipy import stats as st

from ..problem.activations import activation_order
from ..problem.config import CONFIG_FIELDS, SEED_PROTOCOL
from ..problem.published import PUBLISHED, metric_column
from ..problem.vocabulary import FLOOR_METRICS, METRICS, NUMERIC_AXES, REFINE_ITERS, SPLIT_FIELDS
from ..runs.loading import frame_value, select
from . import stats

# The seed report's protocol as the runs frame holds it (batch_size "full").
FRAME_SEED_PROTOCOL = {k: frame_value(k, v) for k, v in SEED_PROTOCOL.items()}


def _canonical(value: object) -> str:
    """A value as text that no library version prints differently: numpy scalars as the Python
    values they hold, floats by repr (shortest round-trip), tuples element by element."""
    if isinstance(value, (tuple, list)):
        return "(" + ",".join(_canonical(v) for v in value) + ")"
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return repr(float(value))
    return str(value)


def _seed(*key) -> int:
    """A bootstrap's seed from its group's key, the same under any numpy (numpy 2 prints its
    scalars as np.float64(1.0), numpy 1 as 1.0: a repr of the key gave other seeds)."""
    return zlib.crc32(_canonical(key).encode())


def varying_axes(df: pd.DataFrame) -> list[str]:
    """Activation (always: tables and figures are per activation), then the other config fields
    but seed that take more than one value, except an iteration count that the other axes
    determine: a study of [[case]]s varies lbfgs_iters only with optimizer, and a cell is named by
    the optimizer alone. (Other fields that vary together, dtype and optimizer, both stay: a cell
    named by both says what it is.)"""
    varying = [c for c in CONFIG_FIELDS if c not in ("seed", "activation") and df[c].nunique(dropna=False) > 1]
    for c in [c for c in ("lm_iters", "lbfgs_iters", "gn_iters") if c in varying]:
        others = [o for o in varying if o != c]
        if others and df.groupby(others, dropna=False)[c].nunique(dropna=False).max() == 1:
            varying.remove(c)
    return ["activation"] + varying


def cell_axes(df: pd.DataFrame) -> list[str]:
    """The varying axes that define a cell (everything but activation)."""
    return [a for a in varying_axes(df) if a != "activation"]


def reference_cell(df: pd.DataFrame) -> dict:
    """The cell used for the per-cell figures, one that has runs. Axis by axis, the preferred
    value is the seed protocol's where the study has it, else the axis's most common (ties:
    smallest). When that combination has no runs (a study of [[case]]s that vary two keys
    together, part of a grid), the existing cell that agrees with it on the most axes, then has
    the most ok runs, then the smallest values."""
    axes = cell_axes(df)
    preferred = {}
    for axis in axes:
        values = df[axis]
        want = FRAME_SEED_PROTOCOL.get(axis)
        preferred[axis] = want if want in set(values) else values.value_counts().sort_index().idxmax()
    if not axes or not select(df, preferred).empty:
        return preferred
    ok = (df.status == "ok").rename("ok")
    cells = pd.concat([df[axes], ok], axis=1).groupby(axes, sort=True, dropna=False)["ok"].sum()
    key = lambda item: (-sum(v == preferred[a] for a, v in zip(axes, item[0])), -item[1])
    best, _ = min(((k if isinstance(k, tuple) else (k,), n) for k, n in cells.items()), key=key)
    return dict(zip(axes, best))


def describe_cell(cell: dict) -> str:
    """A cell as text, e.g. "width=16, deriv_weight=0.0"; "all runs" for the empty cell."""
    return ", ".join(f"{k}={v}" for k, v in cell.items()) or "all runs"


def _groups(df: pd.DataFrame, keys: list[str]):
    if not keys:
        yield (), df
        return
    for key, g in df.groupby(keys, sort=True, dropna=False):
        yield (key if isinstance(key, tuple) else (key,)), g


def summary_table(df: pd.DataFrame) -> pd.DataFrame:
    """Per group of the varying axes and per metric: counts, median with its order-statistic 95% CI
    (and that CI's exact coverage), IQM with a 95% bootstrap CI, mean, sd."""
    keys = varying_axes(df)
    rows = []
    for key, g in _groups(df, keys):
        ok = g[g.status == "ok"]
        for metric in METRICS:
            x = np.sort(ok[metric].to_numpy(float))  # sums in one order, whatever the rows' order
            seed = _seed(key, metric)
            med_ci = stats.median_ci(x)
            iqm_ci = stats.bootstrap_ci(x, stats.iqm, seed=seed + 1)
            rows.append(
                {
                    **dict(zip(keys, key)),
                    "metric": metric,
                    "n_ok": len(x),
                    "n_diverged": int((g.status == "diverged").sum()),
                    "n_failed": int((g.status == "failed").sum()),
                    "median": float(np.median(x)) if len(x) else np.nan,
                    "median_lo": med_ci[0],
                    "median_hi": med_ci[1],
                    "median_coverage": med_ci[2],
                    "iqm": float(stats.iqm(x)) if len(x) else np.nan,
                    "iqm_lo": iqm_ci[0],
                    "iqm_hi": iqm_ci[1],
                    "mean": float(np.mean(x)) if len(x) else np.nan,
                    "sd": float(np.std(x, ddof=1)) if len(x) > 1 else np.nan,
                }
            )
    return pd.DataFrame(rows)


def comparisons_table(df: pd.DataFrame, order: list[str] | None = None, against: str | None = None) -> pd.DataFrame:
    """Activations compared pairwise within each cell, paired by seed, for every metric.

    order: the activations' order, which decides each pair's a and b (a comes first); registry
    order (problem.activations.activation_order) by default, never the rows' order.
    against: compare every other activation with this one only (a = the other, b = `against`): a
    many-to-one family, len(activations) - 1 pairs per cell instead of all of them, which few
    seeds can still reject in ("does any activation beat Tanh?" with nine activations).

    p_holm is Holm-corrected within the family of one cell and one metric (the pairs of
    activations there: "which activation is best in this cell?"); whether an advantage holds
    across cells is tested by compact_comparisons. The test runs on log(error(a)) - log(error(b))
    per seed (stats.paired_test); ratios and the share of seeds where a is lower refer to errors,
    so below 1 and above 0.5 favour a. `favours` is the side the test statistic points to.
    """
    axes = cell_axes(df)
    order = order if order is not None else activation_order(df.activation)
    rows = []
    for key, g in _groups(df[df.status == "ok"], axes):
        acts = [a for a in order if a in set(g.activation)]
        if against is None:
            pairs = list(itertools.combinations(acts, 2))
        else:
            pairs = [(a, against) for a in acts if a != against] if against in acts else []
        rows += [{**dict(zip(axes, key)), **row} for row in _pair_rows(g, pairs)]
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["p_holm"] = np.nan
    family = [*axes, "metric"]
    for _, idx in out.groupby(family if len(family) > 1 else family[0], sort=False).groups.items():
        out.loc[idx, "p_holm"] = stats.holm(out.loc[idx, "p_wilcoxon"].to_numpy(float))
    # The report-wide family: every pair of every cell and metric, false discovery rate controlled.
    out["p_bh"] = stats.benjamini_hochberg(out["p_wilcoxon"].to_numpy(float))
    out["p_by"] = stats.benjamini_yekutieli(out["p_wilcoxon"].to_numpy(float))  # any dependence
    return out[[*axes, *COMPARISON_COLUMNS]]


COMPARISON_COLUMNS = [  # comparisons_table's, after the cell's axes
    "metric",
    "a",
    "b",
    "n_pairs",
    "a_wins",
    "ties",
    "median_ratio",
    "ratio",
    "ratio_lo",
    "ratio_hi",
    "detectable_ratio",
    "share_a_lower",
    "share_lo",
    "share_hi",
    "favours",
    "p_wilcoxon",
    "p_holm",
    "p_bh",
    "p_by",
    "note",
]


def _pair_rows(g: pd.DataFrame, pairs: list[tuple[str, str]]) -> list[dict]:
    """The paired tests of one cell's ok runs `g`, every pair and metric (Holm's family: the pairs
    of this cell and metric, len(pairs) of them)."""
    rows = []
    for a, b in pairs:
        pa = g[g.activation == a].set_index("seed")
        pb = g[g.activation == b].set_index("seed")
        seeds = sorted(set(pa.index) & set(pb.index))
        mixed = engines_differ(g, a, b)
        for metric in METRICS:
            xa, xb = pa.loc[seeds, metric].to_numpy(float), pb.loc[seeds, metric].to_numpy(float)
            t = stats.paired_test(xa, xb)
            rows.append(
                {
                    "metric": metric,
                    "a": a,
                    "b": b,
                    "n_pairs": t.n_pairs,
                    "a_wins": t.a_wins,
                    "ties": t.ties,
                    "median_ratio": t.median_ratio,
                    "ratio": t.ratio,
                    "ratio_lo": t.ratio_ci[0],
                    "ratio_hi": t.ratio_ci[1],
                    "detectable_ratio": stats.detectable_ratio(xa, xb, len(pairs)),
                    "share_a_lower": t.share,
                    "share_lo": t.share_ci[0],
                    "share_hi": t.share_ci[1],
                    "favours": t.favours,
                    "p_wilcoxon": t.p_value,
                    "note": "; ".join(n for n in (t.note, mixed) if n),
                }
            )
    return rows


def engines_of(df: pd.DataFrame) -> dict[str, str]:
    """activation -> the engine(s) its runs were trained by ("batched+native", or several joined
    by ", "), in the order of the rows' activations."""
    if "engine" not in df:
        return {}
    return {a: ", ".join(sorted(set(g.engine))) for a, g in df.groupby("activation", sort=False)}


def engines_differ(g: pd.DataFrame, a: str, b: str) -> str:
    """A note marking a comparison of activations whose runs different engines trained (the
    comparison then carries the engines' difference too), else ""."""
    engines = engines_of(g[g.activation.isin([a, b])])
    if len(engines) < 2 or engines[a] == engines[b]:
        return ""
    return f"engines differ: {a} {engines[a]}, {b} {engines[b]}"


def axis_steps(df: pd.DataFrame, axis: str, reference: object) -> list[tuple[object, object]]:
    """The (from, to) levels an axis is tested at: every level below the reference level against
    it, and the reference against every level above, always from the lower level to the higher."""
    levels = sorted(df[axis].unique())
    return [(lo, reference) for lo in levels if lo < reference] + [(reference, hi) for hi in levels if hi > reference]


def axis_effects_table(df: pd.DataFrame, cell: dict, metrics: list[str]) -> pd.DataFrame:
    """What moving one numeric axis does, per activation and at every level of the other axes.

    For each numeric cell axis, each step of axis_steps (around the reference cell's level), each
    activation and each cell of the other axes: runs at the two levels paired by seed (the same
    seed gives the same split and the same initialisation seed whatever the level), the paired
    test on log(error(to)) - log(error(from)). p_holm is Holm-corrected over the cells of the other
    axes (a claim about a step is a claim about all of them). ratio = error(to) / error(from).
    """
    ok = df[df.status == "ok"]
    axes = cell_axes(df)
    rows = []
    for axis in [a for a in axes if a in NUMERIC_AXES]:
        others = [a for a in axes if a != axis]
        for lo, hi in axis_steps(df, axis, cell[axis]):
            for key, g in _groups(ok, ["activation", *others]):
                at_lo = g[g[axis] == lo].set_index("seed")
                at_hi = g[g[axis] == hi].set_index("seed")
                seeds = sorted(set(at_lo.index) & set(at_hi.index))
                if not seeds:  # this cell of the other axes lacks one of the two levels: no step here
                    continue
                for metric in metrics:
                    t = stats.paired_test(
                        at_hi.loc[seeds, metric].to_numpy(float),
                        at_lo.loc[seeds, metric].to_numpy(float),
                    )
                    rows.append(
                        {
                            "axis": axis,
                            "from": lo,
                            "to": hi,
                            **dict(zip(["activation", *others], key)),
                            "others": ", ".join(others),
                            "metric": metric,
                            "n_pairs": t.n_pairs,
                            "to_lower": t.a_wins,
                            "ties": t.ties,
                            "median_ratio": t.median_ratio,
                            "ratio": t.ratio,
                            "ratio_lo": t.ratio_ci[0],
                            "ratio_hi": t.ratio_ci[1],
                            "favours": {"a": "to", "b": "from"}.get(t.favours, ""),
                            "p_wilcoxon": t.p_value,
                            "note": t.note,
                        }
                    )
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    for c in ("width", "depth", "epochs", "n_points"):  # an axis's own rows leave its column empty
        if c in out:
            out[c] = out[c].astype("Int64")
    out["p_holm"] = np.nan
    for _, idx in out.groupby(["axis", "from", "to", "activation", "metric"], sort=False).groups.items():
        out.loc[idx, "p_holm"] = stats.holm(out.loc[idx, "p_wilcoxon"].to_numpy(float))
    out["p_bh"] = stats.benjamini_hochberg(out["p_wilcoxon"].to_numpy(float))  # every step of the report
    return out


def ranking_table(df: pd.DataFrame, order: list[str] | None = None) -> pd.DataFrame:
    """With three or more activations: per metric, Friedman's test and mean ranks, the blocks being
    the cells of the other axes (or the seeds, when there is only one cell); each block's score
    is the median over seeds. Empty with fewer than three activations. order: the activations'
    order in the table (registry order by default, never the rows').

    Which pairs the ranking separates is not read off the Nemenyi critical difference (mean-rank
    post-hoc tests depend on which other methods are compared; Benavoli, Corani & Mangili 2016):
    each pair is tested on its own, with the seeds as units (seed_log_ratios: per seed, the log
    ratio averaged over the cells), by the Wilcoxon signed-rank test, Holm over the metric's pairs.
    `lower_than` lists, per activation, those it is separated from and below (by rank and by the
    test's direction); the CD stays as a picture of the order."""
    ok = df[df.status == "ok"]
    acts = [a for a in (order if order is not None else activation_order(df.activation)) if a in set(ok.activation)]
    if len(acts) < 3:  # an activation without an ok run has no rank: it is left out (the report says so)
        return pd.DataFrame()
    axes = cell_axes(df)
    block_keys = axes if axes else ["seed"]
    rows = []
    indexed = by_cell_and_seed(df)
    for metric in METRICS:
        table = ok.pivot_table(index=block_keys, columns="activation", values=metric, aggfunc="median")
        table = table[acts].dropna()
        if len(table) < 2:
            continue
        r = stats.friedman(table.to_numpy(), acts)
        lower_than = _separations(indexed, acts, dict(zip(r.methods, r.mean_ranks)), metric)
        for act, rank in zip(r.methods, r.mean_ranks):
            rows.append(
                {
                    "metric": metric,
                    "activation": act,
                    "mean_rank": rank,
                    "n_blocks": r.n_blocks,
                    "blocks": "+".join(block_keys),
                    "friedman_chi2": r.statistic,
                    "friedman_p": r.p_value,
                    "nemenyi_cd": r.critical_difference,
                    "lower_than": " ".join(lower_than[act]),
                }
            )
    return pd.DataFrame(rows)


def _separations(indexed: pd.DataFrame, acts: list[str], ranks: dict[str, float], metric: str) -> dict[str, list[str]]:
    """activation -> the activations it is separated from and ranked below: the pairwise Wilcoxon
    test over seeds rejects (Holm over the metric's pairs) in the direction of the ranks.
    indexed: by_cell_and_seed of the runs."""
    pairs = list(itertools.combinations(acts, 2))
    p, favours = [], []
    for a, b in pairs:
        d = indexed_log_ratios(indexed, a, b, metric)
        reachable = len(d) > 0 and stats.min_wilcoxon_p(len(d)) <= stats.ALPHA and np.any(d != 0)
        p.append(float(st.wilcoxon(d).pvalue) if reachable else np.nan)
        favours.append(a if np.median(d) < 0 else b if np.median(d) > 0 else "")
    p_holm = stats.holm(np.array(p, float))
    out: dict[str, list[str]] = {act: [] for act in acts}
    for (a, b), q, lower in zip(pairs, p_holm, favours):
        better, worse = (a, b) if ranks[a] < ranks[b] else (b, a)
        if q < stats.ALPHA and lower == better:
            out[better].append(worse)
    return out


def seed_protocol_runs(df: pd.DataFrame) -> pd.DataFrame:
    """The ok runs that follow the seed report's protocol (any activation, any seed)."""
    ok = df[df.status == "ok"]
    mask = np.ones(len(ok), bool)
    for k, v in FRAME_SEED_PROTOCOL.items():
        mask &= (ok[k] == v).to_numpy()
    return ok[mask]


def separated_pairs(
    ranking: pd.DataFrame, metric: str
) -> tuple[list[str], list[float], float, list[tuple[str, str, bool]]]:
    """One metric's ranking (ranking_table rows): activations in mean-rank order, their ranks, the
    Nemenyi CD, and every pair (better, worse, separated) with separated = the pairwise test
    separates them (ranking_table's `lower_than`)."""
    r = ranking[ranking.metric == metric].sort_values("mean_rank", kind="stable")
    acts, ranks = list(r.activation), list(r.mean_rank)
    cd = float(r.nemenyi_cd.iloc[0]) if len(r) else float("nan")
    below = {a: set(str(v).split()) for a, v in zip(r.activation, r.lower_than.fillna(""))}
    pairs = [(acts[i], acts[j], acts[j] in below[acts[i]]) for i in range(len(acts)) for j in range(i + 1, len(acts))]
    return acts, ranks, cd, pairs


def borderline_pairs(ranking: pd.DataFrame, metric: str) -> list[tuple[str, str]]:
    """The pairs whose mean ranks lie within one rank step (1 / blocks) of the Nemenyi CD: whether
    the CD separates them turns on one block."""
    r = ranking[ranking.metric == metric].sort_values("mean_rank", kind="stable")
    if r.empty:
        return []
    acts, ranks = list(r.activation), list(r.mean_rank)
    cd, step = float(r.nemenyi_cd.iloc[0]), 1.0 / float(r.n_blocks.iloc[0])
    return [
        (acts[i], acts[j])
        for i in range(len(acts))
        for j in range(i + 1, len(acts))
        if abs((ranks[j] - ranks[i]) - cd) < step
    ]


def reproduction_table(df: pd.DataFrame) -> pd.DataFrame:
    """The seed report's eight published numbers against our seed distribution of the same
    protocol. Empty when the store holds no seed-protocol runs."""
    proto = seed_protocol_runs(df)
    rows = []
    for (act, quantity, metric), published in PUBLISHED.items():
        x = proto.loc[proto.activation == act, metric_column(quantity, metric)].to_numpy(float)
        if len(x) == 0:
            continue
        lo, hi, _ = stats.median_ci(x)
        p05, p95 = np.percentile(x, [5, 95])
        verdict = "inside" if p05 <= published <= p95 else ("below" if published < p05 else "above")
        rows.append(
            {
                "activation": act,
                "quantity": quantity,
                "metric": metric,
                "published": published,
                "n": len(x),
                "median": float(np.median(x)),
                "ci_low": lo,
                "ci_high": hi,
                "p05": float(p05),
                "p95": float(p95),
                "percentile": stats.percentile_of(x, published),
                "verdict": verdict,
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- numbers as text


def sci(x: float | int | str | None, digits: int = 3) -> str:
    """A readable number: 3 significant figures, scientific outside [1e-3, 1e4)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, (int, np.integer, str)):
        return str(x)
    if x != 0 and not 1e-3 <= abs(x) < 1e4:
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}"


def baseline_keys(frame: pd.DataFrame) -> list[str]:
    """What a baseline is fitted per: the target, and each split field (vocabulary.SPLIT_FIELDS)
    that the study varies, as the columns of `frame` (a runs frame, or a baselines table) show."""
    return ["target", *[a for a in SPLIT_FIELDS if a in frame.columns and frame[a].nunique() > 1]]


def baseline_summary(baselines: pd.DataFrame) -> pd.DataFrame:
    """Per target (and split, where the study varies it), baseline and metric: n seeds, median with
    its order-statistic 95% CI, parameter count."""
    keys = baseline_keys(baselines)
    rows = []
    for values, g in baselines.groupby([*keys, "baseline"], sort=False):
        *key, name = values
        params = g.n_params.dropna()  # a fit not reported (not reproducible to rounding) has none
        for metric in METRICS:
            x = g[metric].to_numpy(float)
            x = x[~np.isnan(x)]  # the seeds whose fit is reported
            lo, hi, _ = stats.median_ci(x)
            rows.append(
                {
                    **dict(zip(keys, key)),
                    "baseline": name,
                    "n_params": int(params.median()) if len(params) else np.nan,
                    "metric": metric,
                    "n": len(x),
                    "median": float(np.median(x)) if len(x) else np.nan,
                    "median_lo": lo,
                    "median_hi": hi,
                }
            )
    return pd.DataFrame(rows)


def best_baselines(baseline_summary: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per target (and split), the baseline with the lowest median of a metric: the keys,
    baseline, median."""
    keys = baseline_keys(baseline_summary)
    b = baseline_summary[baseline_summary.metric == metric]
    return b.loc[b.groupby(keys, sort=False)["median"].idxmin(), [*keys, "baseline", "median"]]


def cell_rankings(df: pd.DataFrame, metrics: list[str], order: list[str] | None = None) -> pd.DataFrame:
    """ranking_table within every cell, the seeds as blocks: which activation is best here, and
    which differences the Nemenyi CD separates. Rows carry their cell's axes."""
    axes = cell_axes(df)
    if not axes:
        return pd.DataFrame()
    parts = []
    for key, g in _groups(df, axes):
        r = ranking_table(g, order)  # nothing varies within a cell but activation and seed: seeds are the blocks
        if not r.empty:
            parts.append(r[r.metric.isin(metrics)].assign(**dict(zip(axes, key))))
    if not parts:
        return pd.DataFrame()
    out = pd.concat(parts, ignore_index=True)
    return out[[*axes, *[c for c in out.columns if c not in axes]]]


def floor_table(df: pd.DataFrame, summary: pd.DataFrame, baselines: pd.DataFrame, bsum: pd.DataFrame) -> pd.DataFrame:
    """Per cell, activation and dense-grid metric: the network's median over seeds against the
    classical floor, the best baseline's median on the same target (ratio = network / baseline),
    and against the cubic spline (which uses f alone, as a network trained with lambda = 0 could),
    paired seed by seed on the same split: the median of the per-seed ratios, the share of seeds
    where the network is lower, and the two-sided Wilcoxon p on the log ratios. bsum:
    baseline_summary(baselines)."""
    axes = varying_axes(df)
    keys = baseline_keys(baselines)
    ok = df[df.status == "ok"]
    rows = []
    for metric in FLOOR_METRICS:
        best = best_baselines(bsum, metric).set_index(keys)
        s = summary[summary.metric == metric]
        for r in s.itertuples():
            key = {a: getattr(r, a) for a in axes}
            fitted = {k: key.get(k, df[k].iloc[0]) for k in keys}  # the baselines of this cell's target and split
            runs = select(ok, key).set_index("seed")[metric]
            spline = select(baselines, {"baseline": "cubic spline", **fitted}).set_index("seed")[metric]
            seeds = sorted(set(runs.index) & set(spline.index))
            t = stats.paired_test(
                runs.loc[seeds].to_numpy(float),
                spline.loc[seeds].to_numpy(float),
            )
            rows.append(
                {
                    **key,
                    "metric": metric,
                    "n_ok": r.n_ok,
                    "median": r.median,
                    "best_baseline": best.loc[_index(fitted), "baseline"],
                    "baseline_median": best.loc[_index(fitted), "median"],
                    "ratio_to_best": r.median / best.loc[_index(fitted), "median"],
                    "spline_median_ratio": t.median_ratio,
                    "spline_ratio": t.ratio,
                    "spline_ratio_lo": t.ratio_ci[0],
                    "spline_ratio_hi": t.ratio_ci[1],
                    "share_lower_than_spline": t.share,
                    "p_vs_spline": t.p_value,
                }
            )
    return pd.DataFrame(rows)


def _index(key: dict) -> object:
    """A row label of a frame indexed by key's columns: the value for one column, else a tuple."""
    values = tuple(key.values())
    return values[0] if len(values) == 1 else values


def refinement_table(df: pd.DataFrame, last_epochs: dict[str, float]) -> pd.DataFrame:
    """Per cell and activation of refined runs: how many refinements stopped before their
    iterations were done (an L-BFGS line search that stalled, an LM damping that ran away) and the
    median iterations completed (of the last stage, for a run of several stages: engine/stages.py
    numbers each stage's epochs and iterations after the stages before it). last_epochs: run_id ->
    the last epoch number of its stored curves. Empty when no run was refined."""
    ok = df[(df.status == "ok") & (df.optimizer != "adam")]
    if ok.empty:
        return pd.DataFrame()
    iters = [int(getattr(r, REFINE_ITERS[r.optimizer])) for r in ok.itertuples()]
    before = [(r.stages - 1) * (r.epochs + n) + r.epochs for r, n in zip(ok.itertuples(), iters)]
    ok = ok.assign(
        refine_iters=iters,
        iterations_run=[last_epochs.get(r.run_id, np.nan) - b for r, b in zip(ok.itertuples(), before)],
    )
    axes = varying_axes(df)
    rows = []
    for key, g in _groups(ok, axes):
        done = g.iterations_run.to_numpy(float)
        rows.append(
            {
                **dict(zip(axes, key)),
                "n_ok": len(g),
                "refine_iters": int(g.refine_iters.iloc[0]),
                "stopped_early": int((done < g.refine_iters.to_numpy()).sum()),
                "median_iterations_run": float(np.nanmedian(done)) if np.isfinite(done).any() else np.nan,
                "min_iterations_run": float(np.nanmin(done)) if np.isfinite(done).any() else np.nan,
            }
        )
    return pd.DataFrame(rows)


def checkpoint_table(df: pd.DataFrame, best_epochs: dict[str, float], order: list[str]) -> pd.DataFrame:
    """Per cell and activation of the runs scored at their best validation epoch (checkpoint
    "best_val"): the epoch each was scored at, as stored with it (its median and range), and how
    many stopped improving before their last epoch. best_epochs: run_id -> that epoch. Empty when
    no run uses the checkpoint."""
    ok = df[(df.status == "ok") & (df.checkpoint == "best_val")]
    if ok.empty:
        return pd.DataFrame()
    axes = [a for a in cell_axes(df) if a != "checkpoint" and ok[a].nunique() > 1]  # where these runs differ
    rank = {a: i for i, a in enumerate(order)}
    rows = []
    for key, g in _groups(ok, axes):
        for act, ga in sorted(g.groupby("activation"), key=lambda item: rank.get(item[0], len(rank))):
            best = np.array([best_epochs.get(r, np.nan) for r in ga.run_id])
            known = np.isfinite(best)
            rows.append(
                {
                    "activation": act,
                    **dict(zip(axes, key)),
                    "n_ok": len(ga),
                    "epochs": int(ga.epochs.max()),
                    "best_epoch_median": float(np.median(best[known])) if known.any() else np.nan,
                    "best_epoch_min": int(best[known].min()) if known.any() else pd.NA,
                    "best_epoch_max": int(best[known].max()) if known.any() else pd.NA,
                    "before_last": int((best[known] < ga.epochs.to_numpy()[known]).sum()),
                    "not_recorded": int((~known).sum()),
                }
            )
    return pd.DataFrame(rows)


MAX_SUMMARY_COLUMNS = 6  # more levels than this become rows, not columns (a page's width)


def compact_summary(summary: pd.DataFrame, axes: list[str], metric: str) -> pd.DataFrame:
    """Median of one metric as a grid: rows activation x all cell axes but the last, columns the
    last cell axis (e.g. rows activation x width, columns deriv_weight); a long table (a row per
    cell) when that axis has more than MAX_SUMMARY_COLUMNS levels (16 learning rates)."""
    s = summary[summary.metric == metric]
    rows, col = ["activation", *axes[:-1]], axes[-1]
    if s[col].nunique() > MAX_SUMMARY_COLUMNS:
        return s[["activation", *axes, "median"]].reset_index(drop=True)
    t = s.pivot_table(index=rows, columns=col, values="median", sort=False)
    t.columns = [f"{col}={c}" for c in t.columns]
    return t.reset_index()


def seed_log_ratios(df: pd.DataFrame, a: str, b: str, metric: str) -> np.ndarray:
    """Per seed, the mean over the cells of log(error(a)) - log(error(b)) (cells where both have an
    ok run of that seed): one number per seed, the independent unit. The cells of a grid share
    their seeds' splits and initialisations, so they are not independent units themselves."""
    return indexed_log_ratios(by_cell_and_seed(df), a, b, metric)


def indexed_log_ratios(indexed: pd.DataFrame, a: str, b: str, metric: str) -> np.ndarray:
    """seed_log_ratios of the runs behind `indexed` (by_cell_and_seed), built once where a table
    pairs many activations of one frame."""
    acts = indexed.activation.to_numpy()
    pa, pb = indexed[metric][acts == a], indexed[metric][acts == b]
    both = pa.index.intersection(pb.index)
    if both.empty:
        return np.array([])
    d, _ = stats.log_ratios(pa.loc[both].to_numpy(float), pb.loc[both].to_numpy(float))
    d = np.clip(d, -700.0, 700.0)  # a zero error weighs as the largest difference, not as inf - inf
    per_seed = pd.Series(d, index=both.get_level_values("seed")).groupby(level=0).mean()
    return per_seed.to_numpy(float)


def by_cell_and_seed(df: pd.DataFrame) -> pd.DataFrame:
    """df's ok runs indexed by their cell's axes and seed, as seed_log_ratios pairs them: built once
    for the many pairs of a table (once per pair, it was a report's costliest step, profiled)."""
    return df[df.status == "ok"].set_index([*cell_axes(df), "seed"])


def compact_comparisons(
    comparisons: pd.DataFrame, metrics: list[str], runs: pd.DataFrame, alpha: float = stats.ALPHA
) -> pd.DataFrame:
    """Per pair of activations and metric, over all cells of the other axes.

    Per cell: in how many cells each side is better (Holm-corrected Wilcoxon over seeds,
    p < alpha) or won in every seed, and the range of per-cell median ratios a/b. Across cells,
    with the seeds as the units (seed_log_ratios of `runs`): the ratio a/b averaged over the cells
    per seed, its Hodges-Lehmann estimate over seeds with the exact 95% CI, and the Wilcoxon test
    of those per-seed values against 0 (does a beat b across the grid?), Holm-corrected over the
    pairs of one metric.
    """
    rows = []
    indexed = by_cell_and_seed(runs)
    for (a, b, metric), g in comparisons[comparisons.metric.isin(metrics)].groupby(["a", "b", "metric"], sort=False):
        sig = g.p_holm < alpha
        a_better = sig & (g.favours == "a")
        log_ratio = np.log(g.median_ratio.to_numpy(float))
        per_seed = indexed_log_ratios(indexed, a, b, metric)
        reachable = len(per_seed) > 0 and stats.min_wilcoxon_p(len(per_seed)) <= alpha and np.any(per_seed != 0)
        p_cells = float(st.wilcoxon(per_seed).pvalue) if reachable else np.nan
        hl, hl_lo, hl_hi, _ = stats.hodges_lehmann(per_seed)
        rows.append(
            {
                "a": a,
                "b": b,
                "metric": metric,
                "cells": len(g),
                "a_better": int(a_better.sum()),
                "b_better": int((sig & (g.favours == "b")).sum()),
                "not_significant": int((~sig).sum()),
                "a_won_every_seed": int((g.a_wins == g.n_pairs).sum()),
                "b_won_every_seed": int(((g.a_wins == 0) & (g.ties == 0)).sum()),
                "median_ratio_min": float(g.median_ratio.min()),
                "median_ratio_median": float(np.exp(np.median(log_ratio))),
                "median_ratio_max": float(g.median_ratio.max()),
                "seeds": len(per_seed),
                "ratio_across_cells": float(np.exp(hl)),
                "ratio_across_lo": float(np.exp(hl_lo)),
                "ratio_across_hi": float(np.exp(hl_hi)),
                "p_across_cells": p_cells,
            }
        )
    out = pd.DataFrame(rows)
    if not out.empty:
        out["p_across_cells_holm"] = np.nan
        for _, idx in out.groupby("metric").groups.items():
            out.loc[idx, "p_across_cells_holm"] = stats.holm(out.loc[idx, "p_across_cells"].to_numpy(float))
    return out
