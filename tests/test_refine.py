"""The refinements after Adam (refine.py): the LM Jacobian is exact, both refinements lower the
loss and go on in the curves, a stall is recorded (not an error), and both engines refine alike."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from runge_bench.engine.batched import train_batched
from runge_bench.engine.common import as_tensors
from runge_bench.engine.model import init_params, stack_params
from runge_bench.engine.reference import train_reference
from runge_bench.engine.refine import _flat, jacobian, refine
from runge_bench.engine.stacked import forward, views_of
from runge_bench.problem.activations import ACTIVATIONS, get_activation
from runge_bench.problem.config import RunConfig
from runge_bench.problem.data import make_split
from runge_bench.problem.errors import UserError
from runge_bench.problem.targets import get_target
from runge_bench.runs import resources


def _member(config: RunConfig):
    return [(w.detach(), b.detach()) for w, b in stack_params([init_params(config)])]


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("depth", [1, 3])
def test_jacobian_equals_autograd(activation, depth):
    """Every row (y and dy/dx at each point) against torch.func.jacrev of the batched forward."""
    c = RunConfig(activation, width=6, depth=depth, dtype="float64", seed=3)
    params = _member(c)
    act = get_activation(activation)
    x = torch.linspace(-1, 1, 9, dtype=torch.float64).view(1, -1, 1)
    flat, views = _flat(params)
    y, dy, j = jacobian(views, act, x)

    def outputs(theta):
        vs = views_of(theta, [t for wb in params for t in wb])
        yy, dyy, _ = forward(list(zip(vs[0::2], vs[1::2])), act, x)
        return torch.cat([yy.reshape(-1), dyy.reshape(-1)])

    expected = torch.func.jacrev(outputs)(flat)
    assert j.shape == (18, flat.numel())
    torch.testing.assert_close(j, expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(torch.cat([y, dy]), outputs(flat), rtol=0, atol=0)


def _data(c: RunConfig):
    split = make_split(c.n_points, c.val_fraction, c.seed)
    t = get_target(c.target)
    stack = lambda x: tuple(a.unsqueeze(0) for a in as_tensors(x, torch.float64, "cpu", t))
    return stack(split.x_train), stack(split.x_val)


@pytest.mark.parametrize("optimizer, iters", [("adam+lbfgs", dict(lbfgs_iters=40)), ("adam+lm", dict(lm_iters=8))])
def test_refinement_lowers_the_loss_and_leaves_its_input_alone(optimizer, iters):
    c = RunConfig("tanh", width=8, n_points=100, epochs=0 + 1, dtype="float64", optimizer=optimizer, **iters)
    params = _member(c)
    before = [t.clone() for wb in params for t in wb]
    train, val = _data(c)
    r = refine(c, params, get_activation("tanh"), train, val)
    assert all(torch.equal(a, t) for a, t in zip(before, [t for wb in params for t in wb]))
    y0, dy0, _ = forward(params, get_activation("tanh"), train[0])
    y1, dy1, _ = forward(r.params, get_activation("tanh"), train[0])
    loss = lambda y, dy: float(((y - train[1]) ** 2).mean() + ((dy - train[2]) ** 2).mean())
    assert loss(y1, dy1) < 0.1 * loss(y0, dy0)  # a refinement from the init: at least 10x
    assert r.stopped is None and r.iterations == c.refine_iters
    epochs = r.curves["epoch"]
    assert epochs[-1] == c.epochs + c.refine_iters and np.all(np.diff(epochs) > 0)
    total = np.array(r.curves["train_f"]) + np.array(r.curves["train_df"])
    assert total[-1] == pytest.approx(loss(y1, dy1), rel=1e-9)
    assert np.all(np.diff(total) <= 1e-15)  # both accept only steps that lower the loss


def test_a_stalled_line_search_is_recorded_not_raised():
    """ReLU's loss is piecewise quadratic with kinks; after Adam the strong-Wolfe search soon finds
    no lower loss. The run stays ok, stops early, and its curves say where."""
    c = RunConfig("relu", width=16, epochs=200, dtype="float64", optimizer="adam+lbfgs", lbfgs_iters=2000)
    (r,) = train_batched([c])
    assert r.status == "ok"
    last = int(r.curves["epoch"][-1])
    assert c.epochs < last < c.epochs + c.lbfgs_iters


def test_damping_that_runs_away_is_recorded():
    """With every hidden unit dead (ReLU, all pre-activations negative) and the output bias at its
    least-squares value, no step lowers the loss beyond rounding: LM's damping must run away within
    a few iterations, not loop."""
    c = RunConfig("relu", width=4, n_points=50, epochs=1, dtype="float64", optimizer="adam+lm", lm_iters=5)
    (w1, b1), (w2, b2), (w3, b3) = _member(c)
    w1, b1 = torch.zeros_like(w1), -torch.ones_like(b1)
    train, val = _data(c)
    b3 = train[1].mean().view(1, 1, 1).clone()
    r = refine(c, [(w1, b1), (w2, b2), (w3, b3)], get_activation("relu"), train, val)
    assert r.stopped is not None and "damping ran away" in r.stopped and r.iterations < c.lm_iters
    assert len(r.curves["epoch"]) == r.iterations  # the iterations before it are recorded


@pytest.mark.parametrize("optimizer, iters", [("adam+lbfgs", dict(lbfgs_iters=30)), ("adam+lm", dict(lm_iters=5))])
def test_both_engines_refine_alike(optimizer, iters):
    """The reference engine's Adam ends within rounding of the batched engine's (float64), and the
    refinement is the same code: the metrics agree to far better than the effects reported."""
    c = RunConfig("tanh", width=8, n_points=200, epochs=50, dtype="float64", optimizer=optimizer, **iters)
    (a,) = train_batched([c])
    b = train_reference(c)
    assert a.status == b.status == "ok"
    for m in ("grid_f_max", "grid_df_max", "val_f_mse"):
        assert a.metrics[m] == pytest.approx(b.metrics[m], rel=1e-6), m
    np.testing.assert_array_equal(a.curves["epoch"], b.curves["epoch"])


def test_lm_cost_enters_the_estimates():
    """A Levenberg-Marquardt run holds its Jacobian and Gram matrix: a wide one is refused before
    it starts by the memory check, and its compute counts the Gram products."""
    small = RunConfig("tanh", width=32, dtype="float64", optimizer="adam+lm", lm_iters=100)
    huge = RunConfig("tanh", width=4096, depth=4, dtype="float64", optimizer="adam+lm", lm_iters=100)
    assert resources.refine_bytes(huge) > 1e12 > resources.refine_bytes(small)
    assert resources.run_flops(small) > 10 * resources.run_flops(RunConfig("tanh", width=32, dtype="float64"))
    est = resources.estimate([[huge]], "batched", 1)
    with pytest.raises(UserError, match="at peak"):
        resources.check(est, available=24e9, allow_large=False)
