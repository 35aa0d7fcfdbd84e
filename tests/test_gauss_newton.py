"""Matrix-free Gauss-Newton (gauss_newton.py) and multi-stage training (stages.py) against cases
checkable by hand: the tangent is autograd's JVP, one step on a linear model is least squares, a
stack's members iterate as they would alone, and a network that represents its target exactly is
fitted to rounding, stage after stage."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from runge_bench.engine import gauss_newton as gn
from runge_bench.engine.batched import train_batched
from runge_bench.engine.model import init_params, stack_params
from runge_bench.engine.reference import train_reference
from runge_bench.engine.stacked import forward, tangent
from runge_bench.engine.stages import dominant_frequency
from runge_bench.problem.activations import ACTIVATIONS, get_activation
from runge_bench.problem.config import RunConfig
from runge_bench.problem.errors import UserError
from runge_bench.runs import resources
from runge_bench.runs.study import load_study


def _stack(configs: list[RunConfig]):
    return [(w.detach().clone(), b.detach().clone()) for w, b in stack_params([init_params(c) for c in configs])]


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
@pytest.mark.parametrize("depth", [1, 3])
def test_tangent_is_autograds_jvp(activation, depth):
    """J v of y and dy/dx for a stack of 3 against torch.func.jvp of the stacked forward."""
    configs = [RunConfig(activation, width=5, depth=depth, dtype="float64", seed=s) for s in range(3)]
    params = _stack(configs)
    act = get_activation(activation)
    x = torch.linspace(-1, 1, 11, dtype=torch.float64).view(1, -1, 1).expand(3, -1, -1).contiguous()
    leaves = [t for wb in params for t in wb]
    v = [torch.randn(t.shape, dtype=t.dtype, generator=torch.Generator().manual_seed(i)) for i, t in enumerate(leaves)]

    def outputs(*ls):
        y, dy, _ = forward(list(zip(ls[0::2], ls[1::2])), act, x)
        return y, dy

    _, (jy, jdy) = torch.func.jvp(outputs, tuple(leaves), tuple(v))
    _, _, tape = forward(params, act, x)
    ty, tdy = tangent(params, tape, x, v)
    torch.testing.assert_close(ty, jy, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(tdy, jdy, rtol=1e-10, atol=1e-12)


class _Linear:
    """r(theta) = A theta - b for each member: a model linear in its parameters."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor):
        self.a, self.b = a, b  # (M, R, P), (M, R)
        self.theta = torch.zeros(a.shape[0], a.shape[2], dtype=a.dtype)

    def residual(self):
        return torch.einsum("mrp,mp->mr", self.a, self.theta) - self.b, None

    def loss(self):
        r, _ = self.residual()
        return (r * r).sum(1)

    def jvp(self, _tape, v):
        return torch.einsum("mrp,mp->mr", self.a, v)

    def vjp(self, _tape, u):
        return torch.einsum("mrp,mr->mp", self.a, u)

    def add(self, delta, sign=1.0):
        self.theta.add_(delta, alpha=sign)


