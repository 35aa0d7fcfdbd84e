"""Figures. Each panel function takes precomputed numbers and `ax=None` (a new figure only when
no axes are given) and returns the axes; figure functions lay panels out and return the figure.
Nothing here computes a statistic."""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes

from ..analysis.baselines import AAA, CHEBYSHEV, FLOATER_HORMANN, SMOOTHING, at_floor
from ..problem.activations import ACTIVATIONS
from ..problem.vocabulary import METRIC_LABELS

Color = str | tuple[float, ...]  # a matplotlib colour: a name, or an RGB(A) tuple


GREY = 7  # seaborn's 10-colour palettes put grey here: the baselines' colour, no activation's


def _no_grey(name: str) -> list[Color]:
    return [c for i, c in enumerate(sns.color_palette(name, 10)) if i != GREY]


class _Palette(dict):
    """Activation -> colour: the registry's in order (colorblind palette, grey left out), a formula
    activation a colour of its own from a stable digest of its name (the same in every figure; the
    dark palette, grey left out)."""

    def __missing__(self, name: str) -> Color:
        extra = _no_grey("dark")
        return extra[int(hashlib.sha256(name.encode()).hexdigest(), 16) % len(extra)]


PALETTE = _Palette(zip(ACTIVATIONS, _no_grey("colorblind")))
TRUTH = "black"
FLOOR = 1e-12  # pointwise errors are drawn on a log axis; exact zeros are clipped to this


def _ax(ax: Axes | None) -> Axes:
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3.5))
    return ax


_SAVING = [True]  # drawing(False): a report's text and tables without its figures
WEB_FORMAT = "svg"  # the figure a page shows (report.md, the site); beside it a PDF for LaTeX
# Identical files from identical figures: SVG element ids are hashes salted with this, not random
plt.rcParams["svg.hashsalt"] = "runge-bench"


@contextlib.contextmanager
def drawing(on: bool):
    """Within it, figures are laid out and written (on), or only closed (finish() and save() skip
    their work): tests that compare a report's text and tables with the committed ones skip the
    slowest part of a report, rendering."""
    _SAVING.append(on)
    try:
        yield
    finally:
        _SAVING.pop()


def drawing_on() -> bool:
    """Whether figures are drawn here (outside any drawing(False))."""
    return _SAVING[-1]


def finish(fig: plt.Figure, **layout) -> plt.Figure:
    """Lay a figure out (tight_layout with `layout`), as every figure here is before it is saved;
    nothing to do when nothing is drawn (drawing(False))."""
    if _SAVING[-1]:
        fig.tight_layout(**layout)
    return fig


def save(fig: plt.Figure, stem: Path) -> list[Path]:
    """Write stem.svg and stem.pdf without dates or random ids, so reruns give identical files. SVG
    (text drawn as paths: the same look in every browser, whatever its fonts) rather than PNG: a
    page zooms it without blur, at about the PNG's size (1.35x over the ablation study's figures)."""
    if not _SAVING[-1]:
        plt.close(fig)
        return []
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(f".{WEB_FORMAT}"), stem.with_suffix(".pdf")]
    fig.savefig(paths[0], bbox_inches="tight", metadata={"Date": None})
    fig.savefig(paths[1], bbox_inches="tight", metadata={"CreationDate": None, "Producer": None})
    plt.close(fig)
    return paths


# ---------------------------------------------------------------------------------- panels


def fit_panel(
    x: np.ndarray,
    truth: np.ndarray,
    best: np.ndarray,
    all_members: np.ndarray,
    *,
    color: Color,
    label: str,
    ylabel: str,
    ax: Axes | None = None,
) -> Axes:
    """Truth vs the median-seed prediction, with the band spanned by all seeds. all_members (S, P)."""
    ax = _ax(ax)
    ax.fill_between(
        x,
        all_members.min(0),
        all_members.max(0),
        color=color,
        alpha=0.25,
        lw=0,
        label=f"all seeds (n={len(all_members)})",
    )
    ax.plot(x, truth, color=TRUTH, lw=1.2, label="truth")
    ax.plot(x, best, color=color, lw=1.2, ls="--", label=f"{label}, median seed")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7, loc="best", frameon=False)
    return ax


def error_panel(
    x: np.ndarray, errors: np.ndarray, best_errors: np.ndarray, *, color: Color, ylabel: str, ax: Axes | None = None
) -> Axes:
    """Pointwise |error| on a log axis: the median-seed model and the range over seeds."""
    ax = _ax(ax)
    ax.fill_between(
        x, np.maximum(errors.min(0), FLOOR), np.maximum(errors.max(0), FLOOR), color=color, alpha=0.25, lw=0
    )
    ax.plot(x, np.maximum(best_errors, FLOOR), color=color, lw=0.9)
    ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    return ax


