"""The precision frontier: how many parameters each activation and method needs to reach a given max
error, beside the classical methods at their own number of coefficients, and the gap to the best
classical method per target, clean and noisy.

A study has a frontier when it trains the float64 methods built for precision (matrix-free
Gauss-Newton, `optimizer = "adam+gn"`, or more than one stage). Its runs are grouped by target,
noise, activation, method (the optimizer and the number of stages) and width; a network's
parameters are stages x the parameters of one stage's network. A threshold is reached by the
fewest parameters whose median over seeds is at or below it.

The classical side: every seed's training points (as the networks of that seed see them, noise
included) fitted by Chebyshev least squares of every degree 1-MAX_SCAN_DEGREE (degree + 1
coefficients) and by AAA after every step of its greedy path (m terms: 3m numbers, support points,
values and weights); Floater-Hormann interpolates every training point (its parameters are those
values), with its blending degree chosen on validation. A classical fit's errors below the
reporting floor (baselines.REPORT_FLOOR) are rounding and count as the floor (its thresholds below
the floor are not told apart); a network's stored errors are its own, but wherever a network
meets a classical method (the gaps) both are floored, so that no comparison is decided below it.

The gap: per target, noise and dense-grid max metric, the network cell with the lowest median
against the best classical method (the lowest median among the report's baselines), paired seed
by seed on the same split: the ratio (Hodges-Lehmann, exact 95% CI), the share of seeds where the
network is lower, the two-sided Wilcoxon p, Holm-adjusted over the table. Exploratory: the frontier
study declares no hypothesis about it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.polynomial import chebyshev as cheb
from scipy.linalg import solve_triangular

from ..engine.model import n_parameters
from ..problem.data import dense_grid, make_split, with_noise
from ..problem.targets import get_target, target_order
from ..problem.vocabulary import GRID_MAX, METRIC_LABELS, REFINE_ITERS
from . import rational, stats
from .baselines import AAA, FLOATER_HORMANN, MAX_SCAN_DEGREE, MAX_TERMS, report_floor
from .findings import Finding

THRESHOLDS = {"grid_f_max": (1e-4, 1e-6, 1e-8, 1e-10), "grid_df_max": (1e-4, 1e-6, 1e-8)}
GOAL = {"grid_f_max": 1e-10, "grid_df_max": 1e-8}  # the precision a network is asked to reach
# A max over 10,001 grid points is a few times the RMS over the training points when the error is
# spread evenly (a smooth residual's max/RMS is ~2-4): up to this factor, no gap between the points.
SAMPLING_FACTOR = 10.0
CONDITION = ["target", "noise"]
CHEB_SCAN = "Chebyshev least squares"
AAA_SCAN = "AAA"
FH_SCAN = "Floater-Hormann"


def has_frontier(df: pd.DataFrame) -> bool:
    """Whether a study's runs include the methods built for precision (stages or Gauss-Newton)."""
    return bool(((df.get("stages", 1) > 1) | (df.optimizer == "adam+gn")).any())


def method_of(optimizer: str, stages: int, iters: int = 0) -> str:
    """A method's name: "adam", "adam+gn(100)", "3 stages of adam+gn(200)" (a refinement's
    iterations, per stage, in brackets)."""
    name = f"{optimizer}({iters})" if iters else optimizer
    return name if stages == 1 else f"{stages} stages of {name}"


def methods(df: pd.DataFrame) -> list[str]:
    """Each run's method (method_of)."""
    iters = lambda r: int(getattr(r, REFINE_ITERS[r.optimizer])) if r.optimizer in REFINE_ITERS else 0
    return [method_of(r.optimizer, int(r.stages), iters(r)) for r in df.itertuples()]


