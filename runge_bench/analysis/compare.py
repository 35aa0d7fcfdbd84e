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
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as st

from ..problem.activations import activation_order
from ..problem.config import CONFIG_FIELDS
from ..problem.errors import UserError
from ..problem.vocabulary import METRICS
from ..runs.files import written_whole
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


@dataclass(frozen=True)
class Comparison:
    """What compare() found; `cells` has one row per cell and metric."""

    a: Source
    b: Source
    margin: float
    cells: pd.DataFrame
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


def _conclusions(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Each study-level conclusion of either side's report, and whether the other side agrees."""
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
                    "what": f"pairs apart by more than the CD, {metric}",
                    "verdict": " ".join(apart) or "none",
                }
            )
    if not rows:
        return pd.DataFrame(columns=["kind", "what", "a", "b", "same", "change"])
    long = pd.DataFrame(rows)
    wide = long.pivot_table(index=["kind", "what"], columns="side", values="verdict", aggfunc="first", sort=False)
    wide = wide.reindex(columns=["a", "b"]).fillna("(absent)").reset_index()
    wide["same"] = wide.a == wide.b
    wide["change"] = [_change(a, b) for a, b in zip(wide.a, wide.b)]
    return wide


def _change(a: str, b: str) -> str:
    """How a conclusion moved: same, significant in one side only, reversed, or changed."""
    if a == b:
        return "same"
    sig_a, sig_b = a.endswith(" lower"), b.endswith(" lower")
    if sig_a and sig_b:
        return "reversed"
    if sig_a != sig_b and {a, b} & {"not significant", "no test"}:
        return "significant in A only" if sig_a else "significant in B only"
    return "changed"


def compare(a: Source, b: Source, margin: float = 2.0) -> Comparison:
    """Match the runs of two stores by config and compare them cell by cell (module docstring)."""
    if not (margin > 1.0 and math.isfinite(margin)):
        raise UserError(f"must be a finite factor above 1, got {margin}", field="--margin")
    da, _ = load_runs(a)
    db, _ = load_runs(b)
    axes = _axes(da, db)
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
        for metric in METRICS:
            e = equivalence(
                g[f"{metric}_a"].to_numpy(float),
                g[f"{metric}_b"].to_numpy(float),
                margin,
                seed=tables._seed(key, metric),
            )
            rows.append(
                {
                    **dict(zip(axes, key)),
                    "metric": metric,
                    "n_matched": e.n,
                    "median_ratio_b_a": e.median_ratio,
                    "ratio_lo": e.ratio_ci[0],
                    "ratio_hi": e.ratio_ci[1],
                    "share_over_2x": e.over_2x,
                    "share_over_10x": e.over_10x,
                    "p_equivalent": e.p_equivalent,
                    "p_different": e.p_different,
                    "verdict": e.verdict,
                }
            )
    if not rows and (da.empty or db.empty or ok.empty):
        raise UserError("no run is stored in both with status ok: nothing to compare", path=b.store)
    return Comparison(
        a=a,
        b=b,
        margin=margin,
        cells=pd.DataFrame(rows),
        only_a=only_a,
        only_b=only_b,
        status_changed=status_changed.reset_index(drop=True),
        conclusions=_conclusions(da, db),
    )


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


def describe(c: Comparison) -> str:
    """A few lines for the terminal: what was matched, the verdicts, the conclusions."""
    counts = c.counts
    changed = c.conclusions[~c.conclusions.same] if not c.conclusions.empty else c.conclusions
    lines = [
        f"A: {c.a.store}",
        f"B: {c.b.store}",
        f"matched runs: {int(c.cells.groupby('metric').n_matched.sum().max()) if not c.cells.empty else 0}; "
        f"only in A: {len(c.only_a)}; only in B: {len(c.only_b)}; status changed: {len(c.status_changed)}",
        f"cells x metrics at margin x{c.margin:g}: " + ", ".join(f"{counts[v]} {v}" for v in VERDICTS),
        f"study-level conclusions: {len(c.conclusions) - len(changed)} same, {len(changed)} changed",
    ]
    return "\n".join(lines)


