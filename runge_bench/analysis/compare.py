"""Two stores compared run by run: did anything change?

Every engine change, library upgrade and machine move asks it. Runs are matched by run_id (a hash
of the whole config and the protocol version; engine, device, versions and wall time are not part
of it), grouped into the cells of the varying axes, and compared per cell and metric on the log
ratio d = log(error_B) - log(error_A) of each matched run:

- the median ratio exp(median d) with a 95% bootstrap CI, and the share of runs differing by more
  than 2x and 10x;
- an equivalence verdict at a margin m (errors within a factor m): "equivalent" when both one-sided
  Wilcoxon signed-rank tests of TOST reject (d shifted below +log m and above -log m, each at
  ALPHA); "different" when the shift lies beyond the margin (the one-sided test that d is above
  +log m, or below -log m, rejects at ALPHA / 2 each); "inconclusive" otherwise, or with too few
  runs for either.

Single runs differ between engines and machines after 1000 float32 Adam epochs (the training
amplifies last-bit differences), so a verdict is about a cell's runs, never about one run. The
study-level conclusions of the two sides (each paired comparison's winner, each step along an
axis, each ranking's order and separated pairs) are compared too: same, or changed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as st

from ..problem.activations import activation_order
from ..problem.config import CONFIG_FIELDS
from ..problem.errors import UserError
from ..problem.vocabulary import METRICS
from ..runs.loading import Source, load_runs
from . import stats, tables

VERDICTS = ("equivalent", "inconclusive", "different")


@dataclass(frozen=True)
class Equivalence:
    n: int
    median_ratio: float  # exp(median of log(b) - log(a))
    ratio_ci: tuple[float, float]
    over_2x: float  # share of runs whose errors differ by more than 2x (either way)
    over_10x: float
    p_equivalent: float  # TOST: the larger of the two one-sided p-values
    p_different: float  # the smaller one-sided p of a shift beyond the margin, times 2 (both sides)
    verdict: str


def _one_sided(d: np.ndarray, alternative: str) -> float:
    if np.all(d == 0):
        return 1.0
    return float(st.wilcoxon(d, alternative=alternative).pvalue)


def equivalence(a: np.ndarray, b: np.ndarray, margin: float, *, seed: int) -> Equivalence:
    """Are b's errors within a factor `margin` of a's, run by run? a, b: (n,) matched errors."""
    d, _ = stats.log_ratios(b, a)
    n, m = len(d), math.log(margin)
    if n == 0:
        return Equivalence(0, np.nan, (np.nan, np.nan), np.nan, np.nan, np.nan, np.nan, "inconclusive")
    finite = np.clip(d, -700, 700)  # a zero error (±inf) stays beyond every margin, and subtractable
    lo, hi = stats.bootstrap_ci(finite, stats.median, seed=seed)
    if 0.5**n > stats.ALPHA:  # not even n of n one way can reject: no test
        p_eq = p_diff = np.nan
        verdict = "inconclusive"
    else:
        p_eq = max(_one_sided(finite - m, "less"), _one_sided(finite + m, "greater"))
        p_diff = min(1.0, 2 * min(_one_sided(finite - m, "greater"), _one_sided(finite + m, "less")))
        verdict = "equivalent" if p_eq < stats.ALPHA else ("different" if p_diff < stats.ALPHA else "inconclusive")
    return Equivalence(
        n=n,
        median_ratio=float(np.exp(np.median(finite))),
        ratio_ci=(math.exp(lo), math.exp(hi)) if not np.isnan(lo) else (np.nan, np.nan),
        over_2x=float(np.mean(np.abs(d) > math.log(2))),
        over_10x=float(np.mean(np.abs(d) > math.log(10))),
        p_equivalent=p_eq,
        p_different=p_diff,
        verdict=verdict,
    )


TAIL_FACTOR = 10.0  # a run "in the tail": its error beyond this factor times the pooled median
TAIL_MARGIN = 0.1  # tails are equivalent when the shares in the tail are shown to differ by less than this


@dataclass(frozen=True)
class Distributions:
    """The unpaired view of one cell and metric: the two stores' runs as two samples."""

    median_ratio: float  # median(b) / median(a)
    median_ratio_ci: tuple[float, float]  # 95% bootstrap over the matched runs (pairs resampled together)
    p_shift: float  # Mann-Whitney U on log errors, two-sided
    tail_a: int  # runs beyond TAIL_FACTOR x the pooled median
    tail_b: int
    p_tail: float  # Fisher's exact test of tail_a of n_a against tail_b of n_b, two-sided
    tail_detectable: float  # the share of B's runs in the tail that test finds with 80% power, A's being tail_a / n
    tail_diff_ci: tuple[float, float]  # 90% CI of B's share in the tail minus A's (Newcombe): TOST at ALPHA
    pair_rho: float  # Spearman correlation of the matched runs' log errors: ~0 when runs are chaotic
    verdict: str