def test_one_step_on_a_linear_model_is_least_squares(monkeypatch):
    """With damping ~0 one Gauss-Newton step from any point solves the least-squares problem
    (CG on the normal equations converges in at most P iterations), per member."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3, 40, 7, dtype=torch.float64, generator=g)
    b = torch.randn(3, 40, dtype=torch.float64, generator=g)
    res = _Linear(a, b)
    res.theta.copy_(torch.randn(3, 7, dtype=torch.float64, generator=g))  # start away from 0
    monkeypatch.setattr(gn, "MU_START", 1e-14)
    state = gn.start_state(res)
    gn.gn_iteration(res, state, 1)
    expected = torch.linalg.lstsq(a, b.unsqueeze(-1)).solution[..., 0]
    torch.testing.assert_close(res.theta, expected, rtol=1e-9, atol=1e-10)
    assert bool((state.loss <= (torch.einsum("mrp,mp->mr", a, expected) - b).pow(2).sum(1) * (1 + 1e-12)).all())


def test_a_rejected_step_is_undone_and_damps():
    """A step that raises the loss (here: the model's curvature understated, so the step
    overshoots) is taken back and the damping grows; the loss never rises."""
    g = torch.Generator().manual_seed(1)
    a = torch.randn(2, 20, 4, dtype=torch.float64, generator=g)
    b = torch.randn(2, 20, dtype=torch.float64, generator=g)
    res = _Linear(a, b)
    state = gn.start_state(res)
    real_jvp = res.jvp
    res.jvp = lambda tape, v: 0.1 * real_jvp(tape, v)  # J^T J understated 100x: steps 100x too long
    res.vjp, real_vjp = (lambda tape, u: real_vjp(tape, u)), res.vjp
    before, mu = state.loss.clone(), state.mu.clone()
    theta = res.theta.clone()
    gn.gn_iteration(res, state, 1)
    assert bool((state.loss <= before).all())
    rejected = state.mu > mu
    assert bool(rejected.any())
    torch.testing.assert_close(res.theta[rejected], theta[rejected], rtol=0, atol=0)


def test_members_iterate_as_they_would_alone():
    """Every stacked operation is block-diagonal: member 1 of a stack of 3 ends where it ends alone."""
    configs = [RunConfig("tanh", width=6, dtype="float64", seed=s) for s in range(3)]
    act = get_activation("tanh")
    x = torch.linspace(-1, 1, 30, dtype=torch.float64).view(1, -1, 1).expand(3, -1, -1).contiguous()
    data = (x, 1.0 / (1.0 + 25.0 * x * x), -50.0 * x / (1.0 + 25.0 * x * x) ** 2)
    weight = torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64)
    stack = _stack(configs)
    gn.gauss_newton(act, stack, data, weight, 5)
    alone = [(w[1:2].clone(), b[1:2].clone()) for w, b in _stack(configs)]
    gn.gauss_newton(act, alone, tuple(t[1:2] for t in data), weight[1:2], 5)
    for (w, b), (wa, ba) in zip(stack, alone):
        torch.testing.assert_close(w[1:2], wa, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(b[1:2], ba, rtol=1e-9, atol=1e-12)


def _tanh_target() -> RunConfig:
    """A width-1 tanh network represents 0.5 tanh(2x - 0.3) + 0.1 exactly."""
    return RunConfig(
        "tanh",
        target="0.5*tanh(2*x - 0.3) + 0.1",
        width=1,
        depth=1,
        epochs=300,
        lr=1e-2,
        n_points=200,
        dtype="float64",
        optimizer="adam+gn",
        gn_iters=60,
    )


def test_gauss_newton_fits_a_representable_target_to_rounding():
    (r,) = train_batched([_tanh_target()])
    assert r.status == "ok"
    assert r.metrics["grid_f_max"] < 1e-12 and r.metrics["grid_df_max"] < 1e-11
    # The iterations go on in the curves; at rounding no damping lowers the loss, and it stops.
    assert 300 < r.curves["epoch"][-1] < 300 + 60


def test_a_second_stage_on_an_exact_fit_changes_nothing_but_rounding():
    """On a target fitted exactly, stage 2's scale is the first stage's residual (rounding): the
    sum stays at rounding, and both engines agree on it."""
    c = RunConfig(**{**_tanh_target().to_dict(), "stages": 2})
    (a,) = train_batched([c])
    b = train_reference(c)
    for r in (a, b):
        assert r.status == "ok" and r.metrics["grid_f_max"] < 1e-12 and r.metrics["grid_df_max"] < 1e-11
        assert 2 * 300 + 60 < r.curves["epoch"][-1] <= 2 * (300 + 60)


def test_later_stages_fit_what_the_first_cannot():
    """Three 1-8-8-1 tanh stages on the Runge function: each later stage fits the sum's residual,
    so the sum is far closer than one stage (measured: f max 1.6e-5 -> 6.5e-7, training MSE of f
    3.2e-11 -> 7.7e-14)."""
    one = RunConfig(
        "tanh", width=8, epochs=200, lr=1e-2, n_points=300, dtype="float64", optimizer="adam+gn", gn_iters=40
    )
    three = RunConfig(**{**one.to_dict(), "stages": 3})
    (a,), (b,) = train_batched([one]), train_batched([three])
    assert b.metrics["grid_f_max"] < a.metrics["grid_f_max"] / 10
    assert b.metrics["grid_df_max"] < a.metrics["grid_df_max"] / 3
    assert b.curves["train_f"][-1] < a.curves["train_f"][-1] / 100


def test_dominant_frequency():
    x = torch.rand(2, 500, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    r = torch.cat([torch.sin(2 * np.pi * 3.0 * x[:1]), torch.cos(2 * np.pi * 7.5 * x[1:])])
    np.testing.assert_array_equal(dominant_frequency(x, r), [3.0, 7.5])


@pytest.mark.parametrize(
    "extra, message",
    [
        ('stages = 9\noptimizer = "adam+gn"\ngn_iters = 5', "fixed.stages: must be between 1 and 8"),
        ('stages = 2\noptimizer = "adam+lm"\nlm_iters = 5', "stages > 1 trains every stage with adam or adam+gn"),
        ("stages = 2\nbatch_size = 64", "stages > 1 needs full-batch Adam"),
        ('optimizer = "adam+gn"', "needs gn_iters >= 1"),
    ],
)
def test_bad_stages_are_refused_naming_the_field(tmp_path, extra, message):
    p = tmp_path / "s.toml"
    p.write_text(f'name = "s"\n[fixed]\nactivation = "tanh"\n{extra}\n')
    with pytest.raises(UserError, match=re.escape(message)) as e:
        load_study(p)
    assert "s.toml" in str(e.value)


def test_stages_and_gauss_newton_enter_the_estimates():
    base = RunConfig("tanh", width=256, dtype="float64")
    gn_run = RunConfig("tanh", width=256, dtype="float64", optimizer="adam+gn", gn_iters=100)
    staged = RunConfig("tanh", width=256, dtype="float64", optimizer="adam+gn", gn_iters=100, stages=3)
    assert resources.run_flops(gn_run) > 10 * resources.run_flops(base)
    assert resources.run_flops(staged) == pytest.approx(3 * resources.run_flops(gn_run))
    assert resources.refine_bytes(gn_run) == 0  # no Jacobian: vectors of P, in the member's own memory
    assert base.shape_key() != gn_run.shape_key() != staged.shape_key()


def test_the_refinement_bench_measures_both_side_by_side():
    """`bench --refine`: per width, seconds per iteration of each, and memory as the sweep's
    estimate counts it (the dense LM's Jacobian and Gram system, which Gauss-Newton does without)."""
    from runge_bench.runs.bench import format_refine, measure_refine

    (row,) = measure_refine(widths=(6,), iters=1)
    assert row["params"] == 6 + 6 + 36 + 6 + 6 + 1
    assert row["lm_s"] > 0 and row["gn_s"] > 0
    assert row["lm_mb"] > row["gn_mb"]
    text = format_refine([row])
    assert "dense LM" in text and "matrix-free GN" in text and text.splitlines()[-1].split()[0] == "6"
