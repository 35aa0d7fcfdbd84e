import numpy as np
import pytest
import torch

from runge_bench.problem.data import make_split
from runge_bench.problem.targets import TARGETS, get_target, runge, runge_derivative


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


@pytest.mark.parametrize("name", list(TARGETS))
def test_every_target_derivative_matches_autograd(name):
    """Each target's f' is the derivative of its f, by autograd in float64, at points that avoid
    the kink of |x|; f and f' agree between numpy and torch."""
    t = get_target(name)
    x = torch.linspace(-1, 1, 401, dtype=torch.float64)
    x = x[x.abs() > 1e-3].requires_grad_(True)
    (grad,) = torch.autograd.grad(t.f(x).sum(), x)
    torch.testing.assert_close(grad, t.df(x.detach()), rtol=1e-12, atol=1e-12)
    xn = x.detach().numpy()
    np.testing.assert_allclose(t.f(xn), t.f(x.detach()).numpy(), rtol=0, atol=1e-15)
    assert t.doc and t.name == name


def test_targets_by_hand():
    x = np.array([0.0, 0.5, -0.25])
    np.testing.assert_allclose(get_target("runge100").f(x), 1 / (1 + 100 * x**2))
    np.testing.assert_allclose(get_target("runge5").df(x), -10 * x / (1 + 5 * x**2) ** 2)
    np.testing.assert_allclose(get_target("sin4pi").f(np.array([0.0, 0.125, -0.125])), [0.0, 1.0, -1.0], atol=1e-15)
    np.testing.assert_array_equal(get_target("abs").df(x), [0.0, 1.0, -1.0])  # f'(0) is taken as 0
    assert get_target("runge").f is runge


def test_the_seed_protocol_never_trains_at_the_kink():
    """1000 points, symmetric and even: x = 0 is not among them, so the training data of |x| has no
    ambiguous derivative; the dense grid has it and scores f'(0) against 0."""
    from runge_bench.problem.data import dense_grid

    assert np.min(np.abs(make_split(1000, 0.2, 0).x)) > 1e-4
    assert 0.0 in dense_grid()


def test_unknown_target_names_the_valid_ones():
    with pytest.raises(KeyError, match="valid: runge, runge5"):
        get_target("cosine")
