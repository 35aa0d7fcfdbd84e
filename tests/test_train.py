"""Both engines: determinism, agreement with each other, isolation of members, divergence."""

import dataclasses

import numpy as np
import pytest
import torch

from runge_bench.engine.batched import train_batched
from runge_bench.engine.model import init_params, stack_params
from runge_bench.engine.reference import train_reference
from runge_bench.engine.stacked import adam_step
from runge_bench.problem.activations import ACTIVATIONS
from runge_bench.problem.config import RunConfig
from runge_bench.problem.vocabulary import METRICS

SMALL = dict(width=16, n_points=120, epochs=30)


@pytest.mark.parametrize("engine", ["reference", "batched"])
def test_same_config_gives_identical_numbers(engine):
    c = RunConfig("tanh", seed=4, batch_size=16, **SMALL)
    run = (lambda: train_reference(c)) if engine == "reference" else (lambda: train_batched([c])[0])
    a, b = run(), run()
    assert a.status == b.status == "ok"
    assert a.metrics == b.metrics
    for k in a.curves:
        np.testing.assert_array_equal(a.curves[k], b.curves[k])


def test_result_carries_metrics_curves_and_predictions():
    r = train_reference(RunConfig("relu", **SMALL))
    assert set(r.metrics) == set(METRICS)
    assert all(np.isfinite(v) and v >= 0 for v in r.metrics.values())
    # The dense grid (step 2e-4) passes within 1e-4 of every validation point, and the error's slope
    # is at most |f'| + |network'| < 20 here: its max can fall short of the validation max by < 2e-3.
    assert r.metrics["grid_f_max"] >= r.metrics["val_f_max"] - 2e-3
    assert r.metrics["grid_df_max"] >= r.metrics["val_df_max"] - 2e-2  # f'' of the Runge function < 50
    assert len(r.curves["epoch"]) == 30 and set(r.curves) == {"epoch", "train_f", "train_df", "val_f", "val_df"}
    assert r.predictions["f"].shape == (401,) and r.predictions["df"].shape == (401,)
    assert r.versions["torch"] == torch.__version__


def test_training_reduces_the_loss():
    r = train_reference(RunConfig("tanh", width=16, n_points=120, epochs=200))
    assert r.curves["train_f"][-1] < 0.2 * r.curves["train_f"][0]
    assert r.curves["val_df"][-1] < r.curves["val_df"][0]


def test_adam_step_matches_torch_adam_per_member():
    torch.manual_seed(0)
    p = torch.randn(3, 4, 5, dtype=torch.float64)
    lrs = torch.tensor([1e-3, 1e-2, 0.1], dtype=torch.float64).view(3, 1, 1)
    mine = p.clone()
    m, v = torch.zeros_like(p), torch.zeros_like(p)
    refs = [p[i].clone().requires_grad_(True) for i in range(3)]
    opts = [torch.optim.Adam([r], lr=float(lrs[i])) for i, r in enumerate(refs)]
    for step in range(1, 6):
        g = torch.randn_like(p)
        adam_step([mine], [g], [m], [v], step, lrs)
        for i in range(3):
            refs[i].grad = g[i].clone()
            opts[i].step()
    for i in range(3):
        torch.testing.assert_close(mine[i], refs[i].detach(), rtol=1e-12, atol=1e-14)


# Tolerances for the batched engine against the reference (documented in the README): float64
# agrees to rounding; float32 drifts by reassociation of sums over 30+ Adam steps.
@pytest.mark.parametrize("dtype,rtol", [("float64", 1e-7), ("float32", 2e-2)])
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_batched_member_agrees_with_reference(activation, dtype, rtol, kernel_kind):
    configs = [
        RunConfig(activation, seed=s, deriv_weight=w, lr=lr, dtype=dtype, batch_size=32, **SMALL)
        for s, w, lr in [(0, 1.0, 1e-3), (1, 0.1, 3e-3), (2, 10.0, 1e-3)]
    ]
    batched = train_batched(configs, kernels=kernel_kind)
    for c, b in zip(configs, batched):
        r = train_reference(c)
        for k in METRICS:
            assert b.metrics[k] == pytest.approx(r.metrics[k], rel=rtol), k
        np.testing.assert_allclose(b.curves["train_f"], r.curves["train_f"], rtol=rtol)


def test_batched_parameters_after_a_few_steps_equal_reference_float64(kernel_kind):
    from runge_bench.engine.model import build_sequential
    from runge_bench.problem.data import make_split
    from runge_bench.problem.targets import runge, runge_derivative

    c = RunConfig("tanh", seed=3, dtype="float64", width=8, epochs=3, n_points=60)
    # Reference by hand: three full-batch Adam steps.
    split = make_split(c.n_points, c.val_fraction, c.seed)
    x = torch.tensor(split.x_train).unsqueeze(1)
    net = build_sequential(c, init_params(c))
    opt = torch.optim.Adam(net.parameters(), lr=c.lr)
    for _ in range(3):
        xr = x.clone().requires_grad_(True)
        y = net(xr)
        (dy,) = torch.autograd.grad(y.sum(), xr, create_graph=True)
        loss = ((y[:, 0] - torch.tensor(runge(split.x_train))) ** 2).mean() + (
            (dy[:, 0] - torch.tensor(runge_derivative(split.x_train))) ** 2
        ).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    # Batched: the same three steps, read back through the predictions on the plot grid.
    b = train_batched([c], kernels=kernel_kind)[0]
    grid = torch.linspace(-1, 1, 401, dtype=torch.float64).unsqueeze(1)
    with torch.no_grad():
        np.testing.assert_allclose(b.predictions["f"], net(grid)[:, 0].numpy().astype(np.float32), rtol=1e-6)