def network_cells(df: pd.DataFrame, arrays: dict | None = None) -> pd.DataFrame:
    """Per target, noise, activation, method and width: parameters, runs, ok runs and the median
    over seeds of each dense-grid max error (the failed and diverged runs count as not reaching);
    with the runs' stored curves (`arrays`: run_id -> (curves, predictions)), the median RMS of the
    f residual at the training points at the end (train_f_rms), to tell an optimiser's limit (the
    error as large at the training points) from the sampling's (small there, large between them)."""
    last = {
        rid: float(np.sqrt(c["train_f"][-1])) for rid, (c, _) in (arrays or {}).items() if len(c.get("train_f", []))
    }
    runs = df.assign(
        method=methods(df),
        train_f_rms=[last.get(rid, np.nan) for rid in df.run_id],
    )
    rows = []
    keys = [*CONDITION, "activation", "method", "width"]
    for key, g in runs.groupby(keys, sort=True):
        ok = g[g.status == "ok"]
        row = dict(zip(keys, key))
        row |= {"n_params": int(g.stages.iloc[0]) * n_parameters(int(key[-1]), int(g.depth.iloc[0]))}
        row |= {"n": len(g), "n_ok": len(ok)}
        for metric in GRID_MAX:
            x = ok[metric].to_numpy(float)
            # A failed run reaches nothing: the median over all runs, failures as +inf.
            row[metric] = float(np.median(np.concatenate([x, np.full(len(g) - len(ok), np.inf)])))
        row["train_f_rms"] = float(ok.train_f_rms.median()) if ok.train_f_rms.notna().any() else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def fewest(cells: pd.DataFrame, by: list[str], size: str = "n_params", floored: bool = False) -> pd.DataFrame:
    """Per group of `by` and metric: for each threshold the fewest parameters whose median reaches
    it (NaN where none does), and the lowest median reached with its parameters. floored: errors
    below the reporting floor count as it (the classical fits, whose digits there are rounding; a
    threshold below the floor is then reached by none); a network's stored errors are its own."""
    rows = []
    for key, g in cells.groupby(by, sort=False):
        for metric, thresholds in THRESHOLDS.items():
            values = g[metric].to_numpy(float)
            errs = np.maximum(values, report_floor(metric)) if floored else values
            best = int(np.argmin(errs))
            row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
            row |= {"metric": metric, "best": errs[best], "best_params": int(g[size].iloc[best])}
            for t in thresholds:
                reached = g[size].to_numpy()[errs <= t]
                row[f"le_{t:g}"] = int(reached.min()) if len(reached) else np.nan
            rows.append(row)
    return pd.DataFrame(rows)


def classical_scan(seeds: list[int], n_points: int, val_fraction: float, target: str, noise: float) -> pd.DataFrame:
    """Per seed, the dense-grid max errors of Chebyshev least squares at every degree and of AAA
    after every step, on that seed's training points (with its noise): method, seed, n_params
    (coefficients), grid_f_max, grid_df_max; errors floored (module docstring)."""
    t = get_target(target)
    grid = dense_grid()
    truth = (t.f(grid), t.df(grid))
    rows = []
    for seed in seeds:
        split = make_split(n_points, val_fraction, seed)
        x = split.x_train
        f, _ = with_noise(t.f(x), t.df(x), noise, seed)
        top = min(MAX_SCAN_DEGREE, len(x) - 1)
        for degree, errs in enumerate(_chebyshev_errors(x, f, top, grid, truth), start=1):
            rows.append({"method": CHEB_SCAN, "seed": seed, "n_params": degree + 1, **errs})
        for zs, vs, ws in rational.aaa_path(x, f, MAX_TERMS):
            predict = lambda g, z=zs, v=vs, w=ws: rational.evaluate(z, v, w, g)
            rows.append(
                {"method": AAA_SCAN, "seed": seed, "n_params": 3 * len(zs), **_grid_errors(predict, grid, truth)}
            )
    return pd.DataFrame(rows)


def _chebyshev_errors(x: np.ndarray, f: np.ndarray, top: int, grid: np.ndarray, truth) -> list[dict[str, float]]:
    """The dense-grid max errors of the Chebyshev least-squares fit of every degree 1..top, from
    one QR of the design matrix (as baselines.validation_losses): the fit of degree d uses its
    first d + 1 columns; all degrees are evaluated at once, f′ through the derivative's matrix."""
    q, r = np.linalg.qr(cheb.chebvander(x, top))
    qtf = q.T @ f
    coefs = np.zeros((top + 1, top))
    for degree in range(1, top + 1):
        coefs[: degree + 1, degree - 1] = solve_triangular(r[: degree + 1, : degree + 1], qtf[: degree + 1])
    deriv = cheb.chebder(np.eye(top + 1))  # (top, top + 1): coefficients of each basis function's derivative
    y = cheb.chebvander(grid, top) @ coefs
    dy = cheb.chebvander(grid, top - 1) @ (deriv @ coefs)
    out = []
    for k in range(top):
        errs = (np.max(np.abs(y[:, k] - truth[0])), np.max(np.abs(dy[:, k] - truth[1])))
        out.append({m: max(float(e), report_floor(m)) if np.isfinite(e) else np.inf for e, m in zip(errs, GRID_MAX)})
    return out