def curve_panel(
    epochs: np.ndarray, train: np.ndarray, val: np.ndarray, *, color: Color, title: str, ax: Axes | None = None
) -> Axes:
    """Median and interquartile band over seeds of train (solid) and validation (dashed) loss.
    train, val: (S, E)."""
    ax = _ax(ax)
    for values, ls, name in ((train, "-", "train"), (val, "--", "validation")):
        q25, q50, q75 = np.nanpercentile(values, [25, 50, 75], axis=0)
        ax.fill_between(epochs, q25, q75, color=color, alpha=0.2, lw=0)
        ax.plot(epochs, q50, color=color, ls=ls, lw=1.1, label=f"{name} (median, IQR)")
    ax.set_yscale("log")
    ax.set_title(title, fontsize=9)
    return ax


def distribution_panel(df: pd.DataFrame, metric: str, order: list[str], ax: Axes | None = None) -> Axes:
    """A box per activation with every seed drawn on top, log scale."""
    ax = _ax(ax)
    palette = {a: PALETTE[a] for a in order}
    sns.boxplot(
        data=df,
        x="activation",
        y=metric,
        order=order,
        hue="activation",
        palette=palette,
        ax=ax,
        showfliers=False,
        width=0.5,
        boxprops={"alpha": 0.5},
        legend=False,
        log_scale=True,
    )
    rng = np.random.default_rng(0)  # our own jitter: seaborn's draws from the global generator
    for i, act in enumerate(order):
        y = df.loc[df.activation == act, metric].to_numpy(float)
        ax.scatter(
            i + rng.uniform(-0.15, 0.15, len(y)), y, s=9, color=palette[act], edgecolor="black", linewidth=0.3, zorder=3
        )
    ax.set_xlabel("")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric), fontsize=8)
    return ax


def axis_panel(
    summary: pd.DataFrame, axis: str, metric: str, order: list[str], *, log_x: bool, ax: Axes | None = None
) -> Axes:
    """Median with its order-statistic 95% CI against one axis, a line per activation."""
    ax = _ax(ax)
    for act in order:
        s = summary[(summary.activation == act) & (summary.metric == metric)].sort_values(axis)
        if s.empty:
            continue
        x = s[axis].to_numpy(float)
        err = np.vstack([s["median"] - s["median_lo"], s["median_hi"] - s["median"]]).clip(min=0)
        ax.errorbar(
            x,
            s["median"],
            yerr=np.nan_to_num(err),
            color=PALETTE[act],
            marker="o",
            ms=3.5,
            lw=1.2,
            capsize=2,
            label=act,
        )
    ax.set_yscale("log")
    values = sorted(summary[axis].astype(float).unique())
    if log_x:  # symlog keeps a 0 (e.g. deriv_weight 0) on the axis
        if values[0] <= 0:
            linthresh = min(v for v in values if v > 0)
            ax.set_xscale("symlog", linthresh=linthresh)
            ax.set_xlim(values[0] - 0.3 * linthresh, values[-1] * 1.5)
        else:
            ax.set_xscale("log")
        ax.set_xticks(values, [f"{v:g}" for v in values])
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel(axis)
    ax.set_ylabel(METRIC_LABELS.get(metric, metric), fontsize=8)
    return ax


# --------------------------------------------------------------------------------- figures


def fits_figure(
    x: np.ndarray, truth_f: np.ndarray, truth_df: np.ndarray, members: dict[str, dict[str, np.ndarray]], title: str
) -> plt.Figure:
    """The seed report's Figures 1, 2, 4, 5 with spread: per activation (columns), f and f'
    against the truth, each above its pointwise error. members[act] holds "f", "df" (S, P) and
    "best" (the median seed's row index)."""
    acts = list(members)
    fig, axes = plt.subplots(
        4,
        len(acts),
        figsize=(4.2 * len(acts), 9.5),
        squeeze=False,
        sharex=True,
        sharey="row",
        gridspec_kw={"height_ratios": [3, 1.6, 3, 1.6]},
    )
    for j, act in enumerate(acts):
        m, color, i = members[act], PALETTE[act], members[act]["best"]
        fit_panel(x, truth_f, m["f"][i], m["f"], color=color, label=act, ylabel="f(x)", ax=axes[0, j])
        error_panel(
            x, np.abs(m["f"] - truth_f), np.abs(m["f"][i] - truth_f), color=color, ylabel="|error of f|", ax=axes[1, j]
        )
        fit_panel(x, truth_df, m["df"][i], m["df"], color=color, label=act, ylabel=r"$f'(x)$", ax=axes[2, j])
        error_panel(
            x,
            np.abs(m["df"] - truth_df),
            np.abs(m["df"][i] - truth_df),
            color=color,
            ylabel=r"|error of $f'$|",
            ax=axes[3, j],
        )
        axes[0, j].set_title(act)
        axes[3, j].set_xlabel("x")
    fig.suptitle(title, fontsize=10)
    finish(fig)
    return fig


