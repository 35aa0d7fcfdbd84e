"""Rational baselines: Floater-Hormann and AAA against SciPy's, f′ in closed form against exact
derivatives, and the choice of their parameter on the validation split."""

import warnings

import numpy as np
import pytest
from scipy.interpolate import AAA, FloaterHormannInterpolator

from runge_bench.analysis import rational
from runge_bench.problem.data import dense_grid, make_split
from runge_bench.problem.targets import get_target

X = np.sort(make_split(1000, 0.2, 0).x_train)  # the seed protocol's training points, seed 0


@pytest.mark.parametrize("d", [0, 1, 3, 8, 20])
def test_floater_hormann_weights_are_scipys(d):
    f = get_target("sin4pi").f(X)
    ours = rational.floater_hormann_weights(X, d)
    theirs = FloaterHormannInterpolator(X, f, d=d).weights.ravel()
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_aaa_path_is_scipys_at_every_length():
    """scipy's AAA without its clean-up, asked for m terms, is the m-th step of our iteration."""
    f = get_target("abs").f(X)
    path = rational.aaa_path(X, f, 30)
    grid = dense_grid()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for m in (1, 2, 5, 13, 30):
            theirs = AAA(X, f, max_terms=m, clean_up=False, rtol=1e-13)
            zs, fs, w = path[m - 1]
            np.testing.assert_array_equal(np.sort(zs), np.sort(theirs.support_points))
            ours, _ = rational.evaluate(zs, fs, w, grid)
            np.testing.assert_allclose(ours, theirs(grid), rtol=0, atol=1e-12 * np.abs(f).max())


def test_aaa_recovers_a_rational_function_with_three_terms():
    """1/(1+25x²) is rational of type (2, 2): AAA stops after 3 support points, exact to rounding."""
    t = get_target("runge")
    path = rational.aaa_path(X, t.f(X), 64)
    assert len(path) == 3
    r, dr = rational.evaluate(*path[-1], dense_grid())
    assert np.abs(r - t.f(dense_grid())).max() < 1e-13
    assert np.abs(dr - t.df(dense_grid())).max() < 1e-8


@pytest.mark.parametrize("target", ["runge", "sin4pi"])
def test_the_closed_form_derivative_is_the_derivative(target):
    """r′ by Schneider & Werner's formula against a complex-step derivative of r itself (exact to
    rounding for an analytic function), away from and on the nodes."""
    t = get_target(target)
    f = t.f(X)
    w = rational.floater_hormann_weights(X, 5)
    points = np.concatenate([np.linspace(-0.999, 0.999, 301), X[::50]])  # X[::50]: exactly on nodes
    _, dr = rational.evaluate(X, f, w, points)
    h = 1e-30
    c = points + 1j * h
    step = (np.sum(w * f / (c[:, None] - X), axis=1) / np.sum(w / (c[:, None] - X), axis=1)).imag / h
    off = ~np.isin(points, X)
    np.testing.assert_allclose(dr[off], step[off], rtol=1e-7, atol=1e-9)
    # on a node, the limit: the node formula agrees with the formula just beside the node
    beside = X[::50] + 1e-9
    _, near = rational.evaluate(X, f, w, beside)
    np.testing.assert_allclose(dr[~off], near, rtol=1e-5, atol=1e-6)


def test_a_hand_checkable_interpolant():
    """Nodes -1, 0, 1 with d = 2 is the quadratic through them: f = x² gives r = x², r′ = 2x."""
    x = np.array([-1.0, 0.0, 1.0])
    w = rational.floater_hormann_weights(x, 2)
    t = np.array([-0.5, 0.0, 0.3, 1.0])
    r, dr = rational.evaluate(x, x**2, w, t)
    np.testing.assert_allclose(r, t**2, atol=1e-15)
    np.testing.assert_allclose(dr, 2 * t, atol=1e-14)


def test_a_fit_that_moves_with_an_ulp_is_not_reported():
    """baselines._reproducible fits twice, the second time to data moved by one ulp: a fit whose
    result depends on that (here, by construction) is NaN, setting and errors; a steady one is kept."""
    from runge_bench.analysis import baselines

    t = get_target("runge")
    split = make_split(1000, 0.2, 0)
    x, xv = split.x_train, split.x_val

    f0 = t.f(x)

    def jumpy(x, f, *validation):  # a setting that follows the data's last bits
        setting = 0 if np.array_equal(f, f0) else 1
        return setting, lambda s: (t.f(s) * (1 + 1e-2 * setting), t.df(s))

    def steady(x, f, *validation):
        return 7, lambda s: (t.f(s) + 1e-6, t.df(s))

    setting, scores = baselines._reproducible(jumpy, x, f0, xv, t)
    assert np.isnan(setting) and all(np.isnan(v) for v in scores.values())
    setting, scores = baselines._reproducible(steady, x, t.f(x), xv, t)
    assert setting == 7 and scores["grid_f_max"] == pytest.approx(1e-6)


def test_which_targets_are_rational():
    assert [get_target(n).rational for n in ("runge", "runge5", "runge100", "sin4pi", "abs")] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert get_target("(1 + x)/(2 + x**2)").rational is True
    assert get_target("exp(x)").rational is False and get_target("sqrt(1 + x**2)").rational is False


def test_rational_fits_are_not_made_past_their_size_and_the_report_says_so():
    """Past RATIONAL_MAX_POINTS training points the scans (points x nodes) are not run: the other
    baselines are, and the report's sentence names the split."""
    import pandas as pd

    from runge_bench.analysis import baselines

    big = baselines.baseline_runs([0], n_points=7000, val_fraction=0.2)
    assert set(big.baseline) == {baselines.CHEBYSHEV, "cubic spline", "cubic Hermite spline (uses f')"}
    runs = pd.DataFrame({"n_points": [1000, 7000], "val_fraction": [0.2, 0.2]})
    (said, _) = baselines.rational_skipped(runs)
    assert "more than 5,000 training points (here 5,600)" in said
    assert baselines.rational_skipped(runs.iloc[:1]) == []