def _grid_errors(predict, grid: np.ndarray, truth: tuple[np.ndarray, np.ndarray]) -> dict[str, float]:
    """A fit's dense-grid max errors of f and f', floored (module docstring)."""
    y, dy = predict(grid)
    errs = (np.max(np.abs(y - truth[0])), np.max(np.abs(dy - truth[1])))
    return {m: max(float(e), report_floor(m)) if np.isfinite(e) else np.inf for e, m in zip(errs, GRID_MAX)}


def classical_cells(df: pd.DataFrame, baselines: pd.DataFrame) -> pd.DataFrame:
    """classical_scan per target and noise of the study, summarised as network_cells are: per
    method and size, the median over seeds (the seeds of the study's runs at that condition).
    AAA's path is left out where the report's AAA fit was not reported for some seed, since it
    moved under one ulp of change in the data (|x|, whose samples tie in pairs:
    baselines._reproducible); the scan does not re-check every size."""
    parts = []
    for (target, noise), g in df.groupby(CONDITION, sort=True):
        n_points, val_fraction = int(g.n_points.iloc[0]), float(g.val_fraction.iloc[0])
        scan = classical_scan(sorted(set(g.seed)), n_points, val_fraction, target, float(noise))
        b = baselines[(baselines.target == target) & (baselines.noise == noise) & (baselines.baseline == AAA)]
        if b.grid_f_max.isna().any():
            scan = scan[scan.method != AAA_SCAN]
        med = scan.groupby(["method", "n_params"], sort=True)[list(GRID_MAX)].median().reset_index()
        parts.append(med.assign(target=target, noise=float(noise)))
    out = pd.concat(parts, ignore_index=True)
    return out[[*CONDITION, "method", "n_params", *GRID_MAX]]


def interpolant_cells(bsum: pd.DataFrame, df: pd.DataFrame) -> pd.DataFrame:
    """Floater-Hormann as a classical cell of one size (it interpolates every training point; its
    blending degree chosen on validation): per target and noise of the study's runs, its
    parameters and median errors."""
    fh = bsum[bsum.baseline == FLOATER_HORMANN]
    studied = set(zip(df.target, df.noise.astype(float)))
    rows = []
    for (target, noise), g in fh.groupby(CONDITION, sort=True):
        if (target, float(noise)) not in studied:
            continue
        med = dict(zip(g.metric, g["median"]))
        rows.append(
            {
                "target": target,
                "noise": noise,
                "method": FH_SCAN,
                "n_params": int(g.n_params.max()),
                **{m: med.get(m, np.nan) for m in GRID_MAX},
            }
        )
    return pd.DataFrame(rows)


def gap_table(df: pd.DataFrame, cells: pd.DataFrame, baselines: pd.DataFrame, bsum: pd.DataFrame) -> pd.DataFrame:
    """Per target, noise and max metric: the best network cell against the best baseline, paired by
    seed (module docstring); errors floored on both sides."""
    rows = []
    for (target, noise), g in cells.groupby(CONDITION, sort=True):
        for metric in GRID_MAX:
            best = g.loc[g[metric].idxmin()]
            b = bsum[(bsum.target == target) & (bsum.noise == noise) & (bsum.metric == metric)]
            top = b.loc[b["median"].idxmin()]
            runs = df[(df.status == "ok") & (df.target == target) & (df.noise == noise)]
            runs = runs[(runs.activation == best.activation) & (runs.width == best.width)]
            runs = runs[[m == best.method for m in methods(runs)]]
            net = runs.set_index("seed")[metric].clip(lower=report_floor(metric))
            base = baselines[(baselines.target == target) & (baselines.noise == noise)]
            base = base[base.baseline == top.baseline].set_index("seed")[metric].dropna()
            seeds = sorted(set(net.index) & set(base.index))
            t = stats.paired_test(net.loc[seeds].to_numpy(float), base.loc[seeds].to_numpy(float))
            rows.append(
                {
                    "target": target,
                    "noise": noise,
                    "metric": metric,
                    "activation": best.activation,
                    "method": best.method,
                    "width": int(best.width),
                    "n_params": int(best.n_params),
                    "network_median": max(float(best[metric]), report_floor(metric)),
                    "baseline": top.baseline,
                    "baseline_median": float(top["median"]),
                    "n_pairs": t.n_pairs,
                    "ratio": t.ratio,
                    "ratio_lo": t.ratio_ci[0],
                    "ratio_hi": t.ratio_ci[1],
                    "share_network_lower": t.share,
                    "favours": {"a": "network", "b": "classical"}.get(t.favours, ""),
                    "p": t.p_value,
                }
            )
    out = pd.DataFrame(rows)
    out["p_holm"] = stats.holm(out.p.to_numpy(float)) if len(out) else []
    return out


