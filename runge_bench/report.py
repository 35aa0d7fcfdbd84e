"""A results store -> tables (csv, md, tex), figures (png, pdf) and a self-contained report.md.

`report` reads the store only; it never trains. The same store always gives the same files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import plots, tables
from .activations import ACTIVATIONS
from .config import METRICS, PROTOCOL_VERSION
from .errors import UserError
from .published import SOURCE
from .store import STORE_NAME, Store, store_path
from .study import Study, load_study
from .target import plot_grid, runge, runge_derivative

KEY_METRICS = ["val_f_mse", "val_df_mse", "grid_f_max", "grid_df_max"]
RUNS_COLUMNS = ["run_id", "status", *tables.CONFIG_FIELDS, *METRICS, "wall_s", "engine", "device",
                "diverged_epoch", "error"]  # fmt: skip


@dataclass(frozen=True)
class Source:
    """Where a report's runs come from."""

    store: Path
    name: str
    study: Study | None  # when given, only the runs of its current plan are reported


def resolve(target: str, results_dir: Path) -> Source:
    """A study name, a study file, a results directory or a store file -> the store to read."""
    path = Path(target)
    if path.suffix == ".toml":
        study = load_study(path)
        return Source(store_path(results_dir, study.name), study.name, study)
    if path.is_dir() and (path / STORE_NAME).exists():
        return Source(path / STORE_NAME, path.name, None)
    if path.is_file():
        return Source(path, path.parent.name, None)
    return Source(store_path(results_dir, target), target, None)


def load_runs(source: Source) -> tuple[pd.DataFrame, list[str]]:
    """The runs to report, and notes on what was left out."""
    if not source.store.exists():
        raise UserError("no results store here (run `runge-bench sweep` on the study first)", path=source.store)
    with Store(source.store) as store:
        runs, other_protocol = store.runs(), store.count_other_protocols()
    notes = []
    if other_protocol:
        notes.append(f"{other_protocol} stored runs of another protocol version (not {PROTOCOL_VERSION}) "
                     "were ignored; sweep the study again to recompute them.")  # fmt: skip
    if source.study is not None:
        planned = {c.run_id for c in source.study.configs}
        kept = runs[runs.run_id.isin(planned)]
        if len(kept) < len(runs):
            notes.append(f"{len(runs) - len(kept)} stored runs are not in the current plan of "
                         f"{source.study.path} and were ignored.")  # fmt: skip
        if len(kept) < len(planned):
            notes.append(f"{len(planned) - len(kept)} runs of the plan are not stored yet.")
        runs = kept
    if runs.empty:
        raise UserError("the store holds no runs to report", path=source.store)
    df = tables.prepare(runs)
    # Registry order for activations everywhere (tables, comparisons' a/b, figure columns).
    rank = {a: i for i, a in enumerate(activation_order(df))}
    df = df.sort_values(["activation", "seed", "run_id"], key=lambda c: c.map(rank) if c.name == "activation" else c)
    return df.reset_index(drop=True), notes