def curves_figure(curves: dict[str, dict[str, np.ndarray]], title: str) -> plt.Figure:
    """The seed report's Figures 3 and 6 with spread: per activation (rows), total loss, L_f and
    L_f' against epoch. curves[act] holds "epoch" (E,) and (S, E) arrays "train_total",
    "val_total", "train_f", "val_f", "train_df", "val_df"."""
    acts = list(curves)
    fig, axes = plt.subplots(len(acts), 3, figsize=(12, 2.8 * len(acts)), squeeze=False, sharex=True)
    parts = [("total", "total loss L_f + λ·L_f′"), ("f", "L_f = MSE(f)"), ("df", "L_f′ = MSE(f′)")]
    for i, act in enumerate(acts):
        c = curves[act]
        for j, (key, name) in enumerate(parts):
            curve_panel(
                c["epoch"],
                c[f"train_{key}"],
                c[f"val_{key}"],
                color=PALETTE[act],
                title=f"{act}: {name}",
                ax=axes[i, j],
            )
        axes[i, 0].set_ylabel("loss")
    for ax in axes[-1]:
        ax.set_xlabel("epoch")
    axes[0, 0].legend(fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=10)
    finish(fig)
    return fig


def distributions_figure(df: pd.DataFrame, metrics: list[str], order: list[str], title: str) -> plt.Figure:
    fig, axes = plt.subplots(2, 4, figsize=(14, 6.5))
    for ax, metric in zip(axes.flat, metrics):
        distribution_panel(df, metric, order, ax=ax)
    fig.suptitle(title, fontsize=10)
    finish(fig)
    return fig


def axis_figure(summary: pd.DataFrame, axis: str, metrics: list[str], order: list[str], title: str) -> plt.Figure:
    values = summary[axis].astype(float)
    log_x = values.max() / max(values[values > 0].min(), 1e-300) >= 8
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        axis_panel(summary, axis, metric, order, log_x=log_x, ax=ax)
    axes[0, 0].legend(fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=10)
    finish(fig)
    return fig


BASELINE_STYLES = {  # every baseline of baselines.baseline_runs, drawn as a reference line
    "cubic spline": dict(color="0.35", ls="--"),
    "cubic Hermite spline (uses f')": dict(color="0.35", ls=":"),
    CHEBYSHEV: dict(color="0.35", ls="-."),
    FLOATER_HORMANN: dict(color="0.15", ls=(0, (5, 1))),
    AAA: dict(color="0.15", ls=(0, (1, 1, 3, 1))),
    SMOOTHING: dict(color="0.55", ls=(0, (3, 1, 1, 1, 1, 1))),
}


BASELINE_SHORT = {
    "cubic spline": "cubic spline",
    "cubic Hermite spline (uses f')": "Hermite spline",
    CHEBYSHEV: "Chebyshev",
    FLOATER_HORMANN: "Floater-Hormann",
    AAA: "AAA",
    SMOOTHING: "smoothing spline",
}
MAX_DECADES = 1.0  # a baseline further than this below the data is written, not drawn


def _far_note(ax: Axes, far: list[str]) -> None:
    """Baselines too far below the data to share its axis, written under the panel, below its tick
    labels and x label (an annotation the layout makes room for; no data point is covered)."""
    if far:
        ax.annotate(
            "baselines below the axis (median):\n" + "\n".join(far),
            xy=(0.5, 0),
            xycoords="axes fraction",
            xytext=(0, -32 if ax.get_xlabel() else -20),
            textcoords="offset points",
            ha="center",
            va="top",
            fontsize=6,
            color="0.3",
            annotation_clip=False,
        )


def reproduction_figure(
    runs: pd.DataFrame, published: dict[tuple[str, str], float], columns: list[str], order: list[str], title: str
) -> plt.Figure:
    """The seed report's tables against our seeds: a panel per metric column, every seed of each
    activation as a point (log scale), the published single run as a red star. published:
    (activation, column) -> value."""
    fig, axes = plt.subplots(1, len(columns), figsize=(3.3 * len(columns), 3.4))
    rng = np.random.default_rng(0)
    for ax, column in zip(np.atleast_1d(axes), columns):
        acts = [a for a in order if (a, column) in published]
        for i, act in enumerate(acts):
            y = runs.loc[runs.activation == act, column].to_numpy(float)
            ax.scatter(
                i + rng.uniform(-0.12, 0.12, len(y)),
                y,
                s=12,
                color=PALETTE[act],
                edgecolor="black",
                linewidth=0.3,
                zorder=3,
                label="our seeds" if i == 0 else None,
            )
            ax.plot(
                [i - 0.25, i + 0.25],
                [np.median(y)] * 2,
                color="black",
                lw=1.2,
                zorder=4,
                label="our median" if i == 0 else None,
            )
            ax.scatter(
                [i],
                [published[act, column]],
                marker="*",
                s=140,
                color="red",
                edgecolor="black",
                linewidth=0.5,
                zorder=5,
                label="published (one run)" if i == 0 else None,
            )
        ax.set_xticks(range(len(acts)), acts)
        ax.set_xlim(-0.6, len(acts) - 0.4)
        ax.set_yscale("log")
        ax.set_ylabel(METRIC_LABELS.get(column, column), fontsize=8)
    np.atleast_1d(axes)[0].legend(fontsize=6, frameon=False, loc="best")
    fig.suptitle(title, fontsize=10)
    finish(fig)
    return fig