def distributions(
    a: np.ndarray, b: np.ndarray, margin: float, *, seed: int, tail_margin: float = TAIL_MARGIN
) -> Distributions:
    """Do the two cells' distributions differ, whatever the pairing? a, b: (n,) matched errors.

    "different": the ratio of the cell medians lies beyond the margin with its whole CI, or the
    share of runs far out in the tail differs (Fisher p < ALPHA); "equivalent": the median ratio's
    CI lies within the margin and the shares in the tail are shown to differ by less than
    `tail_margin` (the 90% interval of their difference inside ±tail_margin: a tail test that does
    not reject is not enough); "inconclusive" otherwise."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    n = len(a)
    if n == 0:
        return Distributions(
            np.nan, (np.nan, np.nan), np.nan, 0, 0, np.nan, np.nan, (np.nan, np.nan), np.nan, "inconclusive"
        )
    la, lb = np.log(np.clip(a, 1e-300, None)), np.log(np.clip(b, 1e-300, None))
    ratio = float(np.exp(np.median(lb) - np.median(la)))
    rng = np.random.default_rng(seed)
    order = np.lexsort((lb, la))  # resampled in a canonical order: the rows' order cannot matter
    sa, sb = la[order], lb[order]
    idx = rng.integers(0, n, size=(4000, n))  # the pairs together: what they share is not counted twice
    ma, mb = np.median(sa[idx], axis=1), np.median(sb[idx], axis=1)
    lo, hi = np.exp(np.quantile(mb - ma, [0.025, 0.975])) if n >= stats.MIN_CI_N else (np.nan, np.nan)
    p_shift = float(st.mannwhitneyu(la, lb, alternative="two-sided").pvalue) if n >= 2 else np.nan
    far = np.log(TAIL_FACTOR) + np.median(np.concatenate([la, lb]))
    tail_a, tail_b = int(np.sum(la > far)), int(np.sum(lb > far))
    p_tail = float(st.fisher_exact([[tail_a, n - tail_a], [tail_b, n - tail_b]]).pvalue)
    detectable = stats.detectable_tail(n, n, tail_a / n)
    tail_lo, tail_hi = stats.share_difference_ci(tail_a, n, tail_b, n)
    rho = float(st.spearmanr(la, lb).statistic) if n >= 3 and np.ptp(la) > 0 and np.ptp(lb) > 0 else np.nan
    m = margin
    if (lo > m or hi < 1 / m) or p_tail < stats.ALPHA:
        verdict = "different"
    elif 1 / m <= lo and hi <= m and -tail_margin < tail_lo and tail_hi < tail_margin:
        verdict = "equivalent"
    else:
        verdict = "inconclusive"
    return Distributions(
        ratio, (float(lo), float(hi)), p_shift, tail_a, tail_b, p_tail, detectable, (tail_lo, tail_hi), rho, verdict
    )


def _reachable(n: int) -> str:
    """What n matched runs cannot show, or "" when both views can reach every verdict."""
    if n < stats.MIN_CI_N:
        return f"{n} runs: no view can reach a verdict"
    if 0.5**n > stats.ALPHA:
        return (
            f"{n} runs: the paired tests cannot reach p < {stats.ALPHA:g}; only the unpaired view can find a difference"
        )
    return ""


def combined_verdict(paired: str, unpaired: str) -> str:
    """Equivalent only when both views are; different when either is."""
    if "different" in (paired, unpaired):
        return "different"
    return "equivalent" if paired == unpaired == "equivalent" else "inconclusive"


@dataclass(frozen=True)
class Comparison:
    """What compare() found; `cells` has one row per cell and metric."""

    a: Source
    b: Source
    margin: float
    tail_margin: float  # the largest difference in the shares of runs in the tail that counts as equal
    seeds: range | None  # only runs with these seeds were compared (None: every seed)
    cells: pd.DataFrame
    ignored: tuple[str, ...]  # config fields left out of the matching (--ignore), e.g. dtype
    only_a: pd.DataFrame  # runs stored in A only (run_id, status, axes)
    only_b: pd.DataFrame
    status_changed: pd.DataFrame  # matched runs whose status differs (ok in one, diverged in the other)
    conclusions: pd.DataFrame  # kind, what, a, b, same

    @property
    def counts(self) -> dict[str, int]:
        return {v: int((self.cells.verdict == v).sum()) for v in VERDICTS}


def _axes(a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    both = pd.concat([a, b], ignore_index=True)
    return tables.varying_axes(both)


def _verdict(p: float, favours: str) -> str:
    if np.isnan(p):
        return "no test"
    return f"{favours} lower" if p < stats.ALPHA and favours else "not significant"


def _keyed(df: pd.DataFrame, ignore: tuple[str, ...], source: Source) -> pd.DataFrame:
    fields = [f for f in CONFIG_FIELDS if f not in ignore]
    key = df[fields].astype(str).agg("|".join, axis=1)
    if key.duplicated().any():
        raise UserError(
            f"holds runs that differ only in {', '.join(ignore)}: they cannot be matched one to one",
            path=source.store,
            field="--ignore",
        )
    return df.assign(run_id=key)


def _conclusions(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Each study-level conclusion of either side's report, drawn from the runs both stores hold
    (a partial re-run is compared on what it re-ran), and whether the other side agrees; one that
    neither side's matched runs can test is "not comparable", never "changed"."""
    rows = []
    for side, df in (("a", a), ("b", b)):
        cell = tables.reference_cell(df)
        order = activation_order(df.activation)
        comp = tables.comparisons_table(df, order)
        for r in comp.itertuples() if not comp.empty else []:
            where = ", ".join(f"{ax}={getattr(r, ax)}" for ax in tables.cell_axes(df))
            favours = {"a": r.a, "b": r.b}.get(r.favours, "")
            rows.append(
                {
                    "side": side,
                    "kind": "pair",
                    "what": f"{r.a} vs {r.b}, {r.metric}" + (f", {where}" if where else ""),
                    "verdict": _verdict(r.p_holm, favours),
                }
            )
        eff = tables.axis_effects_table(df, cell, list(METRICS))
        for r in eff.to_dict("records") if not eff.empty else []:
            where = ", ".join(f"{o}={r[o]}" for o in r["others"].split(", ") if o)
            rows.append(
                {
                    "side": side,
                    "kind": "axis step",
                    "what": f"{r['activation']}, {r['axis']} {r['from']:g} -> "
                    f"{r['to']:g}, {r['metric']}" + (f", {where}" if where else ""),
                    "verdict": _verdict(r["p_holm"], r["favours"]),
                }
            )
        ranking = tables.ranking_table(df, order)
        for metric in ranking.metric.unique() if not ranking.empty else []:
            acts, _, _, pairs = tables.separated_pairs(ranking, metric)
            apart = sorted(f"{a}<{b}" for a, b, separated in pairs if separated)
            rows.append(
                {"side": side, "kind": "ranking", "what": f"order by mean rank, {metric}", "verdict": " ".join(acts)}
            )
            rows.append(
                {
                    "side": side,
                    "kind": "ranking",
                    "what": f"separated pairs, {metric}",  # by their own tests (Wilcoxon, Holm)
                    "verdict": " ".join(apart) or "none",
                }
            )
    if not rows:
        return pd.DataFrame(columns=["kind", "what", "a", "b", "same", "change"])
    long = pd.DataFrame(rows)
    wide = long.pivot_table(index=["kind", "what"], columns="side", values="verdict", aggfunc="first", sort=False)
    wide = wide.reindex(columns=["a", "b"]).fillna("(absent)").reset_index()
    wide["change"] = [_change(a, b) for a, b in zip(wide.a, wide.b)]
    wide["same"] = wide.change == "same"
    return wide


