import numpy as np

from runge_bench.baselines import _chebyshev, _hermite, _spline, baseline_runs, best_degree


def test_splines_and_polynomials_reproduce_what_they_can_represent_exactly():
    x = np.linspace(-1, 1, 41)
    t = np.linspace(-0.9, 0.9, 7)
    cubic, dcubic = lambda z: 2 * z**3 - z + 0.5, lambda z: 6 * z**2 - 1  # noqa: E731
    for predict in (_spline(x, cubic(x)), _hermite(x, cubic(x), dcubic(x)), _chebyshev(x, cubic(x), 3)):
        f, df = predict(t)
        np.testing.assert_allclose(f, cubic(t), atol=1e-10)
        np.testing.assert_allclose(df, dcubic(t), atol=1e-8)


def test_best_degree_finds_a_low_degree_target():
    x, xv = np.linspace(-1, 1, 101), np.linspace(-0.95, 0.95, 17)
    # A degree-4 polynomial is fitted exactly from degree 4 on; the scan keeps the first minimum
    # up to rounding, so the chosen degree is small.
    p, dp = lambda z: 1 - 3 * z**2 + z**4, lambda z: -6 * z + 4 * z**3  # noqa: E731
    assert 4 <= best_degree(x, p(x), xv, p(xv), dp(xv)) <= 12


def test_baselines_on_the_runge_function():
    df = baseline_runs([0, 1], n_points=1000, val_fraction=0.2).set_index(["baseline", "seed"])
    assert len(df) == 8
    hermite, spline = df.xs("cubic Hermite spline (uses f')"), df.xs("cubic spline")
    assert (hermite.grid_f_max < 1e-4).all() and (spline.grid_f_max < 1e-4).all()
    assert (hermite.grid_df_mse < spline.grid_df_mse).all()  # the derivative data helps
    runge = df.xs("chebyshev, degree 799")
    assert (runge.grid_df_max > 1.0).all()  # the Runge phenomenon: interpolation-degree fits blow up
    assert (df.xs("chebyshev, best degree on validation").grid_f_max < runge.grid_f_max).all()