def _value(metric: str, value: float) -> str:
    """A baseline's error as a figure writes it: "≤" where it sits at its reporting floor."""
    return f"≤{value:.1e}" if at_floor(metric, value) else f"{value:.1e}"


def baseline_lines(baselines: pd.DataFrame, metric: str, ax: Axes, *, vertical: bool = False) -> None:
    """Median over seeds of each baseline as a labelled reference line where it lies within
    MAX_DECADES of the data already drawn; one further below (the classical floor is often 1e3-1e8
    under the networks) is written in the panel instead, so that the data fill the axis."""
    lo = (ax.get_xlim() if vertical else ax.get_ylim())[0]
    far = []
    for name, style in BASELINE_STYLES.items():
        v = baselines.loc[baselines.baseline == name, metric].dropna()  # NaN: a fit not reported
        if v.empty:
            continue
        value = float(np.median(v))
        if value < lo / 10**MAX_DECADES:
            far.append(f"{BASELINE_SHORT[name]}: {_value(metric, value)}")
            continue
        draw = ax.axvline if vertical else ax.axhline
        draw(value, lw=1.0, label=f"baseline: {name}", **style)
    _far_note(ax, far)


def baseline_points(baselines: pd.DataFrame, x_metric: str, y_metric: str, ax: Axes) -> None:
    """Each baseline as one grey point (median over seeds of both metrics), labelled, where it lies
    within MAX_DECADES of the data on both axes; else written in the panel (baseline_lines)."""
    (x_lo, _), (y_lo, _) = ax.get_xlim(), ax.get_ylim()
    far = []
    for marker, (name, style) in zip("XPDsv^", BASELINE_STYLES.items(), strict=True):
        b = baselines[baselines.baseline == name].dropna(subset=[x_metric, y_metric])
        if b.empty:
            continue
        x, y = float(np.median(b[x_metric])), float(np.median(b[y_metric]))
        if x < x_lo / 10**MAX_DECADES or y < y_lo / 10**MAX_DECADES:
            far.append(f"{BASELINE_SHORT[name]}: ({_value(x_metric, x)}, {_value(y_metric, y)})")
            continue
        ax.plot(x, y, marker=marker, color=style["color"], ms=6, ls="none", label=f"baseline: {name}")
    _far_note(ax, far)


def tradeoff_panel(
    points: pd.DataFrame, x_metric: str, y_metric: str, order: list[str], ax: Axes | None = None
) -> Axes:
    """f error against f' error, one point per (activation, deriv_weight), joined in weight order.
    points: columns activation, deriv_weight, x_metric, y_metric (medians over seeds)."""
    ax = _ax(ax)
    for act in order:
        p = points[points.activation == act].sort_values("deriv_weight")
        ax.plot(p[x_metric], p[y_metric], color=PALETTE[act], marker="o", ms=4, lw=1, label=act)
        for _, row in p.iterrows():
            ax.annotate(
                f"λ={row.deriv_weight:g}",
                (row[x_metric], row[y_metric]),
                fontsize=6,
                xytext=(3, 3),
                textcoords="offset points",
                color=PALETTE[act],
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(METRIC_LABELS.get(x_metric, x_metric))
    ax.set_ylabel(METRIC_LABELS.get(y_metric, y_metric))
    return ax


def heatmap_panel(
    table: pd.DataFrame, metric: str, ax: Axes | None = None, limits: tuple[float, float] | None = None
) -> Axes:
    """Median error over the table's rows x columns (e.g. activation x width), log colour scale,
    annotated. limits: the colour scale's (min, max), shared by panels to be compared; default:
    the table's own range."""
    from matplotlib.colors import LogNorm

    ax = _ax(ax)
    values = table.to_numpy(float)
    finite = values[np.isfinite(values) & (values > 0)]
    if limits is None and finite.size:
        limits = (float(finite.min()), float(finite.max()))
    norm = LogNorm(vmin=limits[0], vmax=limits[1]) if limits else None
    cmap = matplotlib.colormaps["viridis_r"]
    # matplotlib's mesh, not seaborn's heatmap, which draws the whole figure once per panel to check
    # its tick labels (20 panels: 12 s of a report, measured); laid out as seaborn's: the first row
    # on top, cells centred on their ticks, the annotation dark on light cells and white on dark
    # ones by the colour's luminance.
    mesh = ax.pcolormesh(np.ma.masked_invalid(np.where(values > 0, values, np.nan)), cmap=cmap, norm=norm)
    ax.set_xticks(np.arange(values.shape[1]) + 0.5, labels=[str(c) for c in table.columns])
    ax.set_yticks(
        np.arange(values.shape[0]) + 0.5, labels=[str(i) for i in table.index], rotation="vertical", va="center"
    )
    ax.set_xlim(0, values.shape[1])
    ax.set_ylim(values.shape[0], 0)
    ax.figure.colorbar(mesh, ax=ax, label=METRIC_LABELS.get(metric, metric))
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v) and v > 0:
            r, g, b, _ = cmap(norm(v) if norm else 0.5)
            light = 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.408
            ax.text(j + 0.5, i + 0.5, f"{v:.1e}", ha="center", va="center", fontsize=7, color=".15" if light else "w")
    ax.set_xlabel(table.columns.name or "")
    ax.set_ylabel(table.index.name or "")
    ax.set_title(METRIC_LABELS.get(metric, metric), fontsize=9)
    return ax


