"""`runge-bench site RESULTS_DIR --out DIR`: a static site of every study under RESULTS_DIR, to
browse offline (file://) or from any static host.

Built from the stores through the results objects (analysis.study.study_results), not from the
committed Markdown: per study its report (report.report_lines of the same object, rendered to
HTML by markdown-it-py; its figures the committed report's SVGs, listed by figures.figure_plans
without drawing; every table row that names a cell linked to it), a page per cell with every run,
the fits of f and f′ and the training curves drawn from the stored arrays as SVG (each line and
point titled with its run); per comparison (a `compare` directory's compare.csv) its rows, the
largest shift first; the performance log (docs/benchmarks.toml, outputs.benchlog) with each
benchmark's ratios over its entries. Relative links only, no network request: site.js
(hand-written: sorting, filtering by any column or one, tooltips) and site.css are the only
assets; every page reads the same without script. The site is written whole into a fresh
directory and swapped in (files.written_whole)."""

from __future__ import annotations

import html
import math
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from markdown_it import MarkdownIt
from markdown_it.token import Token
from matplotlib.ticker import MaxNLocator
from threadpoolctl import threadpool_limits

from ..analysis import glance, tables
from ..analysis.study import StudyResults, study_results
from ..problem.config import CONFIG_FIELDS
from ..problem.data import plot_grid
from ..problem.errors import UserError
from ..problem.targets import get_target
from ..problem.vocabulary import METRIC_LABELS, METRICS
from ..runs.loading import read_store, resolve
from ..runs.resources import available_bytes
from ..runs.store import STORE_NAME
from .benchlog import Entry, read_log
from .figures import figure_plans
from .files import check_output, written_whole
from .report import report_lines

FILES = Path(__file__).with_name("site_files")
W, H, PAD = 640, 260, 60  # an SVG plot's size and its left/bottom margin, px
FIT_STEP = 4  # every 4th point of the stored 401-point plotting grid: 101 a line, 6 px apart
MAX_CURVE_POINTS = 150  # a training curve's points drawn, evenly spaced over its recorded epochs
MAX_DRAWN = 25  # runs drawn on a cell's page: past some 25 lines a plot shows a smear, not runs
RUN_TABLE_METRICS = ("grid_f_mse", "grid_df_mse", "grid_f_max", "grid_df_max", "val_f_mse", "val_df_mse")


def build_site(
    results_dir: Path,
    out: Path,
    on_stage: Callable[[str], None] | None = None,
    jobs: int = 1,
    log: Path | None = None,
) -> Path:
    """Write the site of every study (a directory with a store) and comparison under results_dir
    into out, the studies `jobs` at a time (processes: each reads its store and computes its
    results), with the performance log `log` (by default docs/benchmarks.toml beside results_dir,
    where there is one); return the index page's path."""
    stage = on_stage or (lambda text: None)
    results_dir, out = Path(results_dir), Path(out)
    if not results_dir.is_dir():
        raise UserError("is not a directory of results", path=results_dir)
    if log is not None and not Path(log).is_file():
        raise UserError("is not a file (the performance log, --log)", path=log)
    default_log = results_dir.parent / "docs" / "benchmarks.toml"
    log = Path(log) if log is not None else default_log if default_log.is_file() else None
    entries = read_log(log) if log is not None else []  # before the work: a broken log fails at once
    check_output(out, "the site")
    names = sorted(p.name for p in results_dir.iterdir() if (p / STORE_NAME).is_file())
    if not names:
        raise UserError(f"holds no study (no */{STORE_NAME})", path=results_dir)
    env = _environment()
    # the largest stores first, so that no worker is left with a big one at the end
    order = sorted(names, key=lambda n: -(results_dir / n / STORE_NAME).stat().st_size)
    jobs, note = site_jobs(
        min(jobs, len(names)), (results_dir / order[0] / STORE_NAME).stat().st_size, available_bytes()
    )
    if note:
        stage(note)
    with written_whole(out, "the site") as staging:
        for asset in ("site.css", "site.js"):
            shutil.copy(FILES / asset, staging / asset)
        stage(f"{len(names)} studies, {jobs} at a time: reading their stores, computing their results")
        pages = Parallel(n_jobs=jobs)(delayed(_study)(results_dir, n, staging) for n in order)
        studies = sorted(pages, key=lambda s: names.index(s["name"]))
        comparisons = [
            _comparison(env, p, results_dir, staging) for p in sorted(results_dir.glob("*/compare*/compare.csv"))
        ]
        _benchmarks(env, log, entries, staging)
        n_runs = sum(s["n_runs"] for s in studies)
        page = env.get_template("index.html.j2").render(
            title="All studies", root="", crumbs=[], studies=studies, comparisons=comparisons, n_runs=f"{n_runs:,}"
        )
        (staging / "index.html").write_text(page)
    return out / "index.html"


