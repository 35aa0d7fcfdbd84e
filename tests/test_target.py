import numpy as np

from runge_bench.target import make_split, runge, runge_derivative


def test_runge_values_by_hand():
    assert runge(np.array([0.0]))[0] == 1.0
    assert runge(np.array([0.2]))[0] == 0.5  # 1 / (1 + 25 * 0.04)
    assert runge_derivative(np.array([0.2]))[0] == -10.0 / 4.0  # -50*0.2 / (1+1)^2


def test_derivative_matches_finite_differences():
    x = np.linspace(-0.99, 0.99, 101)
    h = 1e-6
    fd = (runge(x + h) - runge(x - h)) / (2 * h)
    np.testing.assert_allclose(runge_derivative(x), fd, rtol=1e-6, atol=1e-8)


def test_split_is_deterministic_disjoint_and_80_20():
    a, b = make_split(1000, 0.2, seed=7), make_split(1000, 0.2, seed=7)
    np.testing.assert_array_equal(a.train_idx, b.train_idx)
    np.testing.assert_array_equal(a.val_idx, b.val_idx)
    assert len(a.val_idx) == 200 and len(a.train_idx) == 800
    assert set(a.train_idx).isdisjoint(a.val_idx)
    assert sorted(np.concatenate([a.train_idx, a.val_idx])) == list(range(1000))
    np.testing.assert_allclose(a.x[[0, -1]], [-1.0, 1.0])


def test_split_depends_on_seed():
    assert not np.array_equal(make_split(1000, 0.2, 0).val_idx, make_split(1000, 0.2, 1).val_idx)