def cd_panel(methods: list[str], mean_ranks: list[float], cd: float, title: str, ax: Axes | None = None) -> Axes:
    """A critical-difference diagram (Demsar 2006): mean ranks on an axis, the Nemenyi CD as a bar,
    and a thick line joining methods whose ranks differ by less than CD (not significantly)."""
    ax = _ax(ax)
    k = len(methods)
    order = np.argsort(mean_ranks)
    ranks = np.asarray(mean_ranks)[order]
    names = [methods[i] for i in order]
    ax.set_xlim(0.8, k + 0.2)
    ax.set_ylim(-2.1, 1.2)
    ax.text(
        (1 + k) / 2,
        -2.05,
        "axis: mean rank over blocks (1 = lowest error)",
        ha="center",
        va="bottom",
        fontsize=7,
        color="0.3",
    )
    ax.hlines(0, 1, k, color="black", lw=1)
    for r in range(1, k + 1):
        ax.vlines(r, -0.05, 0.05, color="black", lw=1)
        ax.text(r, 0.12, str(r), ha="center", fontsize=7)
    for i, (name, r) in enumerate(zip(names, ranks)):
        y = -0.4 - 0.3 * i
        ax.plot([r, r], [0, y], color=PALETTE.get(name, "black"), lw=1)
        ax.plot(r, 0, "o", color=PALETTE.get(name, "black"), ms=5)
        ax.text(r + 0.05, y, f"{name} ({r:.2f})", fontsize=8, va="center")
    ax.plot([1, 1 + cd], [0.7, 0.7], color="black", lw=2)
    ax.text(1 + cd / 2, 0.8, f"CD = {cd:.2f}", ha="center", fontsize=7)
    # Maximal runs of consecutive methods spanning less than CD: not significantly different.
    level = 0
    for i in range(k):
        j = i
        while j + 1 < k and ranks[j + 1] - ranks[i] < cd:
            j += 1
        if j > i and not (i > 0 and ranks[j] - ranks[i - 1] < cd):
            ax.plot([ranks[i] - 0.04, ranks[j] + 0.04], [0.3 + 0.12 * level] * 2, color="black", lw=3)
            level += 1
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    return ax


def floor_panel(floor: pd.DataFrame, regimes: list[str], order: list[str], title: str, ax: Axes | None = None) -> Axes:
    """Network / best-baseline median error ratio (log) per regime (x) and activation (lines);
    floor rows carry a "regime" label column. The line at 1 is the classical floor."""
    ax = _ax(ax)
    x = np.arange(len(regimes))
    for act in order:
        f = floor[floor.activation == act].set_index("regime").reindex(regimes)
        ax.plot(x, f["ratio_to_best"], marker="o", ms=4, lw=1.2, color=PALETTE[act], label=act)
    ax.axhline(1.0, color="grey", lw=1, ls="--", label="best baseline")
    ax.set_yscale("log")
    ax.set_xticks(x, [r.replace(" ", "\n", 1) for r in regimes], fontsize=7)
    ax.set_ylabel("network / best baseline (median)")
    ax.set_title(title, fontsize=9)
    return ax


