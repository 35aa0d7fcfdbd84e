"""Tuned comparisons: each activation at its own best setting of the tuned axes, chosen without
looking at the runs it is scored on.

The seeds are split in two (sorted; the first half selects, the second half evaluates). For each
activation and each cell of the other axes, every setting of the tuned axes gets a selection score:
the median over the selection seeds of the validation objective, MSE(f) + deriv_weight * MSE(f') on
the validation split (a run that diverged or failed scores +inf). The lowest score wins (ties: the
first setting in sorted order). The activations are then compared, paired by seed, on the
evaluation seeds' runs at their chosen settings, as any pair is (tables.comparisons_table): no
evaluation run enters a selection, and no selection run enters a comparison (Cawley & Talbot 2010).

One split is one draw: which seeds select can decide a finding. So the selection is repeated
over N_SPLITS random splits of the seeds into halves (splits_table): how often each setting is
chosen, and the share of splits in which each tuned finding holds (significant, Holm over the
cell's pairs, in the same direction). The estimates of different splits share their runs, so they
are not independent and no test pools them as if they were; their interval is pooled as in
repeated cross-fitting (Chernozhukov et al. 2018, "Double/debiased machine learning", section 3.4):
on the log scale, the median of the splits' estimates, with a standard error that adds the spread
of the estimates around it to each split's own, median(se_s^2 + (est_s - median)^2), se_s from the
split's 95% interval (its width / 3.92). A chosen setting at the lowest or highest value searched
is flagged: the best may lie outside the range.

The expected best validation objective after k settings tried (Dodge et al. 2019; drawn without
replacement from the settings run, the unbiased estimator Tang et al. 2020 recommend) tells what a
smaller tuning budget would have found.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from math import comb

import numpy as np
import pandas as pd

from ..problem.errors import UserError
from ..problem.vocabulary import GRID_MSE, METRIC_LABELS
from . import stats, tables
from .findings import Finding

SELECT = "selection"
EVALUATE = "evaluation"


def check_tuned(df: pd.DataFrame, tune: list[str]) -> None:
    axes = tables.cell_axes(df)
    if len(set(tune)) < len(tune):
        raise UserError(f"an axis is named twice ({', '.join(tune)}): name each once", field="--tune")
    if "deriv_weight" in tune:
        raise UserError(
            "deriv_weight cannot be tuned: the selection loss, MSE(f) + deriv_weight x MSE(f'), depends on it "
            "(deriv_weight 0 would win by construction); compare its levels as an axis instead",
            field="--tune",
        )
    for t in tune:
        if t not in axes:
            raise UserError(
                f"{t!r} is not an axis this study varies (its axes: {', '.join(axes) or 'none'})", field="--tune"
            )
    if df.seed.nunique() < 4:
        raise UserError(f"tuning needs at least 4 seeds to split, the store has {df.seed.nunique()}", field="--tune")


def split_seeds(seeds) -> tuple[list[int], list[int]]:
    """The first half of the sorted seeds select, the rest evaluate."""
    s = sorted({int(x) for x in seeds})
    half = len(s) // 2
    return s[:half], s[half:]


def objective(df: pd.DataFrame) -> np.ndarray:
    """Each run's validation objective; +inf for a run that is not ok."""
    v = df.val_f_mse.to_numpy(float) + df.deriv_weight.to_numpy(float) * df.val_df_mse.to_numpy(float)
    return np.where((df.status == "ok").to_numpy() & np.isfinite(v), v, np.inf)


