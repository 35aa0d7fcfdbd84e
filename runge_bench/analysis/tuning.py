"""Tuned comparisons: each activation at its own best setting of the tuned axes, chosen without
looking at the runs it is scored on.

The seeds are split in two (sorted; the first half selects, the second half evaluates). For each
activation and each cell of the other axes, every setting of the tuned axes gets a selection score:
the median over the selection seeds of the validation objective, MSE(f) + deriv_weight * MSE(f') on
the validation split (a run that diverged or failed scores +inf). The lowest score wins (ties: the
first setting in sorted order). The activations are then compared, paired by seed, on the
evaluation seeds' runs at their chosen settings, as any pair is (tables.comparisons_table): no
evaluation run enters a selection, and no selection run enters a comparison (Cawley & Talbot 2010).

The expected best validation objective after k settings tried (Dodge et al. 2019; drawn without
replacement from the settings run, the unbiased estimator Tang et al. 2020 recommend) tells what a
smaller tuning budget would have found.
"""

from __future__ import annotations

from math import comb

import numpy as np
import pandas as pd

from ..problem.errors import UserError
from ..problem.vocabulary import METRIC_LABELS
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


def findings(compared: pd.DataFrame) -> list[Finding]:
    """One finding per tuned comparison (tables.comparisons_table of tuned_runs): verdict, ratio
    and interval, then the test."""
    out: list[Finding] = []
    axes = list(compared.columns[: list(compared.columns).index("metric")]) if not compared.empty else []
    for r in compared.itertuples():
        where = f" ({', '.join(f'{a}={getattr(r, a)}' for a in axes)})" if axes else ""  # the other axes' cell
        verdict = (
            f"{r.a if r.favours == 'a' else r.b} significantly lower"
            if r.p_holm < stats.ALPHA and r.favours in ("a", "b")
            else "inconclusive"
        )
        ci = f" (95% CI {tables.sci(r.ratio_lo)}-{tables.sci(r.ratio_hi)})" if np.isfinite(r.ratio_lo) else ""
        out.append(
            (
                f"Tuned{where}, {METRIC_LABELS[r.metric]}: {r.a} vs {r.b}: {verdict}; ratio {r.a}/{r.b} "
                f"{tables.sci(r.ratio)}{ci}.",
                [
                    f"Over {r.n_pairs} evaluation seeds; "
                    + (
                        f"Wilcoxon p = {tables.sci(r.p_holm)} (Holm over the cell's pairs)."
                        if np.isfinite(r.p_holm)
                        else f"{r.note}."
                    )
                ],
            )
        )
    return out