def target_fits_figure(
    x: np.ndarray,
    truths: dict[str, tuple[np.ndarray, np.ndarray]],
    members: dict[str, dict[str, dict[str, np.ndarray]]],
    title: str,
) -> plt.Figure:
    """Per target (rows): f and f' (columns) of the median-seed model of every activation against
    the truth (thick grey). truths[target] = (f, f') on x; members[target][act] as in fits_figure."""
    targets = list(members)
    fig, axes = plt.subplots(len(targets), 2, figsize=(11, 2.6 * len(targets)), squeeze=False, sharex=True)
    for i, target in enumerate(targets):
        for j, (key, name) in enumerate((("f", "f(x)"), ("df", "f′(x)"))):
            ax = axes[i, j]
            ax.plot(x, truths[target][j], color=TRUTH, lw=2.2, alpha=0.35, label="truth")
            for act, m in members[target].items():
                ax.plot(x, m[key][m["best"]], color=PALETTE[act], lw=1, label=act)
            ax.set_ylabel(name)
            ax.set_title(f"{target}: {name}", fontsize=9)
    axes[0, 0].legend(fontsize=7, frameon=False, ncol=2)
    for ax in axes[-1]:
        ax.set_xlabel("x")
    fig.suptitle(title, fontsize=10)
    finish(fig)
    return fig


