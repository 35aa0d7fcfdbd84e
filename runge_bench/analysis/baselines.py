"""Classical approximators on the same data, scored with the same metrics as the networks.

Each baseline sees exactly what a network with the same seed sees: the training points of that
seed's split (x, f(x) and, for the Hermite spline, f'(x)), and is scored on its validation split
and on the dense grid. They put the networks' errors in perspective.

On noisy data (a study's `noise`) a GCV smoothing spline joins them (SMOOTHING). The floor is the
best of them, and the best a numerical analyst would use on clean samples of a smooth function is
rational: Floater-Hormann interpolation (blending degree chosen on the
validation split) and AAA (its number of terms chosen there), both with f′ in closed form
(analysis.rational). A rational target (the Runge family, 1/(1 + a x²)) AAA recovers exactly, to
rounding; the reports say so. Errors below REPORT_FLOOR are rounding, not approximation: a few ulps
of change in the training values move them by 20-180% (f max errors below 1e-12, f′ below 1e-9,
measured) and by more than 0.1% just above 1e-11 (Floater-Hormann on sin 4πx), so no digit of them
would reproduce on another machine; every baseline's error is reported as max(error, floor), and a
value at the floor reads "at or below" it. A rational fit whose result still moves under a few ulps
is not reported (_reproducible).
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import pandas as pd
from numpy.polynomial import Chebyshev
from numpy.polynomial import chebyshev as cheb
from scipy.interpolate import CubicHermiteSpline, CubicSpline, make_smoothing_spline
from scipy.linalg import solve_triangular

from ..engine.metrics import Predictor, errors
from ..problem.data import dense_grid, make_split, n_val, with_noise
from ..problem.targets import Target, get_target, target_order
from ..problem.vocabulary import SPLIT_FIELDS
from . import rational
from .tables import select

# The validation scan for a degree stops at MAX_SCAN_DEGREE: past it, a few ulps of change in the
# training values move the validation loss by more than 1e-4 (relative), past 160 by 1e-2, so a
# choice among higher degrees would be rounding noise (another BLAS, another degree).
MAX_SCAN_DEGREE = 120
# The Chebyshev degree rule (see chosen_degree): validation losses below LOSS_FLOOR count as equal,
# and the smallest degree within DEGREE_FACTOR of the best wins.
LOSS_FLOOR = 1e-12
DEGREE_FACTOR = 2.0
CHEBYSHEV = "chebyshev, degree by validation rule"
DEGREE_RULE = (
    f"the smallest degree whose validation loss MSE(f) + MSE(f') is within {DEGREE_FACTOR:g}x of "
    f"the best degree's (1-{MAX_SCAN_DEGREE}), losses below {LOSS_FLOOR:g} counting as "
    f"{LOSS_FLOOR:g}"
)


# The rational baselines' scans and rule: blending degrees 0..MAX_BLEND, AAA terms 1..MAX_TERMS, the
# smallest whose validation loss is within DEGREE_FACTOR of the best, losses below
# RATIONAL_LOSS_FLOOR counting as equal (f′ RMS 1e-9: rounding moves losses there by < 1e-3).
MAX_BLEND = 8  # past it, on 160 points, one ulp of change in the data moves the fit by 1-500% (measured)
MAX_TERMS = 64
# Above this many training points the rational fits are not made: each scan evaluates every fit at
# the validation points against every node (points x nodes x 2 x 21 per seed) and, for AAA, solves
# an SVD of points x terms per step; 5,000 points take about a second a seed.
RATIONAL_MAX_POINTS = 5000
RATIONAL_LOSS_FLOOR = 1e-18
FLOATER_HORMANN = "Floater-Hormann, blending degree by validation rule"
AAA = "AAA rational, terms by validation rule"
RATIONAL_RULE = (
    f"the smallest blending degree (0-{MAX_BLEND}) or number of terms (1-{MAX_TERMS}) whose validation loss "
    f"is within {DEGREE_FACTOR:g}x of the best, losses below {RATIONAL_LOSS_FLOOR:g} counting as equal"
)
# On noisy data a numerical analyst smooths: a cubic smoothing spline through every training point,
# its penalty chosen by generalised cross-validation (scipy's make_smoothing_spline, Wahba). Fitted
# only where the data are noisy: on clean samples an interpolant is the specialist's choice (and
# the rational ones reach rounding), and a fit costs ~0.2 s a seed on 800 points.
SMOOTHING = "smoothing spline, penalty by GCV (noisy data)"
# Reported errors are at least these (module docstring): the MSE floors are the max floors squared.
REPORT_FLOOR = {"f_max": 1e-10, "df_max": 1e-7, "f_mse": 1e-20, "df_mse": 1e-14}


def report_floor(metric: str) -> float:
    """The reporting floor of a metric name (val_f_max, grid_df_mse, ...)."""
    return REPORT_FLOOR[metric.split("_", 1)[1]]


def at_floor(metric: str, value: float) -> bool:
    """Whether a reported baseline error sits at its floor (the error is at or below it)."""
    return bool(value <= report_floor(metric) * (1 + 1e-9))


def _floored(metrics: dict[str, float]) -> dict[str, float]:
    return {m: max(v, report_floor(m)) if np.isfinite(v) else v for m, v in metrics.items()}


def _chebyshev(x, f, degree: int) -> Predictor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # RankWarning at high degree is the point of the baseline
        p = Chebyshev.fit(x, f, degree, domain=[-1, 1])
    dp = p.deriv()
    return lambda t: (p(t), dp(t))


def _smoothing(x, f) -> tuple[int, Predictor]:
    """The GCV smoothing spline of (x, f): its number of coefficients and its predictor."""
    order = np.argsort(x)
    s = make_smoothing_spline(x[order], f[order])
    ds = s.derivative()
    return len(s.c), lambda t: (s(t), ds(t))


def _spline(x, f) -> Predictor:
    s = CubicSpline(x, f)  # not-a-knot ends, the scipy default
    return lambda t: (s(t), s(t, 1))


def _hermite(x, f, df) -> Predictor:
    s = CubicHermiteSpline(x, f, df)
    return lambda t: (s(t), s(t, 1))


def _score(predict: Predictor, x_val: np.ndarray, target: Target) -> dict[str, float]:
    grid = dense_grid()
    return _floored(errors(x_val, *predict(x_val), "val", target) | errors(grid, *predict(grid), "grid", target))


def _loss(predict: Predictor, x_val: np.ndarray, f_val: np.ndarray, df_val: np.ndarray) -> float:
    fv, dfv = predict(x_val)
    loss = float(np.mean((fv - f_val) ** 2) + np.mean((dfv - df_val) ** 2))
    return loss if np.isfinite(loss) else np.inf


def floater_hormann(x, f, x_val, f_val, df_val) -> tuple[int, Predictor]:
    """The Floater-Hormann interpolant of (x, f) whose blending degree RATIONAL_RULE picks on the
    validation points: (d, predictor)."""
    order = np.argsort(x)
    xs, fs = x[order], f[order]
    fits = [
        (d, _barycentric(xs, fs, rational.floater_hormann_weights(xs, d)))
        for d in range(min(MAX_BLEND, len(xs) - 1) + 1)
    ]
    losses = np.array([_loss(p, x_val, f_val, df_val) for _, p in fits])
    return fits[chosen_degree(losses, RATIONAL_LOSS_FLOOR) - 1]


def _barycentric(nodes: np.ndarray, values: np.ndarray, weights: np.ndarray) -> Predictor:
    return lambda t: rational.evaluate(nodes, values, weights, t)


def aaa(x, f, x_val, f_val, df_val) -> tuple[int, Predictor]:
    """The AAA approximation of (x, f) whose number of terms RATIONAL_RULE picks on the validation
    points (every length of one greedy iteration scanned): (terms, predictor)."""
    path = rational.aaa_path(x, f, MAX_TERMS)
    fits = [(len(zs), _barycentric(zs, vs, ws)) for zs, vs, ws in path]
    losses = np.array([_loss(p, x_val, f_val, df_val) for _, p in fits])
    return fits[chosen_degree(losses, RATIONAL_LOSS_FLOOR) - 1]


def validation_losses(
    x: np.ndarray, f: np.ndarray, x_val: np.ndarray, f_val: np.ndarray, df_val: np.ndarray
) -> np.ndarray:
    """Validation loss MSE(f) + MSE(f') against (f_val, df_val) at x_val of the Chebyshev
    least-squares fit to (x, f) of every degree 1..top, top = min(MAX_SCAN_DEGREE, len(x) - 1):
    an array of shape (top,), entry d - 1 for degree d."""
    top = min(MAX_SCAN_DEGREE, len(x) - 1)
    # One QR of the Chebyshev design matrix serves every degree: the least-squares fit of degree d
    # uses its first d+1 columns, Q[:, :d+1] and R[:d+1, :d+1].
    q, r = np.linalg.qr(cheb.chebvander(x, top))
    qtf = q.T @ f
    vander_val = cheb.chebvander(x_val, top)
    losses = np.empty(top)
    for degree in range(1, top + 1):
        c = solve_triangular(r[: degree + 1, : degree + 1], qtf[: degree + 1])
        fv, dfv = vander_val[:, : degree + 1] @ c, cheb.chebval(x_val, cheb.chebder(c))
        losses[degree - 1] = np.mean((fv - f_val) ** 2) + np.mean((dfv - df_val) ** 2)
    return losses


def chosen_degree(losses: np.ndarray, floor: float = LOSS_FLOOR, factor: float = DEGREE_FACTOR) -> int:
    """The degree DEGREE_RULE picks from validation_losses' output.

    Up to MAX_SCAN_DEGREE the losses are exact to ~1e-6 (relative) under a few ulps of change in
    the data; past it they are not. Below ~1e-12 they are the fits' rounding more than their
    approximation error, and the plain argmin is decided by it: so the floor, and the factor, which
    puts the threshold where the losses fall steeply (~1.4x per degree) and a decision needs a
    change of ~2x in a loss, not of its last digits.
    """
    losses = np.where(np.isfinite(losses), losses, np.inf)
    target = factor * max(float(losses.min()), floor)
    return int(np.flatnonzero(losses <= target)[0]) + 1


def best_degree(x: np.ndarray, f: np.ndarray, x_val: np.ndarray, f_val: np.ndarray, df_val: np.ndarray) -> int:
    """The Chebyshev degree chosen by DEGREE_RULE for a fit to (x, f), validated at x_val.

    Chosen on the validation split, so its validation metrics are optimistic; its dense-grid
    metrics are the honest ones.
    """
    return chosen_degree(validation_losses(x, f, x_val, f_val, df_val))


def study_baselines(df: pd.DataFrame, cell: dict) -> pd.DataFrame:
    """The baselines of a study's runs (a runs frame): fitted per target and per split
    (n_points, val_fraction) its runs use, each seed's split as the networks of that seed see it,
    for the seeds with an ok run in the reference `cell` at that split (all its seeds where none is
    ok). Columns: target, the split fields the study varies (tables.baseline_keys), then
    baseline_runs' columns; rows by target, split, seed and baseline."""
    split_axes = [a for a in SPLIT_FIELDS if df[a].nunique() > 1]
    parts = []
    for target in target_order(df.target):
        for split, _ in df.groupby(list(SPLIT_FIELDS), sort=True):
            at = dict(zip(SPLIT_FIELDS, split))
            ref = select(df, {**cell, **at})
            ref = ref if not ref.empty else select(df, at)  # the reference cell lies at another split
            seeds = set(ref.loc[ref.status == "ok", "seed"]) or set(ref.seed)
            if not seeds:
                continue
            fitted = baseline_runs(
                sorted(seeds), int(at["n_points"]), float(at["val_fraction"]), target, noise=float(at["noise"])
            )
            parts.append(fitted.assign(target=target, **{a: at[a] for a in split_axes}))
    out = pd.concat(parts, ignore_index=True)
    keys = ["target", *split_axes]
    return out[[*keys, *[c for c in out.columns if c not in keys]]]


def baseline_runs(
    seeds: list[int], n_points: int = 1000, val_fraction: float = 0.2, target: str = "runge", *, noise: float = 0.0
) -> pd.DataFrame:
    """One row per (baseline, seed): the baseline's name, its parameter count, the eight metrics,
    for fits to `target` (a key of target.TARGETS) from the training data the networks of that seed
    see (with their noise: data.with_noise), scored against the truth."""
    rows = [dict(row) for seed in seeds for row in _seed_baselines(int(seed), n_points, val_fraction, target, noise)]
    return pd.DataFrame(rows)


@functools.lru_cache(maxsize=8192)
def _seed_baselines(seed: int, n_points: int, val_fraction: float, target: str, noise: float) -> tuple[dict, ...]:
    """baseline_runs' rows for one seed: a function of the split and the target alone (not of any
    network's engine, dtype or width), so the reports of one process share them (the committed
    reports' tests regenerate the same 200 seeds for each engine)."""
    t = get_target(target)
    split = make_split(n_points, val_fraction, seed)
    x, xv = split.x_train, split.x_val
    f, df = with_noise(t.f(x), t.df(x), noise, seed)
    degree = best_degree(x, f, xv, t.f(xv), t.df(xv))
    # No interpolation-degree polynomial: least squares at degree len(x) - 1 truncates the
    # singular values below rcond, so its errors (1e4 on f') are set by rounding, and moved in the
    # third digit when the data moved by a few ulps.
    # (name, parameters, the setting chosen on validation, predictor). Floater-Hormann stores every
    # value it interpolates; AAA's m terms are m support points, values and weights.
    fits: list[tuple[str, int, float, Predictor]] = [
        (CHEBYSHEV, degree + 1, degree, _chebyshev(x, f, degree)),
        ("cubic spline", 4 * (len(x) - 1), np.nan, _spline(x, f)),
        ("cubic Hermite spline (uses f')", 4 * (len(x) - 1), np.nan, _hermite(x, f, df)),
    ]
    rows = [
        {"baseline": name, "seed": seed, "n_params": n_params, "setting": setting, **_score(predict, xv, t)}
        for name, n_params, setting, predict in fits
    ]
    if len(x) <= RATIONAL_MAX_POINTS:  # their scans cost points x nodes: else not fitted (the report says so)
        for name, fit, params in ((FLOATER_HORMANN, floater_hormann, lambda k: len(x)), (AAA, aaa, lambda k: 3 * k)):
            setting, scores = _reproducible(fit, x, f, xv, t)
            rows.insert(-2, {"baseline": name, "seed": seed, "n_params": params(setting), "setting": setting, **scores})
    if noise > 0:
        n_params, predict = _smoothing(x, f)
        rows.append(
            {"baseline": SMOOTHING, "seed": seed, "n_params": n_params, "setting": np.nan, **_score(predict, xv, t)}
        )
    return tuple(rows)


UNSTABLE = 1e-3  # relative: a rational fit whose errors move more than this under a few ulps is not reported


def _reproducible(fit, x, f, xv, t: Target) -> tuple[float, dict[str, float]]:
    """A rational fit's setting and scores, checked against the same fit to data moved by one ulp,
    alternately up and down: where the chosen setting or any error moves by more than UNSTABLE, the
    result depends on rounding (AAA's greedy path on |x|, whose samples tie in pairs, does), and
    another machine's BLAS would print other digits: the setting and every error are NaN, and the
    report says the fit is not reported there."""
    nudged = np.nextafter(f, np.where(np.arange(len(f)) % 2, np.inf, -np.inf))
    (a, pa), (b, pb) = (fit(x, g, xv, t.f(xv), t.df(xv)) for g in (f, nudged))
    sa, sb = _score(pa, xv, t), _score(pb, xv, t)
    moved = max(abs(sa[m] - sb[m]) / sa[m] if np.isfinite(sa[m]) and sa[m] > 0 else np.inf for m in sa)
    if a != b or not moved <= UNSTABLE:
        return np.nan, dict.fromkeys(sa, np.nan)
    return a, sa


def rational_targets(baselines: pd.DataFrame) -> list[str]:
    """A paragraph (lines) saying which of the baselines' targets are rational, so that AAA recovers
    them exactly (with the terms it took, median over seeds), and which are not; [] without targets."""
    if baselines.empty or "target" not in baselines:
        return []
    kinds: dict[bool | None, list[str]] = {True: [], False: [], None: []}
    for name in target_order(baselines.target):
        kinds[get_target(name).rational].append(name)
    said = []
    if kinds[True]:
        terms = [
            f"{baselines[(baselines.target == n) & (baselines.baseline == AAA)].setting.median():g}"
            for n in kinds[True]
        ]
        one = len(kinds[True]) == 1
        said.append(
            f"{_names(kinds[True])} {'is' if one else 'are'} rational (a ratio of polynomials): AAA recovers "
            f"{'it' if one else 'each'} exactly, to rounding, from {', '.join(terms)} terms (median over seeds), so "
            f"on {'it' if one else 'them'} the floor is rounding and tells nothing of networks against classical "
            "methods in general"
        )
    if kinds[False]:
        one = len(kinds[False]) == 1
        said.append(f"{_names(kinds[False])} {'is' if one else 'are'} not rational: no rational method is exact there")
    if kinds[None]:
        said.append(f"whether {_names(kinds[None])} is rational is not known here (a Python function)")
    text = "; ".join(said)
    return [text[0].upper() + text[1:] + ".", ""]


def _names(targets: list[str]) -> str:
    said = ", ".join(targets[:-1]) + (" and " if len(targets) > 1 else "") + targets[-1]
    return f"target{'s' if len(targets) > 1 else ''} {said}"


def unreported(baselines: pd.DataFrame) -> list[str]:
    """A paragraph (lines) naming the rational fits left out because their result moved under one
    ulp of change in the data (_reproducible), per target and split; [] when there are none."""
    if baselines.empty:
        return []
    keys = [k for k in baselines.columns if k in ("target", *SPLIT_FIELDS)]
    said = []
    for key, g in baselines.groupby([*keys, "baseline"], sort=False):
        missing = int(g.grid_f_max.isna().sum())
        if missing:
            *where, name = key if isinstance(key, tuple) else (key,)
            at = ", ".join(f"{k}={v}" for k, v in zip(keys, where))
            said.append(f"{name.split(',')[0]} at {at}: {missing} of {len(g)} seeds")
    if not said:
        return []
    return [
        "Not reported, since their result moved by more than 0.1% under one ulp of change in the data (no digit "
        "of it would reproduce on another machine): " + "; ".join(said) + ". Their summaries are over the other seeds.",
        "",
    ]


def rational_skipped(runs: pd.DataFrame) -> list[str]:
    """A sentence (lines) when some of the study's splits have more training points than the
    rational fits are made for; [] otherwise."""
    sizes = {int(n) - n_val(int(n), float(v)) for n, v in zip(runs.n_points, runs.val_fraction)}
    big = sorted(k for k in sizes if k > RATIONAL_MAX_POINTS)
    if not big:
        return []
    return [
        f"The rational fits are not made for splits of more than {RATIONAL_MAX_POINTS:,} training points (here "
        f"{', '.join(f'{k:,}' for k in big)}): their validation scans grow with points x nodes.",
        "",
    ]