def _per_seed_arrays(store: Store, runs: pd.DataFrame) -> tuple[dict, dict]:
    """For the figures: predictions and curves of the given ok runs, grouped by activation."""
    arrays = store.arrays(list(runs.run_id))
    members, curves = {}, {}
    for act, g in runs.groupby("activation", sort=False):
        g = g.assign(_total=g.val_f_mse + g.deriv_weight * g.val_df_mse).sort_values(["_total", "seed"])
        ids = list(g.run_id)
        f = np.stack([arrays[i][1]["f"] for i in ids]).astype(float)
        df = np.stack([arrays[i][1]["df"] for i in ids]).astype(float)
        members[act] = {"f": f, "df": df, "best": (len(ids) - 1) // 2}  # median of validation loss
        cs = [arrays[i][0] for i in ids]
        n = min(len(c["epoch"]) for c in cs)
        c = {k: np.stack([ci[k][:n] for ci in cs]).astype(float) for k in ("train_f", "train_df", "val_f", "val_df")}
        w = g.deriv_weight.to_numpy(float)[:, None]
        c["train_total"], c["val_total"] = c["train_f"] + w * c["train_df"], c["val_f"] + w * c["val_df"]
        c["epoch"] = cs[0]["epoch"][:n].astype(float)
        curves[act] = c
    return members, curves


def activation_order(df: pd.DataFrame) -> list[str]:
    """Activations in registry order (relu, tanh, silu, softplus), whatever the store's order."""
    present = set(df.activation)
    return [a for a in ACTIVATIONS if a in present] + sorted(present - set(ACTIVATIONS))


def _describe_cell(cell: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in cell.items()) or "all runs"


def findings(df, comparisons, reproduction, ranking, cell) -> list[str]:
    """Sentences generated from the numbers; nothing here is written for one particular result."""
    out = []
    counts = df.status.value_counts()
    out.append(f"{len(df)} runs: {counts.get('ok', 0)} ok, {counts.get('diverged', 0)} diverged, "
               f"{counts.get('failed', 0)} failed; only ok runs enter the statistics.")  # fmt: skip
    comp = tables.select(comparisons, cell) if not comparisons.empty else comparisons
    for row in comp.itertuples() if not comp.empty else []:
        if row.metric not in KEY_METRICS:
            continue
        win, lose, wins, ratio, poi = (row.a, row.b, row.a_wins, row.median_ratio, row.poi)
        if row.a_wins * 2 < row.n_pairs:
            win, lose, wins, ratio, poi = row.b, row.a, row.n_pairs - row.a_wins, 1 / row.median_ratio, 1 - row.poi
        p = f"Wilcoxon p = {tables.sci(row.p_holm)} (Holm)" if not np.isnan(row.p_holm) else row.note
        out.append(f"{win} has lower {plots.LABELS[row.metric]} than {lose} in {wins} of {row.n_pairs} "
                   f"seeds; median ratio {win}/{lose} {tables.sci(ratio)}, P(improvement) {poi:.2f}, {p}.")  # fmt: skip
    if not reproduction.empty:
        inside = reproduction[reproduction.verdict == "inside"]
        n = int(reproduction.n.min())
        line = f"{len(inside)} of {len(reproduction)} published numbers fall inside our 5-95% range over {n} seeds"
        outside = reproduction[reproduction.verdict != "inside"]
        if not outside.empty:
            line += "; outside: " + "; ".join(
                f"{r.activation} {r.quantity} {r.metric} (published {tables.sci(r.published)}, "
                f"{r.verdict} our range, percentile {r.percentile:.0f})" for r in outside.itertuples())
        out.append(line + ".")
    if not ranking.empty:
        for metric in ("grid_f_mse", "grid_df_mse"):
            r = ranking[ranking.metric == metric].sort_values("mean_rank")
            if r.empty:
                continue
            ranks = ", ".join(f"{a} {m:.2f}" for a, m in zip(r.activation, r.mean_rank))
            out.append(f"Mean rank on {plots.LABELS[metric]} over {r.n_blocks.iloc[0]} blocks ({r.blocks.iloc[0]}): "
                       f"{ranks}; Friedman p = {tables.sci(r.friedman_p.iloc[0])}, Nemenyi CD = "
                       f"{r.nemenyi_cd.iloc[0]:.2f}.")  # fmt: skip
    return out


def build_report(source: Source, out_dir: Path | None = None) -> Path:
    """Write tables/, figures/ and report.md for a store; return the report's path."""
    df, notes = load_runs(source)
    out = Path(out_dir) if out_dir is not None else source.store.parent
    (out / "tables").mkdir(parents=True, exist_ok=True)
    cell = tables.reference_cell(df)
    order = activation_order(df)

    runs_csv = df[[c for c in RUNS_COLUMNS if c in df.columns]].sort_values(["run_id"])
    runs_csv.to_csv(out / "tables" / "runs.csv", index=False)
    summary = tables.summary_table(df)
    summary.to_csv(out / "tables" / "summary.csv", index=False)
    comparisons = tables.comparisons_table(df)
    comparisons.to_csv(out / "tables" / "comparisons.csv", index=False)
    ranking = tables.ranking_table(df)
    reproduction = tables.reproduction_table(df)
    md_summary = summary[summary.metric.isin(KEY_METRICS)] if len(summary) > 40 else summary
    summary_cols = [c for c in summary.columns if c not in ("mean", "sd", "iqm_lo", "iqm_hi")]
    (out / "tables" / "summary.md").write_text(tables.to_markdown(summary))
    (out / "tables" / "summary.tex").write_text(tables.to_latex(
        summary.drop(columns=["n_diverged", "n_failed"]), f"{source.name}: error statistics over seeds "
        "(median and IQM with 95\\% bootstrap CIs)."))  # fmt: skip
    (out / "tables" / "comparisons.md").write_text(tables.to_markdown(comparisons))
    if not ranking.empty:
        ranking.to_csv(out / "tables" / "ranking.csv", index=False)
    if not reproduction.empty:
        reproduction.to_csv(out / "tables" / "reproduction.csv", index=False)
        (out / "tables" / "reproduction.md").write_text(tables.to_markdown(reproduction))

    figures = _figures(source, df, summary, cell, order, out / "figures")
    lines = [f"# runge-bench report: {source.name}", ""]
    study_desc = source.study.description if source.study else ""
    if study_desc:
        lines += [study_desc, ""]
    lines += ["## Study", "", f"- store: `{source.store.name}` ({len(df)} runs, protocol version {PROTOCOL_VERSION})"]
    for axis in [a for a in tables.varying_axes(df) if df[a].nunique() > 1]:
        lines.append(f"- varies **{axis}**: {', '.join(map(str, dict.fromkeys(df[axis])))}")
    lines.append(f"- seeds: {df.seed.nunique()} ({df.seed.min()}-{df.seed.max()})")
    fixed = [c for c in tables.CONFIG_FIELDS if c != "seed" and c not in tables.varying_axes(df)]
    lines.append("- fixed: " + ", ".join(f"{c}={df[c].iloc[0]}" for c in fixed))
    lines.append(f"- engines: {', '.join(sorted(df.engine.unique()))}; "
                 f"total training time {df.wall_s.sum() / 60:.1f} min")  # fmt: skip
    lines += [f"- note: {n}" for n in notes]
    lines += ["", "## Findings", "", *[f"- {s}" for s in findings(df, comparisons, reproduction, ranking, cell)], ""]
    if not reproduction.empty:
        lines += ["## Reproduction of the seed report", "",
                  f"Published: {SOURCE}. Ours: the same protocol over {int(reproduction.n.min())} seeds; "
                  "median with 95% bootstrap CI, 5th-95th percentile, and where the published value "
                  "falls among our seeds.", "",
                  tables.to_markdown(reproduction.drop(columns=["n"]))]  # fmt: skip
    lines += ["## Summary over seeds", "",
              "Median and IQM (interquartile mean) with 95% percentile-bootstrap CIs over seeds "
              "(10,000 resamples); n_ok runs per group." + (" Key metrics shown; `tables/summary.csv` "
              "has all eight." if md_summary is not summary else ""), "",
              tables.to_markdown(md_summary, summary_cols)]  # fmt: skip
    if not comparisons.empty:
        comp_md = comparisons[comparisons.metric.isin(KEY_METRICS)]
        lines += ["## Paired comparisons", "",
                  "Pairs share a seed (same split, same initialisation seed). `median_ratio` is the "
                  "median over seeds of error(a)/error(b); `poi` is P(error(a) < error(b)) with a 95% "
                  "bootstrap CI; `p_holm` is the two-sided Wilcoxon signed-rank p, Holm-corrected over "
                  "all comparisons of the same metric. Key metrics shown; `tables/comparisons.csv` "
                  "has all eight.", "", tables.to_markdown(comp_md)]  # fmt: skip
    if not ranking.empty:
        lines += ["## Rankings", "", "Mean rank per activation (1 = lowest error); Friedman test over "
                  "blocks; activations whose mean ranks differ by more than the Nemenyi critical "
                  "difference (CD) differ significantly at 0.05.", "", tables.to_markdown(ranking)]  # fmt: skip
    lines += ["## Figures", ""]
    for caption, rel in figures:
        lines += [f"**{caption}**", "", f"![{caption}]({rel})", ""]
    report = out / "report.md"
    report.write_text("\n".join(lines).rstrip() + "\n")
    return report


def _figures(source, df, summary, cell, order, fig_dir: Path) -> list[tuple[str, str]]:
    out = []
    ok = tables.select(df[df.status == "ok"], cell)
    where = _describe_cell(cell)
    if not ok.empty:
        with Store(source.store) as store:
            members, curves = _per_seed_arrays(store, ok)
        x = plot_grid()
        fig = plots.fits_figure(x, runge(x), runge_derivative(x), members,
                                f"Fits of f and f′ ({where}): median-seed model (dashed), band over all seeds")
        plots.save(fig, fig_dir / "fits")
        out.append((f"Fits of f and f′ and pointwise errors ({where}); the median seed by validation "
                    "loss, the band spanning all seeds", "figures/fits.png"))
        plots.save(plots.curves_figure(curves, f"Loss curves ({where}): median and IQR over seeds"),
                   fig_dir / "loss_curves")  # fmt: skip
        out.append((f"Training (solid) and validation (dashed) loss against epoch ({where})", "figures/loss_curves.png"))
        plots.save(plots.distributions_figure(ok, list(METRICS), order, f"Errors over seeds ({where})"),
                   fig_dir / "distributions")  # fmt: skip
        out.append((f"Each metric over seeds, per activation ({where})", "figures/distributions.png"))
    numeric = {"width", "depth", "deriv_weight", "lr", "epochs", "n_points", "val_fraction"}
    for axis in tables.cell_axes(df):
        if axis not in numeric:
            continue
        others = {k: v for k, v in cell.items() if k != axis}
        s = tables.select(summary, others)
        fig = plots.axis_figure(s, axis, KEY_METRICS, order,
                                f"Error against {axis} ({_describe_cell(others)}): median and 95% CI over seeds")
        plots.save(fig, fig_dir / f"by_{axis}")
        out.append((f"Error against {axis}", f"figures/by_{axis}.png"))
    return out