def write_comparison(c: Comparison, out: Path) -> Path:
    """Write compare.csv (every cell and metric), compare_conclusions.csv and compare.md under
    out/, whole (runs.files.written_whole); return compare.md's path."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError("exists and is not a directory: the comparison cannot be written there", path=out)
    with written_whole(out, "the comparison") as staging:
        _write_comparison(c, staging)
    return out / "compare.md"


def _write_comparison(c: Comparison, out: Path) -> None:
    c.cells.to_csv(out / "compare.csv", index=False)
    c.conclusions.to_csv(out / "compare_conclusions.csv", index=False)
    counts = c.counts
    lines = [
        "# runge-bench compare",
        "",
        f"- A: `{c.a.store}`",
        f"- B: `{c.b.store}`",
        f"- runs matched by config (run id): only in A {len(c.only_a)}, only in B {len(c.only_b)}, "
        f"stored in both with another status {len(c.status_changed)}",
        "",
        "Per cell and metric, d = log(error in B) - log(error in A) over the matched ok runs. "
        f"**equivalent**: within x{c.margin:g} by TOST (both one-sided Wilcoxon signed-rank tests of d "
        f"against ±log {c.margin:g} reject at {stats.ALPHA}); **different**: shifted beyond x{c.margin:g} "
        f"(a one-sided test against +log {c.margin:g} or -log {c.margin:g} rejects at {stats.ALPHA / 2:g}); "
        "**inconclusive**: neither, or fewer than 5 runs. The median ratio B/A has a 95% bootstrap CI.",
        "",
        "## Verdicts",
        "",
        tables.to_markdown(
            c.cells.groupby("metric", sort=False)
            .verdict.value_counts()
            .unstack(fill_value=0)
            .reindex(columns=list(VERDICTS), fill_value=0)
            .reset_index()
        ),
        f"In all: {', '.join(f'{counts[v]} {v}' for v in VERDICTS)}.",
        "",
    ]
    for axis in [a for a in c.cells.columns if a in CONFIG_FIELDS]:
        by = c.cells.groupby(axis, sort=True).verdict.value_counts().unstack(fill_value=0)
        lines += [f"By {axis}:", "", tables.to_markdown(by.reindex(columns=list(VERDICTS), fill_value=0).reset_index())]
    shift = (
        c.cells.groupby("metric", sort=False)
        .agg(
            median_ratio=("median_ratio_b_a", lambda r: float(np.exp(np.median(np.log(r))))),
            over_2x=("share_over_2x", "mean"),
            over_10x=("share_over_10x", "mean"),
        )
        .reset_index()
    )
    lines += [
        "Per metric over the cells: the median of the cells' median ratios B/A, and the mean share of "
        "runs per cell differing by more than 2x and 10x.",
        "",
        tables.to_markdown(shift),
    ]
    bad = c.cells[c.cells.verdict != "equivalent"]
    lines += ["## Cells not shown equivalent", "", tables.to_markdown(bad) if not bad.empty else "None.", ""]
    changed = c.conclusions[~c.conclusions.same] if not c.conclusions.empty else c.conclusions
    lines += [
        "## Study-level conclusions",
        "",
        f"Each paired comparison's verdict (Holm p < {stats.ALPHA} and the side favoured), each step "
        f"along an axis, each ranking's order and the pairs its critical difference separates, in the "
        f"report of A and of B: {len(c.conclusions) - len(changed)} the same, {len(changed)} changed.",
        "",
    ]
    if not changed.empty:
        moves = changed.groupby(["kind", "change"], sort=True).size().rename("conclusions").reset_index()
        lines += [
            "How they changed (a significant verdict that reverses is a change of direction; one that "
            "becomes not significant, or the reverse, is a change of certainty):",
            "",
            tables.to_markdown(moves),
            "",
            tables.to_markdown(changed.drop(columns=["same"])),
        ]
    for title, rows in (
        ("Runs only in A", c.only_a),
        ("Runs only in B", c.only_b),
        ("Runs stored in both with another status", c.status_changed),
    ):
        if not rows.empty:
            lines += [f"## {title}", "", tables.to_markdown(rows)]
    (out / "compare.md").write_text("\n".join(lines).rstrip() + "\n")