def test_membership_does_not_change_a_run(kernel_kind):
    target = RunConfig("silu", seed=7, batch_size=24, **SMALL)
    alone = train_batched([target], kernels=kernel_kind)[0]
    others = [dataclasses.replace(target, seed=s, lr=lr) for s, lr in [(1, 1e-2), (2, 1e-3), (3, 5e-3)]]
    packed = train_batched([others[0], target, *others[1:]], kernels=kernel_kind)[1]
    assert packed.config == target
    for k in METRICS:
        assert packed.metrics[k] == pytest.approx(alone.metrics[k], rel=1e-5), k


def test_diverging_run_is_marked_and_others_are_untouched(kernel_kind):
    good = RunConfig("relu", seed=1, **SMALL)
    bad = dataclasses.replace(good, lr=1e6)
    ref = train_reference(bad)
    assert ref.status == "diverged" and ref.diverged_epoch <= 3 and ref.metrics == {}
    assert len(ref.curves["epoch"]) == ref.diverged_epoch  # stopped at the first non-finite loss
    last = [ref.curves[k][-1] for k in ("train_f", "train_df", "val_f", "val_df")]
    assert not np.all(np.isfinite(last))
    assert all(np.all(np.isfinite(ref.curves[k][:-1])) for k in ("train_f", "val_f"))
    b_bad, b_good = train_batched([bad, good], kernels=kernel_kind)
    assert b_bad.status == "diverged" and b_bad.diverged_epoch == ref.diverged_epoch
    assert len(b_bad.curves["epoch"]) == b_bad.diverged_epoch  # its history ends where it diverged
    assert not np.all(np.isfinite([b_bad.curves[k][-1] for k in ("train_f", "train_df", "val_f", "val_df")]))
    assert all(np.all(np.isfinite(b_bad.curves[k][:-1])) for k in ("train_f", "val_f"))
    assert np.all(np.isfinite(b_good.curves["train_f"])) and len(b_good.curves["epoch"]) == good.epochs
    assert b_good.status == "ok"
    alone = train_batched([good], kernels=kernel_kind)[0]
    for k in METRICS:
        assert b_good.metrics[k] == pytest.approx(alone.metrics[k], rel=1e-5)


@pytest.mark.parametrize("sync_every", [2, 7, 100])
def test_losses_copied_back_in_spans_change_nothing(kernel_kind, sync_every):
    """An accelerator copies the losses back every SYNC_EVERY epochs: same runs, same curves, and
    a member that diverges mid-span is cut at the epoch it diverged, the others untouched."""
    good = [RunConfig("relu", seed=s, **SMALL) for s in (1, 2)]
    bad = dataclasses.replace(good[0], lr=1e6)
    each = train_batched([good[0], bad, good[1]], kernels=kernel_kind, sync_every=1)
    spans = train_batched([good[0], bad, good[1]], kernels=kernel_kind, sync_every=sync_every)
    assert [r.status for r in spans] == ["ok", "diverged", "ok"]
    assert spans[1].diverged_epoch == each[1].diverged_epoch and 1 < each[1].diverged_epoch < SMALL["epochs"]
    for a, b in zip(each, spans):
        assert a.metrics == b.metrics
        for k in a.curves:
            np.testing.assert_array_equal(a.curves[k], b.curves[k], err_msg=k)


def test_stacking_keeps_each_member_in_nn_linear_layout():
    params = [init_params(RunConfig("tanh", seed=s, width=5)) for s in range(3)]
    stacked = stack_params(params)
    for i in range(3):
        for (w, b), (ws, bs) in zip(params[i], stacked):
            assert torch.equal(w, ws[i].T) and torch.equal(b, bs[i, 0])


def test_batched_rejects_mixed_shapes():
    with pytest.raises(ValueError, match="one shape"):
        train_batched([RunConfig("tanh"), RunConfig("relu")])


def test_batched_rejects_unknown_kernels_and_native_off_the_cpu():
    with pytest.raises(ValueError, match="kernels"):
        train_batched([RunConfig("tanh")], kernels="fortran")
    with pytest.raises(ValueError, match="CPU, not cuda"):
        train_batched([RunConfig("tanh")], device="cuda", kernels="native")


def test_native_engine_is_labelled_and_agrees_with_torch_kernels_over_a_long_run(native_built):
    """300 float32 epochs: the fused kernels' rounding differs from torch's, the runs must not."""
    configs = [RunConfig(a, seed=4, width=16, n_points=200, epochs=300) for a in ("tanh", "softplus")]
    for c in configs:
        spec, fast = train_batched([c])[0], train_batched([c], kernels="native")[0]
        assert (spec.engine, fast.engine) == ("batched", "batched+native")
        for k in METRICS:
            assert fast.metrics[k] == pytest.approx(spec.metrics[k], rel=5e-2), k


@pytest.mark.slow
def test_compiled_step_agrees_with_eager():
    configs = [RunConfig("silu", seed=s, width=8, n_points=60, epochs=15) for s in range(2)]
    eager = train_batched(configs)
    compiled = train_batched(configs, kernels="compile")
    for e, c in zip(eager, compiled):
        assert c.engine == "batched+compile" and c.status == "ok"
        for k in METRICS:
            assert c.metrics[k] == pytest.approx(e.metrics[k], rel=1e-3), k