def budget_figure(budget: pd.DataFrame, order: list[str], title: str) -> plt.Figure:
    """Expected best validation objective against the number of settings tried, per activation,
    with a band of one standard deviation (of the best of k), on a log axis."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for act in [a for a in order if a in set(budget.activation)]:
        g = budget[(budget.activation == act) & np.isfinite(budget.expected_best)].sort_values("k")
        if g.empty:
            continue
        mean, sd = g.expected_best.to_numpy(float), np.nan_to_num(g.sd.to_numpy(float))
        ax.plot(g.k, mean, marker="o", ms=3, color=PALETTE.get(act), label=act)
        # the best of k is never below the best of all (the last point): the band stops there
        ax.fill_between(g.k, np.clip(mean - sd, mean[-1], None), mean + sd, color=PALETTE.get(act), alpha=0.15)
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("settings tried (k)")
    ax.set_ylabel("expected best validation loss")
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7)
    finish(fig)
    return fig


def _share_panels(
    table: pd.DataFrame,
    by: str,
    x: str,
    order: list[str],
    panel_title,
    xlabel: str,
    ylabel: str,
    title: str,
    panel_size: tuple[float, float] = (3.2, 3.0),
    rows_by: str | None = None,
) -> plt.Figure:
    """One panel per value of `by` (and a row of panels per value of `rows_by`, if given): per
    activation, a step line of the share against `x` (log axis)."""
    keys = list(dict.fromkeys(table[by]))
    row_keys = list(dict.fromkeys(table[rows_by])) if rows_by else [None]
    width, height = panel_size
    fig, axes = plt.subplots(
        len(row_keys), len(keys), figsize=(width * len(keys), height * len(row_keys)), sharey=True, squeeze=False
    )
    for axes_row, row_key in zip(axes, row_keys):
        rows = table if rows_by is None else table[table[rows_by] == row_key]
        for ax, key in zip(axes_row, keys):
            g = rows[rows[by] == key]
            for act in [a for a in order if a in set(g.activation)]:
                ga = g[g.activation == act].sort_values(x)
                ax.step(ga[x], ga.share, where="post", color=PALETTE.get(act), label=act)
            ax.set_xscale("log")
            ax.set_ylim(-0.02, 1.02)
            ax.set_xlabel(xlabel)
            said = panel_title(key, g) if len(g) else str(key)
            ax.set_title(said if rows_by is None else f"{rows_by} {row_key:g}: {said}", fontsize=8)
        axes_row[0].set_ylabel(ylabel)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    finish(fig)
    return fig


def profiles_figure(table: pd.DataFrame, metrics: list[str], order: list[str], title: str) -> plt.Figure:
    """Performance profiles (analysis.profiles), one panel per metric: the share of problems on
    which each activation is within a factor tau of the best, tau on a log axis."""
    table = table[table.metric.isin(metrics)].sort_values("metric", key=lambda m: m.map(metrics.index), kind="stable")
    return _share_panels(
        table,
        "metric",
        "tau",
        order,
        lambda metric, g: f"{METRIC_LABELS[metric]} ({int(g.problems.iloc[0])} problems)",
        "within a factor tau of the best",
        "share of problems",
        title,
    )


def data_profiles_figure(table: pd.DataFrame, order: list[str], title: str) -> plt.Figure:
    """Data profiles (analysis.profiles.data_profiles), one panel per factor 10^k: the share of
    runs whose validation loss has fallen by that factor, against epochs (log axis)."""
    return _share_panels(
        table.sort_values("k", kind="stable"),
        "k",
        "epoch",
        order,
        lambda k, g: f"validation loss down 10^{k}",
        "epoch",
        "share of runs",
        title,
        panel_size=(3.0, 2.9),
        rows_by="deriv_weight" if "deriv_weight" in table else None,  # losses of different objectives apart
    )


VERSUS_MARKERS = ["o", "s", "D", "^", "v", "P", "X", "*"]  # one per cell of the other axes


def _versus_marks(
    ax: Axes, g: pd.DataFrame, cells: pd.DataFrame, axes_names: list[str], acts: list[str], label: bool
) -> None:
    """One panel's ratios (versus_table's rows `g`): per challenger a row, per cell a marker and
    its interval, offset along the row; filled where significant. label: name the cells (the
    first panel's first row) for the legend."""
    for k, (_, cell) in enumerate(cells.iterrows()):
        c = g
        for name in axes_names:
            c = c[c[name] == cell[name]]
        offset = (k - (len(cells) - 1) / 2) * 0.8 / max(len(cells), 1)
        for row, act in enumerate(acts):
            r = c[c.a == act]
            if r.empty:
                continue
            r = r.iloc[0]
            y = row + offset
            sig = bool(r.p_holm < 0.05)
            if np.isfinite(r.ratio_lo):
                ax.plot([r.ratio_lo, r.ratio_hi], [y, y], color=PALETTE[act], lw=1)
            ax.plot(
                [r.ratio],
                [y],
                marker=VERSUS_MARKERS[k % len(VERSUS_MARKERS)],
                ms=4,
                color=PALETTE[act],
                mfc=PALETTE[act] if sig else "white",
                ls="none",
                label=", ".join(f"{n} {cell[n]}" for n in axes_names) if row == 0 and label else None,
            )


def versus_figure(
    versus: pd.DataFrame, metrics: list[str], order: list[str], incumbent: str, columns: str | None, title: str
) -> plt.Figure:
    """Every challenger's error ratio to the incumbent (analysis.zoo.versus_table) per cell: the
    Hodges-Lehmann estimate with its 95% CI, log axis, 1 = as good as the incumbent; one panel
    per metric (rows) and level of `columns` (e.g. deriv_weight), the other axes' cells as
    markers along each challenger's row; filled where the test (Holm over the challengers of the
    cell) says the ratio differs from 1."""
    acts = [a for a in order if a in set(versus.a)]
    levels = list(dict.fromkeys(sorted(versus[columns].unique()))) if columns else [None]
    axes_names = [c for c in versus.columns[: list(versus.columns).index("metric")] if c != columns]
    cells = versus[axes_names].drop_duplicates().sort_values(axes_names) if axes_names else pd.DataFrame([{}])
    markers = VERSUS_MARKERS
    fig, grid = plt.subplots(
        len(metrics),
        len(levels),
        figsize=(3.6 * len(levels), 0.32 * len(acts) * len(metrics) + 1.4),
        sharex=True,
        squeeze=False,
    )
    for i, metric in enumerate(metrics):
        for j, level in enumerate(levels):
            ax = grid[i][j]
            g = versus[versus.metric == metric]
            if columns:
                g = g[g[columns] == level]
            _versus_marks(ax, g, cells, axes_names, acts, label=i == j == 0)
            ax.axvline(1.0, color=PALETTE[incumbent], lw=1, ls="--")
            ax.set_xscale("log")
            ax.set_yticks(range(len(acts)), acts if j == 0 else [""] * len(acts), fontsize=7)
            ax.set_ylim(len(acts) - 0.5, -0.5)
            ax.grid(axis="x", which="major", alpha=0.3)
            head = f"{columns} = {level:g}" if columns else ""
            ax.set_title(f"{METRIC_LABELS[metric]}{', ' + head if head else ''}", fontsize=8)
            if i == len(metrics) - 1:
                ax.set_xlabel(f"error ratio to {incumbent} (HL, 95% CI)", fontsize=8)
    if axes_names:
        handles = [
            plt.Line2D([], [], marker=markers[k % len(markers)], color="grey", mfc="white", ls="none", ms=4)
            for k in range(len(cells))
        ]
        labels = [", ".join(f"{n} {cell[n]}" for n in axes_names) for _, cell in cells.iterrows()]
        handles.append(plt.Line2D([], [], marker="o", color="grey", ls="none", ms=4))
        labels.append("filled: differs from 1 (Holm over the challengers)")
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=9)
    finish(fig, rect=(0, 0.04 if axes_names else 0, 1, 1))
    return fig


