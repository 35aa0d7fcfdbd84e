"""Declared hypotheses tested, and re-tested on fresh seeds (`runge-bench confirm`).

Each hypothesis (problem.hypothesis) says one activation's error is below another's on one metric
in some cells. It is tested paired by seed: per seed, log(error(better)) - log(error(worse)), averaged
over its cells when it spans several (the cells share the seed's split and initialisation, so the
seeds are the units); the Hodges-Lehmann ratio better/worse with its exact 95% CI, and the two-sided
Wilcoxon signed-rank test. The declared hypotheses of a store are one family: Holm over all of them.

- **supported**: Holm p < ALPHA with the ratio below 1; **contradicted**: Holm p < ALPHA above 1;
  **inconclusive**: otherwise (no evidence either way at these seeds: the interval says what remains).
- **confirmatory** when it was declared before the first of the runs it is tested on was trained
  (the sweep records the time it was declared); **exploratory** otherwise.

On fresh seeds (seeds no stored run of the study used), a hypothesis is **replicated** when the fresh
test supports it (Holm over the family re-tested), **not replicated** when the fresh seeds contradict
it or their interval excludes the original estimate, and **inconclusive** otherwise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..problem.errors import UserError
from ..problem.hypothesis import Hypothesis
from ..runs.loading import Source, frame_value, read_store, select
from . import stats, tables
from .findings import Finding

ALPHA = stats.ALPHA


def _seed_log_ratios(df: pd.DataFrame, h: Hypothesis) -> tuple[np.ndarray, int, list[str]]:
    """Per seed, log(better) - log(worse) averaged over the hypothesis's cells (seeds that have an
    ok run of both in every one of them); the number of cells; the runs tested."""
    ok = df[df.status == "ok"]
    sides = [select(ok[ok.activation == a], {k: frame_value(k, v) for k, v in h.side(a)}) for a in (h.better, h.worse)]
    ok = pd.concat(sides)
    own = {k for k, _ in h.better_at + h.worse_at}  # each side's own settings: not cells to pair within
    axes = [a for a in tables.cell_axes(df) if a not in own and ok[a].nunique() > 1]
    wide = ok.pivot_table(index=[*axes, "seed"], columns="activation", values=h.metric, aggfunc="first")
    wide = wide.reindex(columns=[h.better, h.worse]).dropna()
    if wide.empty:
        return np.array([]), 0, []
    with np.errstate(divide="ignore"):
        d = np.log(wide[h.better].to_numpy(float)) - np.log(wide[h.worse].to_numpy(float))
    per = pd.Series(d, index=wide.index).groupby(level="seed")
    cells = int(per.size().max())
    complete = per.size() == cells  # a seed missing a cell would be averaged over other cells
    means = per.mean()[complete].to_numpy(float)
    return means, cells, list(ok.run_id)


def hypotheses_table(
    df: pd.DataFrame, declared: tuple[tuple[Hypothesis, str | None], ...], finished: dict[str, str]
) -> pd.DataFrame:
    """One row per declared hypothesis: its test on df's runs, Holm over the family, the verdict and
    whether it is confirmatory. Empty without hypotheses."""
    rows = []
    for h, when in declared:
        d, cells, ids = _seed_log_ratios(df, h)
        t = stats.paired_test(np.exp(d), np.ones_like(d))
        first = min((finished[r] for r in ids if r in finished), default=None)
        confirmatory = when is not None and first is not None and when <= first
        rows.append(
            {
                "hypothesis": h.text(),
                "better": h.better,
                "worse": h.worse,
                "metric": h.metric,
                "cells": cells,
                "seeds": t.n_pairs,
                "ratio": t.ratio,
                "ratio_lo": t.ratio_ci[0],
                "ratio_hi": t.ratio_ci[1],
                "better_wins": t.a_wins,
                "p_wilcoxon": t.p_value,
                "declared_at": when or "",
                "first_run_at": first or "",
                "status": "confirmatory" if confirmatory else "exploratory",
                "note": t.note,
            }
        )
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out.insert(out.columns.get_loc("p_wilcoxon") + 1, "p_holm", stats.holm(out.p_wilcoxon.to_numpy(float)))
    out.insert(out.columns.get_loc("p_holm") + 1, "verdict", [_verdict(r) for r in out.itertuples()])
    return out


def _verdict(r) -> str:
    if r.p_holm < ALPHA:
        return "supported" if r.ratio < 1 else "contradicted"
    return "inconclusive"


def findings(table: pd.DataFrame) -> list[Finding]:
    """A finding per hypothesis: its status and verdict, the ratio and interval, when it was
    declared against when its runs were trained, and the test."""
    out = []
    for r in table.itertuples():
        ci = _ci(r.ratio_lo, r.ratio_hi)
        if r.status == "confirmatory":
            when = f"Declared {r.declared_at}, before its first run was trained ({r.first_run_at})."
        elif r.declared_at:
            when = f"Declared {r.declared_at}, after its first run was trained ({r.first_run_at}): exploratory."
        else:
            when = "Not recorded by a sweep before these runs: exploratory."
        spans = f", the log ratio averaged over its {r.cells} cells per seed" if r.cells > 1 else ""
        test = (
            f"Wilcoxon on log ratios over {r.seeds} seeds{spans}; Holm over the {len(table)} declared hypotheses: "
            f"p = {tables.sci(r.p_holm)}."
            if np.isfinite(r.p_holm)
            else f"{r.seeds} seeds{spans}: {r.note}."
        )
        out.append(
            (
                f"{r.status.capitalize()}: {r.hypothesis}: {r.verdict}; ratio {r.better}/{r.worse} "
                f"{tables.sci(r.ratio)}{ci}.",
                [when, test],
            )
        )
    return out


def confirmation_table(original: pd.DataFrame, fresh: pd.DataFrame) -> pd.DataFrame:
    """hypotheses_table on the original seeds and on fresh ones, side by side, with the verdict of
    the fresh seeds on each: replicated, not replicated or inconclusive."""
    keep = ["hypothesis", "ratio", "ratio_lo", "ratio_hi", "seeds", "p_holm", "verdict"]
    both = original[keep].merge(fresh[keep], on="hypothesis", suffixes=("", "_fresh"))
    both["confirmation"] = [_confirmation(r) for r in both.itertuples()]
    return both


def _confirmation(r) -> str:
    if r.verdict_fresh == "supported":
        return "replicated"
    outside = np.isfinite(r.ratio_lo_fresh) and not (r.ratio_lo_fresh <= r.ratio <= r.ratio_hi_fresh)
    if r.verdict_fresh == "contradicted" or outside:
        return "not replicated"
    return "inconclusive"


def _ci(lo: float, hi: float) -> str:
    return f" (95% CI {tables.sci(lo)}-{tables.sci(hi)})" if np.isfinite(lo) else ""


def confirmation_findings(table: pd.DataFrame) -> list[Finding]:
    out = []
    for r in table.itertuples():
        out.append(
            (
                f"{r.hypothesis}: {r.confirmation} on fresh seeds; ratio {tables.sci(r.ratio_fresh)}"
                f"{_ci(r.ratio_lo_fresh, r.ratio_hi_fresh)} over {r.seeds_fresh} fresh seeds, "
                f"{tables.sci(r.ratio)}{_ci(r.ratio_lo, r.ratio_hi)} over the {r.seeds} original ones.",
                [
                    f"Fresh: {r.verdict_fresh} (Holm p = {tables.sci(r.p_holm_fresh)}); original: {r.verdict} "
                    f"(Holm p = {tables.sci(r.p_holm)}).",
                    "Replicated: supported on the fresh seeds; not replicated: contradicted there, or their "
                    "interval excludes the original estimate; inconclusive: neither.",
                ],
            )
        )
    return out


def tested(source: Source) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A store's runs and its declared hypotheses tested on them (the store read once)."""
    contents = read_store(source, lambda df: [])
    return contents.runs, hypotheses_table(contents.runs, contents.hypotheses, contents.finished)


def confirmation(original: Source, fresh: Source) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """confirmation_table of the two stores, and the engines that trained each (a confirmation on
    another engine is a re-test across engines too: it says so)."""
    runs_a, a = tested(original)
    runs_b, b = tested(fresh)
    if a.empty or b.empty:
        raise UserError("no declared hypothesis to compare (sweep the study file first)", path=fresh.store)
    engines = {"original": sorted(runs_a.engine.unique()), "fresh": sorted(runs_b.engine.unique())}
    return confirmation_table(a, b), engines
