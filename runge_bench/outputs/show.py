"""`runge-bench show`: one cell, or one run, of a store as figures and a short table.

A report draws fits and loss curves for its reference cell only; `show` draws them for any cell
(`--where width=16,deriv_weight=0`) or any run (`--run RUN_ID`), from the store alone, into
`<store dir>/show/<selection>/` (or `--out`): fits.svg, loss_curves.svg (and their PDFs), runs.csv and show.md.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..analysis import tables
from ..problem.config import CONFIG_FIELDS
from ..problem.data import plot_grid
from ..problem.errors import UserError
from ..problem.targets import get_target
from ..problem.vocabulary import KEY_METRICS
from ..runs.loading import Source, cell_arrays, load_runs, parse_value
from . import plots
from .files import written_whole
from .markdown import to_markdown


def parse_where(text: str, runs: pd.DataFrame) -> dict[str, object]:
    """ "width=16,deriv_weight=0" -> {"width": 16, "deriv_weight": 0.0}, each value read as its
    field's type (runs.loading.parse_value: "16.9" is no width, "1e400" no seed). A UserError names
    a malformed pair, an unknown field, a value not of the field's type or a value no run has."""
    where: dict[str, object] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        key, sep, raw = pair.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not key or not raw:
            raise UserError(f"expected field=value pairs separated by commas, got {pair!r}", field="--where")
        if key not in CONFIG_FIELDS:
            raise UserError(f"unknown field {key!r} (fields: {', '.join(CONFIG_FIELDS)})", field="--where")
        column = runs[key]
        try:
            value = parse_value(key, raw)
        except UserError as e:
            raise UserError(str(e).split(": ", 1)[1], field="--where") from None
        if not (column == value).any():
            levels = ", ".join(map(str, sorted(column.unique())))
            raise UserError(f"no run has {key}={raw} (the store holds {key} = {levels})", field="--where")
        where[key] = value
    if not where:
        raise UserError("empty selection: give field=value pairs, e.g. width=16,deriv_weight=0", field="--where")
    return where


def _seeds(seeds: pd.Series) -> str:
    lo, hi = int(seeds.min()), int(seeds.max())
    return f"seed {lo}" if lo == hi else f"{seeds.nunique()} seeds ({lo}-{hi})"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text.replace("=", "-")).strip("_")[:100] or "selection"


def _cells_lines(runs: pd.DataFrame, ok: pd.DataFrame) -> list[str]:
    """The selection's medians per activation and cell; when it leaves axes open (several cells),
    a line that says so."""
    lines = []
    # The axes the selection leaves open: its runs are then several cells, said, and tabled apart.
    spans = [a for a in tables.cell_axes(runs) if a != "activation" and ok[a].nunique() > 1]
    if spans:
        levels = "; ".join(f"{a}: {', '.join(map(str, sorted(ok[a].unique())))}" for a in spans)
        cells = ok.groupby(spans).ngroups
        lines += [
            f"This selection spans {cells} cells ({levels}): the figures pool them; the table below is per "
            f"cell. Add {spans[0]}=VALUE (and so on) to --where for one cell.",
            "",
        ]
    keys = ["activation", *spans]
    summary = ok.groupby(keys, sort=False)[KEY_METRICS].median()
    summary.insert(0, "n_ok", ok.groupby(keys, sort=False).size())
    rank = {a: i for i, a in enumerate(dict.fromkeys(ok.activation))}  # the runs' (registry) order
    summary = summary.reset_index().sort_values(
        keys, key=lambda c: c.map(rank) if c.name == "activation" else c, kind="stable"
    )
    return lines + ["Median over seeds (one seed: its value):", "", to_markdown(summary)]


def show(src: Source, *, where: str | None = None, run_id: str | None = None, out_dir: Path | None = None) -> Path:
    """Draw the fits and loss curves of one cell (`where`) or one run (`run_id`) and write a short
    table; return the path of show.md."""
    if (where is None) == (run_id is None):
        raise UserError("give exactly one of --where FIELD=VALUE,... or --run RUN_ID")
    runs, _ = load_runs(src)
    if run_id is not None:
        selected, title, slug = runs[runs.run_id == run_id], f"run {run_id}", f"run-{_slug(run_id)}"
        if selected.empty:
            raise UserError(f"no stored run {run_id!r}", field="--run", path=src.store)
    else:
        cell = parse_where(where, runs)
        selected = tables.select(runs, cell)
        title = ", ".join(f"{k}={v}" for k, v in cell.items())
        slug = _slug(title)
    ok = selected[selected.status == "ok"]
    if ok.empty:
        counts = selected.status.value_counts()
        raise UserError(
            f"no ok run in {title}: {counts.get('diverged', 0)} diverged, {counts.get('failed', 0)} failed",
            path=src.store,
        )
    out = Path(out_dir) if out_dir is not None else src.store.parent / "show" / slug
    if out.exists() and not out.is_dir():
        raise UserError("exists and is not a directory: show cannot write there", path=out)
    with written_whole(out, "show's files") as staging:
        members, curves, left_out = cell_arrays(src, ok)
        lines = [
            f"# runge-bench show: {src.name}, {title}",
            "",
            f"{len(selected)} runs ({len(ok)} ok); activations: {', '.join(dict.fromkeys(ok.activation))}; "
            f"{_seeds(ok.seed)}.",
            "",
        ]
        if left_out:
            lines += [f"Left out of the figures (arrays unreadable): {', '.join(left_out)}.", ""]
        lines += _cells_lines(runs, ok)
        columns = ["run_id", "status", *CONFIG_FIELDS, *KEY_METRICS]
        selected[[c for c in columns if c in selected]].to_csv(staging / "runs.csv", index=False)
        if members:
            if ok.target.nunique() > 1:
                lines += [
                    f"No fits figure: the selection spans {ok.target.nunique()} targets; add target=NAME to --where.",
                    "",
                ]
            else:
                x, t = plot_grid(), get_target(ok.target.iloc[0])
                plots.save(
                    plots.fits_figure(x, t.f(x), t.df(x), members, f"Fits of f and f′ ({title})"), staging / "fits"
                )
                lines += [f"![fits](fits.{plots.WEB_FORMAT})", ""]
            spread = ": median and IQR over seeds" if ok.seed.nunique() > 1 else ""
            plots.save(plots.curves_figure(curves, f"Loss curves ({title}){spread}"), staging / "loss_curves")
            lines += [f"![loss curves](loss_curves.{plots.WEB_FORMAT})", ""]
        (staging / "show.md").write_text("\n".join(lines).rstrip() + "\n")
    return out / "show.md"