def lead_figure(rows: pd.DataFrame, metrics: list[str], a: str, b: str, title: str) -> plt.Figure:
    """The error ratio a/b in each cell one factor away from the reference (rows of
    analysis.sensitivity.order_table for the pair): the Hodges-Lehmann estimate with its 95% CI,
    log axis, one row per factor level (and context), one panel per metric; filled where the
    pair's test is significant. Lines at 1 (no lead) and 10."""
    metrics = [m for m in metrics if m in set(rows.metric)] or sorted(set(rows.metric))

    def label(r) -> str:
        return f"{r.factor}={r.level}" + (f" ({r.context})" if isinstance(r.context, str) and r.context else "")

    labels = list(dict.fromkeys(label(r) for r in rows.itertuples()))  # one row per cell, every panel alike
    at = {name: y for y, name in enumerate(labels)}
    fig, axes = plt.subplots(
        1, len(metrics), figsize=(3.6 * len(metrics), 0.24 * len(labels) + 1.3), sharey=True, squeeze=False
    )
    for ax, metric in zip(axes[0], metrics):
        g = rows[rows.metric == metric]
        for r in g.itertuples():
            y = at[label(r)]
            sig = r.verdict != "inconclusive"
            color = PALETTE[b] if r.ratio > 1 else PALETTE[a]
            if np.isfinite(r.ratio_lo):
                ax.plot([r.ratio_lo, r.ratio_hi], [y, y], color=color, lw=1)
            ax.plot([r.ratio], [y], "o", ms=4, color=color, mfc=color if sig else "white")
        for x, style in ((1.0, "--"), (10.0, ":")):
            ax.axvline(x, color="grey", lw=1, ls=style)
        ax.set_xscale("log")
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set_ylim(len(labels) - 0.5, -0.5)
        ax.grid(axis="x", alpha=0.3)
        ax.set_title(METRIC_LABELS[metric], fontsize=8)
        ax.set_xlabel(f"error ratio {a}/{b} (> 1: {b} lower)", fontsize=8)
    fig.suptitle(title, fontsize=9)
    finish(fig)
    return fig


METHOD_MARKERS = {"adam": "o"}  # a refinement: "s"; a method of stages: "^"
CLASSICAL_STYLES = {"Chebyshev least squares": ("grey", "-"), "AAA": ("grey", "--")}


def frontier_figure(
    cells: pd.DataFrame,
    classical: pd.DataFrame,
    conditions: list[tuple[str, float]],
    metric: str,
    floor: float,
    title: str,
) -> plt.Figure:
    """Median max error against parameters, a panel per target and noise: every activation and
    method of the networks (colour: activation; marker: method) and the classical methods at
    their own number of coefficients (grey lines); the reporting floor dotted."""
    n = len(conditions)
    cols = min(3, n)
    rows_ = -(-n // cols)
    fig, axes = plt.subplots(rows_, cols, figsize=(4.2 * cols, 3.3 * rows_), squeeze=False, sharey=True)
    for ax, (target, noise) in zip(axes.flat, conditions):
        here = cells[(cells.target == target) & (cells.noise == noise)]
        for (act, method), g in here.groupby(["activation", "method"], sort=True):
            g = g.sort_values("n_params")
            marker = METHOD_MARKERS.get(method, "^" if "stages" in method else "s")
            y = np.maximum(g[metric].to_numpy(float), floor)
            ax.plot(g.n_params, y, marker=marker, ms=4, lw=1, color=PALETTE.get(act), label=f"{act}, {method}")
        c = classical[(classical.target == target) & (classical.noise == noise)]
        for method, (color, style) in CLASSICAL_STYLES.items():
            g = c[c.method == method].sort_values("n_params")
            if len(g):
                ax.plot(g.n_params, g[metric], color=color, ls=style, lw=1.2, label=method)
        others = c[~c.method.isin(list(CLASSICAL_STYLES))]
        for method, g in others.groupby("method", sort=True):  # one size each (Floater-Hormann)
            ax.plot(g.n_params, g[metric], marker="*", ms=8, ls="", color="grey", label=method)
        ax.axhline(floor, color="black", ls=":", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        # Least squares of a degree near the number of points blows up: the axis stops at 1e3
        ax.set_ylim(floor / 10, min(ax.get_ylim()[1], 1e3))
        ax.set_title(f"{target}, {'noise ' + format(noise, 'g') if noise else 'clean'}", fontsize=8)
        ax.set_xlabel("parameters (coefficients)", fontsize=7)
        ax.tick_params(labelsize=7)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    axes[0, 0].set_ylabel(f"{METRIC_LABELS[metric]}, median over seeds", fontsize=7)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    for ax in axes.flat[1:n]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    legend_rows = -(-len(seen) // 4)
    fig.legend(list(seen.values()), list(seen.keys()), fontsize=6, loc="lower center", ncol=4, frameon=False)
    fig.suptitle(title, fontsize=9)
    finish(fig, rect=(0, 0.035 * legend_rows / rows_, 1, 1))
    return fig