def _change(a: str, b: str) -> str:
    """How a conclusion moved: same, significant in one side only, reversed, or changed."""
    if a == b == "no test":
        return "not comparable"
    if a == b:
        return "same"
    sig_a, sig_b = a.endswith(" lower"), b.endswith(" lower")
    if sig_a and sig_b:
        return "reversed"
    if sig_a != sig_b and {a, b} & {"not significant", "no test"}:
        return "significant in A only" if sig_a else "significant in B only"
    return "changed"


def compare(
    a: Source,
    b: Source,
    margin: float = 2.0,
    ignore: tuple[str, ...] = (),
    tail_margin: float = TAIL_MARGIN,
    seeds: range | None = None,
) -> Comparison:
    """Match the runs of two stores by config and compare them cell by cell (module docstring).
    ignore: config fields left out of the matching, so that the same plan trained in another dtype
    (or with another optimizer, ...) is matched run by run: each store must then hold one run per
    config without them. seeds: only runs with these seeds (e.g. those that did not raise the
    question a comparison answers), in both stores."""
    if not (margin > 1.0 and math.isfinite(margin)):
        raise UserError(f"must be a finite factor above 1, got {margin}", field="--margin")
    if not 0 < tail_margin < 1:
        raise UserError(f"must be a share between 0 and 1, got {tail_margin}", field="--tail-margin")
    for field in ignore:
        if field not in CONFIG_FIELDS or field in ("activation", "seed"):
            raise UserError(
                f"{field!r} is not a config field that can be left out of the matching (activation and seed cannot)",
                field="--ignore",
            )
    da, _ = load_runs(a)
    db, _ = load_runs(b)
    if seeds is not None:
        da, db = da[da.seed.isin(seeds)], db[db.seed.isin(seeds)]
    if ignore:  # match on every other field: the key stands in for the run id
        da, db = _keyed(da, ignore, a), _keyed(db, ignore, b)
    axes = [x for x in _axes(da, db) if x not in ignore]
    ids_a, ids_b = set(da.run_id), set(db.run_id)
    keep = ["run_id", "status", *axes]
    only_a = da[~da.run_id.isin(ids_b)][keep].sort_values("run_id").reset_index(drop=True)
    only_b = db[~db.run_id.isin(ids_a)][keep].sort_values("run_id").reset_index(drop=True)
    matched = da.merge(db[["run_id", "status", *METRICS]], on="run_id", suffixes=("_a", "_b"))
    status_changed = matched[matched.status_a != matched.status_b][["run_id", "status_a", "status_b", *axes]]
    ok = matched[(matched.status_a == "ok") & (matched.status_b == "ok")]
    rows = []
    for key, g in ok.groupby(axes, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        rows += [{**dict(zip(axes, key)), **row} for row in _cell_rows(g, key, margin, tail_margin)]
    if not rows and (da.empty or db.empty or ok.empty):
        raise UserError("no run is stored in both with status ok: nothing to compare", path=b.store)
    return Comparison(
        a=a,
        b=b,
        margin=margin,
        tail_margin=tail_margin,
        seeds=seeds,
        cells=pd.DataFrame(rows),
        ignored=tuple(ignore),
        only_a=only_a,
        only_b=only_b,
        status_changed=status_changed.reset_index(drop=True),
        conclusions=_conclusions(da[da.run_id.isin(ids_b)], db[db.run_id.isin(ids_a)]),
    )


def _cell_rows(g: pd.DataFrame, key: tuple, margin: float, tail_margin: float) -> list[dict]:
    """One cell's matched ok runs (columns METRIC_a, METRIC_b) compared, a row per metric: paired
    (equivalence), unpaired (distributions) and the verdict of both."""
    rows = []
    for metric in METRICS:
        xa, xb = g[f"{metric}_a"].to_numpy(float), g[f"{metric}_b"].to_numpy(float)
        e = equivalence(xa, xb, margin, seed=tables._seed(key, metric))
        u = distributions(xa, xb, margin, seed=tables._seed("unpaired", key, metric), tail_margin=tail_margin)
        rows.append(
            {
                "metric": metric,
                "n_matched": e.n,
                "median_ratio_b_a": e.median_ratio,
                "ratio_lo": e.ratio_ci[0],
                "ratio_hi": e.ratio_ci[1],
                "share_over_2x": e.over_2x,
                "share_over_10x": e.over_10x,
                "p_equivalent": e.p_equivalent,
                "p_different": e.p_different,
                "paired": e.verdict,
                "cell_median_ratio_b_a": u.median_ratio,
                "cell_ratio_lo": u.median_ratio_ci[0],
                "cell_ratio_hi": u.median_ratio_ci[1],
                "p_shift": u.p_shift,
                "tail_a": u.tail_a,
                "tail_b": u.tail_b,
                "p_tail": u.p_tail,
                "tail_detectable_b": u.tail_detectable,
                "tail_diff_lo": u.tail_diff_ci[0],
                "tail_diff_hi": u.tail_diff_ci[1],
                "pair_rho": u.pair_rho,
                "unpaired": u.verdict,
                "verdict": combined_verdict(e.verdict, u.verdict),
                "note": _reachable(e.n),
            }
        )
    return rows


def failing(c: Comparison, fail_on: str) -> int:
    """How many cells (and runs whose status changed) fail the comparison under `fail_on` ("never",
    "different" or "not-equivalent"): a run ok in one store and diverged or failed in the other is a
    difference too."""
    counts, changed = c.counts, len(c.status_changed)
    return {
        "never": 0,
        "different": counts["different"] + changed,
        "not-equivalent": counts["different"] + counts["inconclusive"] + changed,
    }[fail_on]


def changed_conclusions(c: Comparison) -> tuple[pd.DataFrame, int]:
    """The conclusions that changed, and how many neither side can test."""
    if c.conclusions.empty:
        return c.conclusions, 0
    moved = c.conclusions[~c.conclusions.change.isin(["same", "not comparable"])]
    return moved, int((c.conclusions.change == "not comparable").sum())