def goal_finding(cells: pd.DataFrame) -> Finding:
    """Whether a network cell reaches GOAL on the Runge function (clean), median over seeds: the
    cell with the fewest parameters that does, else the closest (by the larger of its two ratios
    to the goal)."""
    runge = cells[(cells.target == "runge") & (cells.noise == 0.0)]
    f, d = GOAL["grid_f_max"], GOAL["grid_df_max"]
    goal = f"f max ≤ {f:g} and f′ max ≤ {d:g} on the dense grid (median over seeds), the Runge function, clean"
    if runge.empty:
        return f"No runs on the clean Runge function: the goal ({goal}) is not tested.", []
    met = runge[(runge.grid_f_max <= f) & (runge.grid_df_max <= d)].sort_values("n_params")
    name = lambda r: f"{r.activation}, {r.method}, width {r.width} ({r.n_params:,} parameters)"
    numbers = lambda r: (
        f"f max {r.grid_f_max:.3g}, f′ max {r.grid_df_max:.3g} over {r.n} seeds ({r.n_ok} ok)" + _limit(r)
    )
    if not met.empty:
        r = met.iloc[0]
        others = [name(x) for x in met.iloc[1:].itertuples()]
        details = [numbers(r)] + ([f"also met by: {'; '.join(others)}"] if others else [])
        return f"The goal is met: {name(r)} reaches {goal}.", details
    worst = np.maximum(runge.grid_f_max / f, runge.grid_df_max / d)
    r = runge.loc[worst.idxmin()]
    return f"The goal is not met: closest {name(r)}, {worst.min():.3g}x above {goal}.", [numbers(r)]


def _limit(r) -> str:
    """What held a cell back: the f residual's RMS at the training points against the dense grid's
    max error. Within SAMPLING_FACTOR of each other, the fit is as far off at the points it was
    trained on: the optimiser stopped there; far apart, it fits the points and misses between them."""
    if not np.isfinite(getattr(r, "train_f_rms", np.nan)):
        return ""
    ratio = r.grid_f_max / r.train_f_rms
    where = (
        "as far off at the training points as on the grid: the optimiser, not the sampling, stopped it"
        if ratio <= SAMPLING_FACTOR
        else "far closer at the training points than between them: the sampling, not the optimiser, limits it"
    )
    return f"; the f residual's RMS at the training points at the end {r.train_f_rms:.3g} (grid max / that {ratio:.3g}): {where}"


def gap_findings(gaps: pd.DataFrame) -> list[Finding]:
    """A finding per target and noise: where the best network is significantly below the best
    classical method, above it, or inconclusive, on each max metric (Holm over the table)."""
    out = []
    for (target, noise), g in gaps.groupby(CONDITION, sort=False):
        kind = "rational" if get_target(target).rational else "not rational"
        where = f"{target} ({kind}), {'noise ' + format(noise, 'g') if noise else 'clean'}"
        parts, details = [], []
        for r in g.itertuples():
            label, floor = METRIC_LABELS[r.metric], report_floor(r.metric)
            if r.p_holm < stats.ALPHA:
                verdict = "networks lower" if r.favours == "network" else "classical lower"
            else:
                verdict = "inconclusive"
            parts.append(f"{label}: {verdict}")
            both = " (both at or below the rounding floor)" if max(r.network_median, r.baseline_median) <= floor else ""
            details.append(
                f"{label}: best network {r.activation}, {r.method}, width {r.width} ({r.n_params:,} parameters) "
                f"median {_at(r.network_median, floor)} against {r.baseline.split(',')[0]} {_at(r.baseline_median, floor)}; ratio "
                f"network/classical {r.ratio:.3g} (95% CI {r.ratio_lo:.3g}-{r.ratio_hi:.3g}), network lower in a "
                f"share {r.share_network_lower:.2f} of {r.n_pairs} seeds, Wilcoxon p = {r.p_holm:.3g} (Holm){both}"
            )
        out.append((f"{where}: " + "; ".join(parts) + ".", details))
    return out


def _at(value: float, floor: float) -> str:
    """A median as a sentence prints it: "≤ floor" at the reporting floor."""
    return f"≤ {value:.3g}" if value <= floor else f"{value:.3g}"


def conditions(df: pd.DataFrame) -> list[tuple[str, float]]:
    """The study's (target, noise) pairs in registry order."""
    pairs = set(zip(df.target, df.noise.astype(float)))
    return [(t, n) for t in target_order(df.target) for n in sorted({n for tt, n in pairs if tt == t})]