# A worker's peak memory: its imports (torch, pandas, matplotlib, scipy: 416 MB measured with the
# smoke store) and some 3 bytes per byte of the largest store it reads (480 MB with the 21 MB
# sensitivity store, 453 MB with the 9.5 MB tuning store; /usr/bin/time, one worker): budgeted
# with room to spare, so that --jobs never asks for more memory than the machine has free.
WORKER_BASE_BYTES = 500e6
WORKER_BYTES_PER_STORE_BYTE = 5.0


def site_jobs(jobs: int, largest_store: int, available: float | None) -> tuple[int, str | None]:
    """The studies built at once: `jobs`, capped so that that many workers each reading the largest
    store fit in the memory available (None: unknown, not capped); with a note when capped."""
    need = WORKER_BASE_BYTES + WORKER_BYTES_PER_STORE_BYTE * largest_store
    if available is None or jobs * need <= available:
        return jobs, None
    fit = max(1, int(available // need))
    return fit, (
        f"{jobs} at a time capped at {fit}: a worker needs about {need / 1e6:.0f} MB (the largest store "
        f"{largest_store / 1e6:.0f} MB) and {available / 1e6:.0f} MB are available"
    )


# --------------------------------------------------------------------------- a study


def _environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(FILES), autoescape=True, keep_trailing_newline=True)


def _study(results_dir: Path, name: str, out: Path) -> dict:
    """A study's page, its cells' pages and its files (in a worker process, on one core: torch's
    and the BLAS's threads would only contend with the other workers); returns what the index
    shows of it."""
    import torch

    torch.set_num_threads(1)
    with threadpool_limits(1):
        return _study_pages(results_dir, name, out)


def _study_pages(results_dir: Path, name: str, out: Path) -> dict:
    env, committed = _environment(), results_dir / name
    source = resolve(str(committed), results_dir)
    r = study_results(source)
    arrays = read_store(source, lambda df: list(df[df.status == "ok"].run_id)).arrays
    d = out / "studies" / r.name
    (d / "cells").mkdir(parents=True)
    files = _copy_files(committed, d)
    # the figures' captions and files, planned, not drawn: the figures are the committed report's
    drawn = [(p.caption, p.path) for p in figure_plans(r) if (committed / p.path).is_file()]
    for _, rel in drawn:
        (d / rel).parent.mkdir(exist_ok=True)
        shutil.copy(committed / rel, d / rel)
    by_stem = {Path(rel).stem: (c, rel) for c, rel in drawn}
    cells = _cells(r)
    for i, (key, runs) in enumerate(cells):
        _cell_page(env, r, key, runs, arrays, f"c{i}", d / "cells")
    crumbs = [(r.name, "index.html")]
    page = env.get_template("study.html.j2").render(
        title=r.name,
        root="../../",
        crumbs=crumbs,
        name=r.name,
        question=r.question,
        primary_label=METRIC_LABELS[r.primary],
        strip=_strip(r, cells),
        cell_header=["cell", "runs", "ok", f"median {METRIC_LABELS[r.primary]}", "best seed", "worst seed"],
        cell_rows=[_cell_row(r, key, runs, f"c{i}") for i, (key, runs) in enumerate(cells)],
        files=files,
        report=_report_html(r, by_stem, cells),
    )
    (d / "index.html").write_text(page)
    stem = glance.figure_stem(list(by_stem), tables.cell_axes(r.runs))  # the report's own rule
    headline = by_stem.get(stem) if stem else None
    return {
        "name": r.name,
        "question": r.question,
        "description": r.description,
        "glance": r.glance,
        "headline": {"caption": headline[0], "path": headline[1]} if headline else None,
        "n_runs": len(r.runs),
    }


def _copy_files(committed: Path, d: Path) -> list[str]:
    """The committed report's CSV and LaTeX tables, beside the study's page (none without one)."""
    names = sorted(p.name for p in (committed / "tables").glob("*") if p.suffix in (".csv", ".tex"))
    if names:
        (d / "tables").mkdir()
        for n in names:
            shutil.copy(committed / "tables" / n, d / "tables" / n)
    return names


def _report_html(r: StudyResults, by_stem: dict[str, tuple[str, str]], cells: list[tuple[dict, pd.DataFrame]]) -> str:
    """The report's Markdown, made from the results object, as HTML: headings one level down (the
    page has its own h1), images with their captions as alt text, and in every table that names a
    cell (a column per axis of the study), each row's first entry a link to that cell's page."""
    lines = report_lines(r, by_stem)
    alt = {rel: caption for caption, rel in by_stem.values()}
    lines = [re.sub(r"^!\[[^\]]*\]\(([^)]+)\)$", lambda m: f"![{alt.get(m[1], m[1])}]({m[1]})", x) for x in lines]
    lines = [("#" + x) if x.startswith("#") else x for x in lines]
    md = MarkdownIt("commonmark").enable("table")
    tokens = md.parse("\n".join(lines))
    _link_rows(tokens, tables.varying_axes(r.runs), cells)
    text = md.renderer.render(tokens, md.options, {})
    return re.sub(r'href="(?!https?:|#)([^"]+)"', lambda m: _local_href(m[1]), text)


def _same(text: object) -> str:
    """An axis value as a table prints it, made comparable: a number at the 3 significant figures
    the report's tables print (tables.sci), a pivoted column's "0.0" and a row's "0" alike."""
    try:
        return f"{float(str(text)):.3g}"
    except ValueError:
        return str(text)


def _link_rows(tokens: list[Token], axes: list[str], cells: list[tuple[dict, pd.DataFrame]]) -> None:
    """Link the report's tables to the cell pages, in place: in a table with a column per axis,
    each body row's first entry; in a pivoted one (one axis spread over columns "axis=value"),
    each of those entries. A row links where its values are exactly one cell's."""
    pages: dict[tuple[str, ...], str] = {}
    for i, (key, _) in enumerate(cells):
        k = tuple(_same(key[a]) for a in axes)
        pages[k] = "" if k in pages else f"cells/c{i}.html"  # "" : two cells print alike, no link
    header: list[str] = []
    row: list[Token] = []
    part = ""
    for tok in tokens:
        if tok.type in ("thead_open", "tbody_open"):
            part = tok.type[:5]
        elif tok.type == "tr_open":
            row = []
        elif tok.type == "inline" and part:
            row.append(tok)
        elif tok.type == "tr_close" and part == "thead":
            header = [c.content for c in row]
        elif tok.type == "tr_close" and part == "tbody" and len(row) == len(header):
            _link_row(header, row, axes, pages)
        elif tok.type == "table_close":
            part, header = "", []


def _link_row(header: list[str], row: list[Token], axes: list[str], pages: dict[tuple[str, ...], str]) -> None:
    """One body row's links (see _link_rows)."""
    known = {a: _same(row[header.index(a)].content) for a in axes if a in header}
    if len(known) == len(axes):
        _link(row[0], pages.get(tuple(known[a] for a in axes)))
        return
    missing = [a for a in axes if a not in known]
    if len(missing) != 1:
        return
    for entry, h in zip(row, header):
        axis, _, value = h.partition("=")
        if axis == missing[0] and value:
            _link(entry, pages.get(tuple(known.get(a, _same(value)) for a in axes)))


def _link(entry: Token, href: str | None) -> None:
    """A table entry's text made a link to href (nothing without one)."""
    if href and entry.children:
        entry.children = [Token("link_open", "a", 1, attrs={"href": href}), *entry.children]
        entry.children.append(Token("link_close", "a", -1))


def _local_href(target: str) -> str:
    """A report's relative link, which points into the results directory: kept for the study's own
    tables and figures (copied beside the page) and its cell pages, else an anchor to the report."""
    return f'href="{target}"' if target.startswith(("tables/", "figures/", "cells/")) else 'href="#report"'


def _cells(r: StudyResults) -> list[tuple[dict, pd.DataFrame]]:
    """Every cell of the study (every varying axis but seed), in sorted order, with its runs."""
    axes = tables.varying_axes(r.runs)
    out = []
    for key, g in r.runs.groupby(axes, sort=True, dropna=False):
        out.append((dict(zip(axes, key if isinstance(key, tuple) else (key,))), g.sort_values("seed")))
    return out


def _describe(key: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in key.items())


def _best_worst(r: StudyResults, runs: pd.DataFrame) -> tuple[str | None, str | None]:
    ok = runs[runs.status == "ok"].dropna(subset=[r.primary])
    if ok.empty:
        return None, None
    return ok.loc[ok[r.primary].idxmin(), "run_id"], ok.loc[ok[r.primary].idxmax(), "run_id"]


def _cell_row(r: StudyResults, key: dict, runs: pd.DataFrame, slug: str) -> dict:
    ok = runs[runs.status == "ok"]
    best, worst = _best_worst(r, runs)
    seed = lambda rid: "" if rid is None else str(int(runs.loc[runs.run_id == rid, "seed"].iloc[0]))
    median = float(ok[r.primary].median()) if len(ok) else math.nan
    values = [_describe(key), len(runs), len(ok), tables.sci(median), seed(best), seed(worst)]
    return {"slug": slug, "cells": values}


# --------------------------------------------------------------------------- a cell


def drawn_runs(r: StudyResults, runs: pd.DataFrame, arrays: dict, most: int = MAX_DRAWN) -> list[str]:
    """The runs a cell page draws: every run with stored arrays, or where more than `most` have
    them, `most` of them at evenly spaced ranks by the primary metric (the best and the worst
    always among them), runs without the metric after; in the cell's run order."""
    have = runs[runs.run_id.isin(list(arrays))]
    if len(have) <= most:
        return list(have.run_id)
    ranked = have.sort_values([r.primary, "seed"], na_position="last", kind="stable")
    picks = np.unique(np.linspace(0, len(ranked) - 1, most).round().astype(int))
    chosen = set(ranked.run_id.iloc[picks])
    return [rid for rid in have.run_id if rid in chosen]


def _cell_page(env, r: StudyResults, key: dict, runs: pd.DataFrame, arrays: dict, slug: str, d: Path) -> None:
    best, worst = _best_worst(r, runs)
    label = lambda row: f"seed {int(row.seed)}, run {row.run_id}"
    drawn = set(drawn_runs(r, runs, arrays))
    series = [
        (label(row), arrays[row.run_id], "best" if row.run_id == best else "worst" if row.run_id == worst else "")
        for row in runs.itertuples()
        if row.run_id in drawn
    ]
    n_stored = int(runs.run_id.isin(list(arrays)).sum())
    shown = (
        f"All {len(series)} runs with stored predictions are drawn."
        if len(series) == n_stored
        else f"{len(series)} of the {n_stored} runs with stored predictions are drawn, at evenly spaced ranks by "
        f"{METRIC_LABELS[r.primary]} (the best and the worst among them); the table lists every run."
    )
    target = get_target(str(runs.target.iloc[0]))
    grid = plot_grid()
    header = ["seed", "status", *[METRIC_LABELS[m] for m in RUN_TABLE_METRICS], "wall s", "engine", "run"]
    rows = []
    for row in runs.itertuples():
        values = [int(row.seed), row.status, *[tables.sci(getattr(row, m)) for m in RUN_TABLE_METRICS]]
        values += [f"{row.wall_s:.2f}" if pd.notna(row.wall_s) else "", row.engine, row.run_id]
        mark = "best" if row.run_id == best else "worst" if row.run_id == worst else ""
        rows.append({"run_id": row.run_id, "mark": mark, "cells": values})
    weight = float(runs.deriv_weight.iloc[0])
    page = env.get_template("cell.html.j2").render(
        title=f"{r.name}: {_describe(key)}",
        root="../../../",
        crumbs=[(r.name, "../index.html")],
        study=r.name,
        cell=_describe(key),
        n=len(runs),
        n_ok=int((runs.status == "ok").sum()),
        best=best or "",
        worst=worst or "",
        primary_label=METRIC_LABELS[r.primary],
        fit_f=_lines_svg("f", grid, [(n, a[1]["f"], m) for n, a, m in series], target.f(grid)),
        fit_df=_lines_svg("f′", grid, [(n, a[1]["df"], m) for n, a, m in series], target.df(grid)),
        curves=_curves_svg([(n, a[0], m) for n, a, m in series], weight),
        shown=shown,
        header=header,
        rows=rows,
    )
    (d / f"{slug}.html").write_text(page)


# --------------------------------------------------------------------------- SVG


@dataclass(frozen=True)
class _Scale:
    lo: float
    hi: float
    log: bool = False

    def __call__(self, v, size: float):
        """A value (or an array of them, clipped to the scale's range) in plot units from 0 to size."""
        v = np.clip(np.asarray(v, float), self.lo, self.hi)
        a, b, v = (math.log10(self.lo), math.log10(self.hi), np.log10(v)) if self.log else (self.lo, self.hi, v)
        return (v - a) / ((b - a) or 1.0) * size

    @classmethod
    def of(cls, values: np.ndarray, log: bool = False) -> _Scale:
        v = values[np.isfinite(values) & ((values > 0) if log else True)]
        if not len(v):
            return cls(1.0, 10.0, log) if log else cls(0.0, 1.0)
        return cls(float(v.min()), float(v.max()), log)


def _svg(title: str, body: list[str], xlabel: str, ylabel: str, ticks: list[str]) -> str:
    """An SVG plot: a labelled frame around `body` (already in plot coordinates)."""
    label = html.escape(title)
    return "\n".join(
        [
            f'<svg role="img" aria-label="{label}" viewBox="0 0 {W + PAD + 10} {H + PAD + 10}" width="{W + PAD + 10}">',
            f"<title>{label}</title>",
            f'<g transform="translate({PAD},10)">',
            f'<rect x="0" y="0" width="{W}" height="{H}" fill="none" stroke="#999"/>',
            *body,
            *ticks,
            f'<text x="{W / 2}" y="{H + 34}" text-anchor="middle">{html.escape(xlabel)}</text>',
            f'<text transform="translate(-50,{H / 2}) rotate(-90)" text-anchor="middle">{html.escape(ylabel)}</text>',
            "</g></svg>",
        ]
    )


def _round_values(lo: float, hi: float) -> list[float]:
    """Some six round numbers within [lo, hi], as matplotlib's axes pick them."""
    return [v for v in MaxNLocator(6).tick_values(lo, hi) if lo <= v <= hi]


def _xticks(lo: float, hi: float) -> list[str]:
    """Round-number labels under the frame of a plot whose x runs linearly from lo to hi."""
    x = _Scale(lo, hi)
    return [
        f'<text x="{x(v, W):.1f}" y="{H + 14}" text-anchor="middle">{tables.sci(v)}</text>'
        for v in _round_values(lo, hi)
    ]


def _yticks(scale: _Scale) -> list[str]:
    """Tick labels: on a log scale the powers of ten, and 2 and 5 times them where the scale spans
    less than three decades; else some six round numbers."""
    if scale.log:
        lo, hi = math.floor(math.log10(scale.lo)), math.ceil(math.log10(scale.hi))
        steps = (1, 2, 5) if hi - lo <= 3 else (1,)
        values = [m * 10.0**k for k in range(lo, hi + 1) for m in steps]
        values = [v for v in values if scale.lo <= v <= scale.hi]
    else:
        values = _round_values(scale.lo, scale.hi)
    out = []
    for v in values:
        y = H - scale(v, H)
        out.append(f'<text x="-4" y="{y + 4:.1f}" text-anchor="end">{tables.sci(v)}</text>')
    return out


def _polyline(xs: np.ndarray, ys: np.ndarray, name: str, style: str) -> str:
    """A line through the finite points as an SVG path in whole pixels (a 640 x 260 plot shows no
    finer step), each step relative to the last: a few characters a point, so that hundreds of
    lines keep a site small. A non-finite value breaks the line."""
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    ok = np.isfinite(xs) & np.isfinite(ys)
    px, py = np.round(np.where(ok, xs, 0)).astype(int), np.round(np.where(ok, ys, 0)).astype(int)
    finite = np.flatnonzero(ok)
    segments = np.split(finite, np.flatnonzero(np.diff(finite) != 1) + 1) if len(finite) else []
    parts = []
    for seg in segments:
        steps = " ".join(f"{px[b] - px[a]} {py[b] - py[a]}" for a, b in zip(seg, seg[1:]))
        parts.append(f"M{px[seg[0]]} {py[seg[0]]}" + (f"l{steps}" if steps else ""))
    title = html.escape(name)
    d = "".join(parts)
    return f'<path d="{d}" fill="none" {style} data-run="{title}"><title>{title}</title></path>'


MARK_STYLE = {"best": 'stroke="#1a7f37" stroke-width="2"', "worst": 'stroke="#c62828" stroke-width="2"'}
PLAIN_STYLE = 'stroke="#9e9e9e" stroke-width="1" stroke-opacity="0.6"'


def _lines_svg(name: str, grid: np.ndarray, series: list[tuple[str, np.ndarray, str]], truth: np.ndarray) -> str:
    """The fits of every run on the plotting grid, marked runs last (on top), the truth dashed."""
    scale = _Scale.of(np.concatenate([truth, *[s for _, s, _ in series]]) if series else truth)
    keep = slice(None, None, FIT_STEP)
    grid, truth = grid[keep], truth[keep]
    sx = lambda g: (g - grid[0]) / (grid[-1] - grid[0]) * W
    sy = lambda v: H - scale(v, H)
    ordered = sorted(series, key=lambda t: bool(t[2]))  # the marked runs last, on top
    body = [_polyline(sx(grid), sy(s[keep]), n, MARK_STYLE.get(m, PLAIN_STYLE)) for n, s, m in ordered]
    body.append(_polyline(sx(grid), sy(truth), "the truth", 'stroke="black" stroke-dasharray="5,4"'))
    ticks = _yticks(scale) + _xticks(float(grid[0]), float(grid[-1]))
    return _svg(f"{name} of every run of the cell and the truth", body, "x", name, ticks)


def _curves_svg(series: list[tuple[str, dict, str]], weight: float) -> str:
    """Each run's validation loss against its recorded epochs (log scale)."""
    losses = [
        (n, np.asarray(c["epoch"], float), np.asarray(c["val_f"], float) + weight * np.asarray(c["val_df"], float), m)
        for n, c, m in series
    ]
    if not losses:
        return "<p>No stored curves.</p>"
    scale = _Scale.of(np.concatenate([v for _, _, v, _ in losses]), log=True)
    last = max(float(e.max()) for _, e, _, _ in losses if len(e)) or 1.0
    body = []
    for n, e, v, m in sorted(losses, key=lambda t: bool(t[3])):
        pick = np.unique(np.linspace(0, len(e) - 1, min(len(e), MAX_CURVE_POINTS)).round().astype(int))
        e, v = e[pick], v[pick]
        ys = np.where((v > 0) & np.isfinite(v), H - scale(np.where(v > 0, v, scale.lo), H), np.nan)
        body.append(_polyline(e / last * W, ys, n, MARK_STYLE.get(m, PLAIN_STYLE)))
    return _svg("validation loss of every run", body, "epoch", "validation loss", _yticks(scale) + _xticks(0.0, last))


def _strip(r: StudyResults, cells: list[tuple[dict, pd.DataFrame]]) -> str:
    """Every ok run's primary metric, a column per cell (log scale); each point links to its cell."""
    ok = r.runs[(r.runs.status == "ok") & (r.runs[r.primary] > 0)]
    if ok.empty:
        return "<p>No ok run.</p>"
    scale = _Scale.of(ok[r.primary].to_numpy(float), log=True)
    step = W / max(1, len(cells))
    body = []
    for i, (key, runs) in enumerate(cells):
        for row in runs[(runs.status == "ok") & (runs[r.primary] > 0)].itertuples():
            x = (i + 0.5) * step + (hash_seed(int(row.seed)) - 0.5) * step * 0.6
            y = H - scale(float(getattr(row, r.primary)), H)
            name = html.escape(
                f"{_describe(key)}, seed {int(row.seed)}, run {row.run_id}: {tables.sci(getattr(row, r.primary))}"
            )
            body.append(
                f'<a href="cells/c{i}.html"><circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="#0b57a3" fill-opacity="0.6" '
                f'data-run="{name}"><title>{name}</title></circle></a>'
            )
    return _svg(
        f"{METRIC_LABELS[r.primary]} of every run by cell",
        body,
        "cell (see the table)",
        METRIC_LABELS[r.primary],
        _yticks(scale),
    )


def hash_seed(seed: int) -> float:
    """A fixed horizontal offset in [0, 1) per seed (the golden-ratio sequence): points of one cell
    spread out the same way on every page."""
    return (seed * 0.6180339887498949) % 1.0


# --------------------------------------------------------------------------- comparisons and the log


COMPARE_COLUMNS = [
    "activation",
    "metric",
    "n_matched",
    "median_ratio_b_a",
    "ratio_lo",
    "ratio_hi",
    "paired",
    "unpaired",
    "verdict",
]


def _comparison(env, path: Path, results_dir: Path, out: Path) -> dict:
    """A comparison's page: its rows, the largest shift first; what the index says of it."""
    rows = pd.read_csv(path)
    name = str(path.parent.relative_to(results_dir))
    slug = name.replace("/", "--")
    axes = [c for c in rows.columns if c not in COMPARE_COLUMNS and c in CONFIG_FIELDS]
    shift = np.abs(np.log(rows.median_ratio_b_a.astype(float).where(rows.median_ratio_b_a > 0)))
    rows = rows.assign(_shift=shift).sort_values("_shift", ascending=False, na_position="last")
    header = [*axes, *[c for c in COMPARE_COLUMNS if c in rows.columns]]
    shown = [[_fmt(row[c], c) for c in header] for _, row in rows.iterrows()]
    (out / "comparisons").mkdir(exist_ok=True)
    what = f"Two stores matched run by run ({path.parent.parent.name}: `{path.parent.name}`)."
    page = env.get_template("comparison.html.j2").render(
        title=name,
        root="../",
        crumbs=[],
        name=name,
        what=what,
        header=[h.replace("_", " ") for h in header],
        rows=shown,
    )
    (out / "comparisons" / f"{slug}.html").write_text(page)
    counts = rows.verdict.value_counts() if "verdict" in rows else pd.Series(dtype=int)
    return {
        "slug": slug,
        "name": name,
        "study": path.parent.parent.name,
        "verdicts": ", ".join(f"{n} {v}" for v, n in counts.items()),
    }


def _fmt(v: object, column: str) -> str:
    if isinstance(v, float) and column not in ("n_matched",):
        return tables.sci(v) if np.isfinite(v) else ""
    if column == "metric" and v in METRICS:
        return METRIC_LABELS[str(v)]
    return str(v)


PALETTE = ("#0b57a3", "#c62828", "#1a7f37", "#8e44ad", "#e67e22", "#00838f", "#6d4c41", "#ad1457")


def _benchmarks(env, log: Path | None, entries: list[Entry], out: Path) -> None:
    """The performance log's page: its entries, and per benchmark a plot of each series of ratios
    over the dates (ratios of one benchmark are comparable with each other, not across benchmarks:
    each measures its own workload)."""
    kinds = list(dict.fromkeys(e.benchmark for e in entries if e.ratios))
    plots_ = [_ratio_plot(kind, [e for e in entries if e.benchmark == kind and e.ratios]) for kind in kinds]
    page = env.get_template("benchmarks.html.j2").render(
        title="Performance log",
        root="",
        crumbs=[],
        source=log.name if log is not None else None,
        entries=entries,
        plots=plots_,
    )
    (out / "benchmarks.html").write_text(page)


def _ratio_plot(kind: str, entries: list[Entry]) -> dict:
    """One benchmark's ratios over its dates (log scale), a coloured line per series; each point
    titled with its date, series, value, machine and version."""
    series = list(dict.fromkeys(name for e in entries for name in e.ratios))
    values = np.array([v for e in entries for v in e.ratios.values()], float)
    scale = _Scale(float(values.min()) / 1.3, float(values.max()) * 1.3, log=True)
    step = W / max(1, len(entries))  # a position per measurement, in the log's order: a day may hold two
    xs = [(i + 0.5) * step for i in range(len(entries))]
    body = [
        f'<text x="{x:.1f}" y="{H + 14}" text-anchor="middle">{e.date.isoformat()[5:]}</text>'
        for x, e in zip(xs, entries)
    ]
    for name, colour in zip(series, _colours(len(series))):
        points = [(x, H - scale(e.ratios[name], H), e) for x, e in zip(xs, entries) if name in e.ratios]
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py, _ in points)
        body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        for px, py, e in points:
            tip = f"{e.date.isoformat()}, {name}: {e.ratios[name]:g}x ({e.machine}{', version ' + e.version if e.version else ''})"
            tip = html.escape(tip)
            body.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="4" fill="{colour}" data-run="{tip}"><title>{tip}</title></circle>'
            )
    what = "dense LM time over Gauss-Newton time" if "refine" in kind else "throughput over the reference engine's"
    title = f"{kind}: ratios by measurement ({what})"
    svg = _svg(title, body, "measurement, by date (month-day)", "ratio (log scale)", _yticks(scale))
    return {
        "kind": kind,
        "what": what,
        "svg": svg,
        "legend": list(zip(series, _colours(len(series)))),
        "n": len(entries),
    }


def _colours(n: int) -> list[str]:
    return [PALETTE[i % len(PALETTE)] for i in range(n)]
