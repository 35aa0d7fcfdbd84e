import pytest
import torch

from runge_bench.engine.model import build_sequential, init_params, n_parameters, stack_params
from runge_bench.engine.stacked import forward, loss_and_grads
from runge_bench.problem.activations import ACTIVATIONS, get_activation
from runge_bench.problem.config import RunConfig


def test_parameter_count_of_the_seed_network():
    assert n_parameters(64, 2) == 2 * 64 + 64 * 65 + 65  # 1-64-64-1: 4353
    for width, depth in ((1, 1), (7, 1), (16, 3), (64, 2)):  # what the network really has
        c = RunConfig("tanh", width=width, depth=depth)
        model = build_sequential(c, init_params(c))
        assert n_parameters(width, depth) == sum(p.numel() for p in model.parameters())


def test_init_draws_what_nn_linear_draws_after_manual_seed():
    config = RunConfig("tanh", seed=11, width=16, depth=2)
    torch.manual_seed(11)
    layers = [torch.nn.Linear(1, 16), torch.nn.Linear(16, 16), torch.nn.Linear(16, 1)]
    for (w, b), lin in zip(init_params(config), layers):
        assert torch.equal(w, lin.weight.detach())
        assert torch.equal(b, lin.bias.detach())


def test_init_does_not_touch_the_global_generator():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    init_params(RunConfig("tanh", seed=5))
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_derivatives_match_autograd(name):
    """sigma, sigma' and sigma'' of the registry against the reference's module and autograd."""
    act = get_activation(name)
    z = torch.linspace(-30, 30, 2001, dtype=torch.float64, requires_grad=True)
    value = act.module()(z)
    (first,) = torch.autograd.grad(value.sum(), z, create_graph=True)
    (second,) = torch.autograd.grad(first.sum(), z, allow_unused=True)
    a, s, s2 = act.derivatives(z.detach())
    torch.testing.assert_close(a, value.detach(), rtol=1e-12, atol=1e-15)
    torch.testing.assert_close(s, first.detach(), rtol=1e-12, atol=1e-15)
    if s2 is None:  # declared identically zero
        assert second is None or not second.any()
    else:
        torch.testing.assert_close(s2, second, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_network_derivative_matches_finite_differences(name):
    config = RunConfig(name, seed=3, width=32, dtype="float64")
    net = build_sequential(config, init_params(config))
    # Away from ReLU kinks is not guaranteed, so compare on a fine grid with a median-based check
    # for relu and a pointwise one for the smooth activations.
    x = torch.linspace(-1, 1, 401, dtype=torch.float64).unsqueeze(1).requires_grad_(True)
    (dy,) = torch.autograd.grad(net(x).sum(), x)
    h = 1e-6
    with torch.no_grad():
        fd = (net(x + h) - net(x - h)) / (2 * h)
    if name == "relu":
        close = torch.isclose(dy, fd, rtol=1e-5, atol=1e-7)
        assert close.float().mean() > 0.97  # all but the points within h of a kink
    else:
        torch.testing.assert_close(dy, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_forward_mode_derivative_equals_autograd(name, depth):
    configs = [RunConfig(name, seed=s, width=12, depth=depth, dtype="float64") for s in range(3)]
    stacked = stack_params([init_params(c) for c in configs])
    x = torch.linspace(-1, 1, 257, dtype=torch.float64)
    xs = x.view(1, -1, 1).repeat(3, 1, 1)
    y, dy, _ = forward(stacked, get_activation(name), xs)
    for m, c in enumerate(configs):
        net = build_sequential(c, init_params(c))
        xm = x.unsqueeze(1).clone().requires_grad_(True)
        ym = net(xm)
        (dym,) = torch.autograd.grad(ym.sum(), xm)
        torch.testing.assert_close(y[m], ym, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(dy[m], dym, rtol=1e-10, atol=1e-12)


def test_unknown_activation_lists_the_valid_ones():
    with pytest.raises(KeyError, match="elu, gelu, leaky_relu, mish, relu, silu, sin, softplus, tanh"):
        get_activation("swish")


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_hand_written_backward_equals_autograd(name, depth, kernel_kind):
    """The batched engine's gradients (torch and native) against autograd through the torch
    forward, float64."""
    configs = [RunConfig(name, seed=s, width=10, depth=depth, dtype="float64") for s in range(3)]
    params = [(w.detach(), b.detach()) for w, b in stack_params([init_params(c) for c in configs])]
    g = torch.Generator().manual_seed(depth * 100 + sorted(ACTIVATIONS).index(name))
    x = torch.rand(3, 40, 1, dtype=torch.float64, generator=g) * 2 - 1
    f = torch.randn(3, 40, 1, dtype=torch.float64, generator=g)
    df = torch.randn(3, 40, 1, dtype=torch.float64, generator=g)
    weight = torch.tensor([1.0, 0.1, 10.0], dtype=torch.float64).view(3, 1, 1)
    leaves = [t.clone().requires_grad_(True) for wb in params for t in wb]
    y, dy, _ = forward(list(zip(leaves[0::2], leaves[1::2])), get_activation(name), x)
    per_member = ((y - f) ** 2).mean(dim=(1, 2)), ((dy - df) ** 2).mean(dim=(1, 2))
    loss = (per_member[0] + weight.view(3) * per_member[1]).sum()
    expected = torch.autograd.grad(loss, leaves)
    step = lambda *args: loss_and_grads(params, get_activation(name), *args)
    if kernel_kind == "native":
        from runge_bench.engine.native import NativeKernels, unavailable

        if unavailable("cpu", name) is not None:
            pytest.skip(f"no native kernels for {name}: its runs train with the torch kernels")

        step = lambda *args: NativeKernels(name, torch.float64).loss_and_grads(params, *args)
    alive = torch.ones(3, 1, 1, dtype=torch.bool)
    with torch.no_grad():
        got, sq_f, sq_df = step(x, f, df, weight, alive)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(sq_f / 40, per_member[0].detach(), rtol=1e-12, atol=0)
    torch.testing.assert_close(sq_df / 40, per_member[1].detach(), rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_derivatives_stay_finite_and_accurate_at_extreme_arguments(name):
    """float32 at arguments far beyond what training sees: finite, and float64's values to float32 precision."""
    z64 = torch.tensor([-1e4, -300.0, -88.0, -30.0, -1e-30, 0.0, 1e-30, 30.0, 88.0, 300.0, 1e4], dtype=torch.float64)
    act = get_activation(name)
    got, want = act.derivatives(z64.float()), act.derivatives(z64)
    for g, w in zip(got, want):
        if w is None:
            assert g is None
            continue
        assert torch.isfinite(g).all(), (name, g)
        if name != "sin":  # sin(30 z) of a float32 z is another argument than of the float64 one
            torch.testing.assert_close(g.double(), w, rtol=2e-6, atol=1e-7)  # values of order 1, or 0


def test_siren_initialisation_and_the_others_unchanged():
    from runge_bench.problem.activations import SIREN_OMEGA0

    sin = init_params(RunConfig("sin", seed=0, width=64))
    assert sin[0][0].abs().max() <= 1.0 and sin[0][0].abs().max() > 0.9  # first layer U(-1/n, 1/n), n = 1
    bound = (6.0 / 64) ** 0.5 / SIREN_OMEGA0
    assert all(w.abs().max() <= bound for w, _ in sin[1:]) and sin[1][0].abs().max() > 0.9 * bound
    for name in ("relu", "gelu", "mish"):  # every other activation: nn.Linear's default, the same draws
        assert all(
            torch.equal(a, b)
            for (wa, ba), (wb, bb) in zip(init_params(RunConfig(name, seed=0)), init_params(RunConfig("tanh", seed=0)))
            for a, b in ((wa, wb), (ba, bb))
        )