def settings_table(df: pd.DataFrame, tune: list[str]) -> pd.DataFrame:
    """Per activation, cell of the other axes and setting of the tuned axes: the selection score
    (median objective over the selection seeds) and whether it was chosen."""
    select_seeds, _ = split_seeds(df.seed)
    others = [a for a in tables.cell_axes(df) if a not in tune]
    sel = df[df.seed.isin(select_seeds)].assign(_objective=lambda d: objective(d))
    rows = []
    for key, g in sel.groupby(["activation", *others, *tune], sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        rows.append(
            {
                **dict(zip(["activation", *others, *tune], key)),
                "selection_seeds": len(g),
                "score": float(np.median(g._objective)),
            }
        )
    out = pd.DataFrame(rows)
    out["chosen"] = False
    for _, g in out.groupby(["activation", *others], sort=False, dropna=False):
        out.loc[g.score.idxmin(), "chosen"] = True  # idxmin: the first of equal scores, in sorted order
    return out


def tuned_runs(df: pd.DataFrame, tune: list[str], settings: pd.DataFrame) -> pd.DataFrame:
    """The evaluation seeds' runs at each activation's chosen setting, the tuned axes replaced by
    "tuned" so that the activations pair up within the cells of the other axes."""
    _, eval_seeds = split_seeds(df.seed)
    others = [a for a in tables.cell_axes(df) if a not in tune]
    chosen = settings[settings.chosen][["activation", *others, *tune]]
    keep = df[df.seed.isin(eval_seeds)].merge(chosen, on=["activation", *others, *tune], how="inner")
    return keep.assign(**dict.fromkeys(tune, "tuned"))


def expected_best(scores: np.ndarray, k: int) -> tuple[float, float]:
    """Mean and standard deviation of the lowest of k scores drawn without replacement from
    `scores`: with v sorted ascending, P(the lowest is v_i) = C(N - i, k - 1) / C(N, k)."""
    v = np.sort(np.asarray(scores, float))
    n = len(v)
    if not 1 <= k <= n:
        raise ValueError(f"k must be in [1, {n}], got {k}")
    p = np.array([comb(n - i, k - 1) / comb(n, k) for i in range(1, n + 1)])
    finite = np.isfinite(v)
    if not finite[p > 0].all():  # an infinite score can be the lowest: mean and sd are not finite
        return float("inf"), float("nan")
    mean = float(p @ np.where(finite, v, 0.0))
    var = float(p @ np.where(finite, v, 0.0) ** 2) - mean**2
    return mean, float(np.sqrt(max(var, 0.0)))


def budget_table(settings: pd.DataFrame, tune: list[str]) -> pd.DataFrame:
    """Per activation and cell of the other axes, k = 1..N settings tried: the expected best
    selection score and its standard deviation."""
    others = [c for c in settings.columns if c not in ("activation", *tune, "selection_seeds", "score", "chosen")]
    rows = []
    for key, g in settings.groupby(["activation", *others], sort=False, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        for k in range(1, len(g) + 1):
            mean, sd = expected_best(g.score.to_numpy(), k)
            rows.append({**dict(zip(["activation", *others], key)), "k": k, "expected_best": mean, "sd": sd})
    return pd.DataFrame(rows)


def seed_span(seeds: list[int]) -> str:
    """0-9 for consecutive seeds, else the list."""
    s = sorted(seeds)
    if s and s == list(range(s[0], s[-1] + 1)) and len(s) > 2:
        return f"{s[0]}-{s[-1]}"
    return ", ".join(map(str, s))


def role(metric: str, primary: str) -> str:
    return "the primary metric" if metric == primary else "secondary"


def share(x: float) -> str:
    """A share of splits as a percentage; one decimal below 1%, so that no share that is not zero
    reads "0%"."""
    return f"{x:.1%}" if 0 < x < 0.01 else f"{x:.0%}"


def findings(
    compared: pd.DataFrame,
    splits: Splits,
    chosen: pd.DataFrame,
    selecting: list[int],
    evaluating: list[int],
    primary: str = "grid_df_mse",
) -> list[Finding]:
    """One finding per tuned comparison on the tuned metrics: what the repeated splits show (the
    share of splits in which each side is significantly lower, the pooled ratio), then the first
    split's test and the spread of the splits' estimates; and one per chosen setting at an edge."""
    out: list[Finding] = []
    axes = list(compared.columns[: list(compared.columns).index("metric")]) if not compared.empty else []
    for r in compared.itertuples():
        cell = {a: getattr(r, a) for a in axes}
        h = splits.holds
        for a, v in {**cell, "metric": r.metric, "a": r.a, "b": r.b}.items():
            h = h[h[a] == v]
        where = f" ({', '.join(f'{a}={v}' for a, v in cell.items())})" if axes else ""  # the other axes' cell
        verdict = (
            f"{r.a if r.favours == 'a' else r.b} significantly lower"
            if r.p_holm < stats.ALPHA and r.favours in ("a", "b")
            else "inconclusive"
        )
        ci = f" (95% CI {tables.sci(r.ratio_lo)}-{tables.sci(r.ratio_hi)})" if np.isfinite(r.ratio_lo) else ""
        first = (
            f"In the first split (selection seeds {seed_span(selecting)}, evaluation {seed_span(evaluating)}): "
            f"{verdict}; ratio {tables.sci(r.ratio)}{ci}; "
        ) + (
            f"Wilcoxon p = {tables.sci(r.p_holm)} (Holm over the cell's pairs), over {r.n_pairs} evaluation seeds."
            if np.isfinite(r.p_holm)
            else f"{r.note}."
        )
        if h.empty:
            said = f"Tuned{where}, {METRIC_LABELS[r.metric]} ({role(r.metric, primary)}): {r.a} vs {r.b}: {verdict}"
            out.append((f"{said}; ratio {tables.sci(r.ratio)}{ci}.", [first]))
            continue
        x = h.iloc[0]
        if not np.isfinite(x.ratio):  # no split's comparison could estimate it (too few pairs)
            said = f"Tuned{where}, {METRIC_LABELS[r.metric]} ({role(r.metric, primary)}): {r.a} vs {r.b}: {verdict}"
            out.append((f"{said} in every one of {splits.n} splits of the seeds; no ratio estimated.", [first]))
            continue
        (first_side, first_share), (other_side, other_share) = sorted(
            [(r.b, x.b_lower), (r.a, x.a_lower)], key=lambda t: -t[1]
        )
        out.append(
            (
                f"Tuned{where}, {METRIC_LABELS[r.metric]} ({role(r.metric, primary)}): {r.a} vs {r.b}: {first_side} "
                f"significantly lower in {share(first_share)} of {splits.n} splits of the seeds, {other_side} in "
                f"{share(other_share)}, inconclusive in {share(x.inconclusive)}; pooled ratio {r.a}/{r.b} "
                f"{tables.sci(x.ratio)} (95% CI {tables.sci(x.ratio_lo)}-{tables.sci(x.ratio_hi)}).",
                [
                    f"The splits' ratios: {tables.sci(x.split_ratio_p5)}-{tables.sci(x.split_ratio_p95)} "
                    "(5th-95th percentile); pooled as in repeated cross-fitting (median, spread added to the error).",
                    first,
                ],
            )
        )
    return out + _edge_findings(chosen, axes)


def _edge_findings(chosen: pd.DataFrame, axes: list[str]) -> list[Finding]:
    """A finding per chosen setting at the lowest or highest value searched, naming its cell."""
    out = []
    for _, r in chosen[chosen.edge != ""].iterrows():
        where = f" ({', '.join(f'{a}={r[a]}' for a in axes if a in r)})" if axes else ""
        out.append(
            (
                f"Tuned{where}: {r.activation}'s chosen setting sits at the edge of the searched range "
                f"({r.edge}): its best may lie outside it.",
                ["The range is the study file's; widen it and sweep again."],
            )
        )
    return out


N_SPLITS = 200  # random splits of the seeds into selection and evaluation halves
SPLIT_SEED = 0  # the splits are drawn from this seed: the same store, the same splits
METRICS_TUNED = GRID_MSE  # the tuned comparisons' metrics: the dense grid's, f then f′


def edges(df: pd.DataFrame, tune: list[str], chosen: pd.DataFrame) -> list[str]:
    """Per row of `chosen`, "lowest searched" / "highest searched" (joined with the axis name when
    several are tuned) where a numeric tuned axis sits at the end of the values the study ran."""
    out = []
    for _, row in chosen.iterrows():
        said = []
        for t in tune:
            values = sorted(v for v in df[t].unique() if isinstance(v, int | float | np.number))
            if len(values) < 2 or row[t] not in values:
                continue
            where = "lowest" if row[t] == values[0] else "highest" if row[t] == values[-1] else ""
            if where:
                said.append(f"{t} {where} searched" if len(tune) > 1 else f"{where} searched")
        out.append("; ".join(said))
    return out


@dataclass(frozen=True)
class Splits:
    """The selection repeated over random splits of the seeds (module docstring)."""

    n: int  # splits
    choices: pd.DataFrame  # activation, other axes, tuned axes, splits (choosing it), share, edge
    holds: pd.DataFrame  # other axes, metric, a, b, a_lower / b_lower / inconclusive shares, pooled ratio and CI


def _matrix(df: pd.DataFrame, keys: list[str], values: np.ndarray, seeds: list[int]) -> pd.DataFrame:
    """values (one per row of df) as a (keys) x seed table, NaN where a seed has no run."""
    return (
        df.assign(_v=values)
        .pivot_table(index=keys, columns="seed", values="_v", aggfunc="first")
        .reindex(columns=seeds)
    )


def _choose(scores: pd.DataFrame, others: list[str], select: list[int]) -> pd.Series:
    """Per activation and cell of the other axes: the index of the setting with the lowest median
    objective over `select` (ties: the first in sorted order, as settings_table)."""
    med = scores[select].median(axis=1, skipna=False).fillna(np.inf)
    groups = ["activation", *others]
    return med.groupby(level=groups, sort=False).idxmin()


def splits_table(df: pd.DataFrame, tune: list[str], order: list[str], n_splits: int = N_SPLITS) -> Splits:
    """The selection and the tuned comparison, repeated over `n_splits` random halvings of the seeds."""
    seeds = sorted({int(x) for x in df.seed})
    half = len(seeds) // 2
    others = [a for a in tables.cell_axes(df) if a not in tune]
    keys = ["activation", *others, *tune]
    df = df.sort_values(keys, kind="stable")
    scores = _matrix(df, keys, objective(df), seeds)
    ok = (df.status == "ok").to_numpy()
    metric = {m: _matrix(df, keys, np.where(ok, df[m].to_numpy(float), np.nan), seeds) for m in METRICS_TUNED}
    rng = np.random.default_rng(SPLIT_SEED)
    chosen_rows, test_rows = [], []
    for s in range(n_splits):
        perm = rng.permutation(seeds)
        select, evaluate = sorted(perm[:half].tolist()), sorted(perm[half:].tolist())
        picks = _choose(scores, others, select)
        chosen_rows += [dict(zip(keys, k)) for k in picks]
        test_rows += _split_tests(s, picks, metric, others, order, evaluate)
    choices = _choice_shares(pd.DataFrame(chosen_rows), keys, others, n_splits)
    choices["edge"] = edges(df, tune, choices)
    return Splits(n_splits, choices, _holds(pd.DataFrame(test_rows), others, n_splits))


def _split_tests(s, picks, metric, others, order, evaluate) -> list[dict]:
    """One split's tuned comparisons: every pair of activations in each cell of the other axes, on
    each tuned metric, over the evaluation seeds, Holm over the cell's pairs."""
    rows = []
    for cell, group in picks.groupby(level=others, sort=False) if others else [((), picks)]:
        cell = cell if isinstance(cell, tuple) else (cell,)
        by_act = {k[0]: k for k in group}
        acts = [a for a in order if a in by_act]
        for m, table in metric.items():
            family = []
            for a, b in itertools.combinations(acts, 2):
                xa, xb = table.loc[by_act[a], evaluate].to_numpy(float), table.loc[by_act[b], evaluate].to_numpy(float)
                both = np.isfinite(xa) & np.isfinite(xb)
                t = stats.paired_test(xa[both], xb[both])
                family.append({**dict(zip(others, cell)), "split": s, "metric": m, "a": a, "b": b, "test": t})
            holm = stats.holm(np.array([f["test"].p_value for f in family], float)) if family else []
            for f, p in zip(family, holm):
                t = f.pop("test")
                f.update(ratio=t.ratio, lo=t.ratio_ci[0], hi=t.ratio_ci[1], favours=t.favours, p_holm=p)
                rows.append(f)
    return rows


def _choice_shares(chosen: pd.DataFrame, keys: list[str], others: list[str], n: int) -> pd.DataFrame:
    counts = chosen.groupby(keys, sort=True).size().rename("splits").reset_index()
    counts["share"] = counts.splits / n
    return counts.sort_values(["activation", *others, "splits"], ascending=[True] * (1 + len(others)) + [False])


def _holds(tests: pd.DataFrame, others: list[str], n: int) -> pd.DataFrame:
    """Per cell, metric and pair: the share of splits in which each side is significantly lower, and
    the pooled ratio (module docstring)."""
    rows = []
    for key, g in tests.groupby([*others, "metric", "a", "b"], sort=False):
        significant = g.p_holm < stats.ALPHA
        est = np.log(g.ratio.to_numpy(float))
        se = (np.log(g.hi.to_numpy(float)) - np.log(g.lo.to_numpy(float))) / (2 * 1.959964)
        usable = np.isfinite(est) & np.isfinite(se)
        mid = float(np.median(est[usable])) if usable.any() else np.nan
        pooled_se = float(np.sqrt(np.median(se[usable] ** 2 + (est[usable] - mid) ** 2))) if usable.any() else np.nan
        rows.append(
            {
                **dict(zip([*others, "metric", "a", "b"], key)),
                "splits": len(g),
                "a_lower": float(np.mean(significant & (g.favours == "a"))),
                "b_lower": float(np.mean(significant & (g.favours == "b"))),
                "inconclusive": float(np.mean(~significant)),
                "ratio": float(np.exp(mid)),
                "ratio_lo": float(np.exp(mid - 1.959964 * pooled_se)),
                "ratio_hi": float(np.exp(mid + 1.959964 * pooled_se)),
                "split_ratio_p5": float(np.exp(np.quantile(est[usable], 0.05))) if usable.any() else np.nan,
                "split_ratio_p95": float(np.exp(np.quantile(est[usable], 0.95))) if usable.any() else np.nan,
            }
        )
    return pd.DataFrame(rows)
