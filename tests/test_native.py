"""The native (C++) kernels against the torch kernels that specify them, kernel by kernel."""

import pytest
import torch

from runge_bench import native
from runge_bench.activations import ACTIVATIONS, get_activation
from runge_bench.batched import Source, TorchKernels

pytestmark = pytest.mark.usefixtures("native_built")

M, N, H = 3, 37, 11  # odd sizes: the vector loops' remainders are exercised too
# float64 agrees to rounding; float32 to a few ulps of the activations (own exp, other
# summation order in the output layer's dot products).
TOL = {torch.float64: dict(rtol=1e-12, atol=1e-13), torch.float32: dict(rtol=2e-5, atol=2e-6)}


def _inputs(dtype, scale=3.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape: (torch.rand(*shape, generator=g, dtype=torch.float64) * 2 - 1).to(dtype)  # noqa: E731
    first = Source(r(M, 1, H) * scale, x=r(M, N, 1), w=r(M, 1, H) * scale)
    rows = Source(r(M, 1, H) * scale, Z=r(M, 2 * N, H) * scale)
    out = dict(w=r(M, H, 1), b=r(M, 1, 1), f=r(M, N, 1), df=r(M, N, 1))
    return first, rows, out, r(M, 2 * N, H), torch.tensor([1.0, 0.1, 10.0], dtype=dtype).view(M, 1, 1)


def _pair(name, dtype):
    return TorchKernels(get_activation(name)), native.NativeKernels(name, dtype)


def _close(got, expected, dtype):
    if expected is None:
        assert got is None
        return
    torch.testing.assert_close(got, expected, **TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_each_kernel_matches_the_torch_kernel(name, dtype):
    spec, fast = _pair(name, dtype)
    first, rows, out, GA, weight = _inputs(dtype)
    alive = torch.ones(M, 1, 1, dtype=torch.bool)
    for src in (first, rows):
        _close(fast.forward(src), spec.forward(src), dtype)
        for got, expected in zip(fast.backward(src, GA, alive), spec.backward(src, GA, alive)):
            _close(got, expected, dtype)
        for got, expected in zip(fast.losses(src, **out), spec.losses(src, **out)):
            _close(got, expected, dtype)
        # head last: the native head writes G over src.Z
        expected = spec.head(src, **out, weight=weight, alive=alive)
        got = fast.head(Source(src.b, Z=None if src.Z is None else src.Z.clone(), x=src.x, w=src.w),
                        **out, weight=weight, alive=alive)  # fmt: skip
        for g, e in zip(got, expected):
            _close(g, e, dtype)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_agree_far_out_and_at_zero(name):
    """Large |z| (exp underflow and the clamp, softplus's linear branch) and z = 0, float32/64."""
    z = torch.tensor([-200.0, -90.0, -30.0, -20.5, -1e-6, 0.0, 1e-6, 19.9, 20.5, 30.0, 90.0, 200.0])
    for dtype in (torch.float64, torch.float32):
        zs = z.to(dtype).view(1, 1, -1)  # one member, one point, 12 units: z = x w + b with x = 0
        src = Source(zs.clone(), x=torch.zeros(1, 1, 1, dtype=dtype), w=torch.ones(1, 1, 12, dtype=dtype))
        spec, fast = TorchKernels(get_activation(name)), native.NativeKernels(name, dtype)
        _close(fast.forward(src), spec.forward(src), dtype)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_nan_propagates_to_the_losses(name):
    """Divergence is detected from non-finite losses: a NaN weight must reach them."""
    first, rows, out, _, weight = _inputs(torch.float32)
    rows.Z[1, 5, 2] = float("nan")
    sq_f, sq_df = native.NativeKernels(name, torch.float32).losses(rows, **out)
    assert torch.isfinite(sq_f[[0, 2]]).all() and torch.isfinite(sq_df[[0, 2]]).all()
    assert not (torch.isfinite(sq_f[1]) and torch.isfinite(sq_df[1]))


def test_a_dead_member_gets_zero_gradients_and_the_others_are_unchanged():
    dtype = torch.float64
    spec, fast = _pair("tanh", dtype)
    first, rows, out, GA, weight = _inputs(dtype)
    alive = torch.tensor([True, False, True]).view(M, 1, 1)
    everyone = torch.ones_like(alive)
    G, gb, _, gw, gb_out, *_ = fast.head(Source(rows.b, Z=rows.Z.clone()), **out, weight=weight, alive=alive)
    G_all, gb_all, _, gw_all, gb_out_all, *_ = spec.head(rows, **out, weight=weight, alive=everyone)
    for got, full in [(G, G_all), (gb, gb_all), (gw, gw_all), (gb_out, gb_out_all)]:
        assert not got[1].any()
        _close(got[[0, 2]], full[[0, 2]], dtype)
    G, gb, _ = fast.backward(rows, GA, alive)
    assert not G[1].any() and not gb[1].any()


def test_a_missing_compiler_is_reported_in_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("CXX", "no-such-compiler-xyz")
    monkeypatch.setenv("RUNGE_BENCH_CACHE", str(tmp_path))
    native._library.cache_clear()
    try:
        why = native.unavailable()
    finally:
        native._library.cache_clear()
    assert why is not None and "no-such-compiler-xyz" in why and "\n" not in why
    assert not list(tmp_path.iterdir())  # nothing half-built left behind


def test_a_build_lands_in_the_cache_under_a_content_hash(monkeypatch, tmp_path):
    monkeypatch.setenv("RUNGE_BENCH_CACHE", str(tmp_path))
    native._library.cache_clear()
    try:
        assert native.unavailable() is None
        built = list(tmp_path.iterdir())
        native._library.cache_clear()
        assert native.unavailable() is None  # loaded from the cache, not built again
        assert list(tmp_path.iterdir()) == built
    finally:
        native._library.cache_clear()
    assert len(built) == 1 and built[0].name.startswith("kernels-") and built[0].suffix == ".so"


def test_unsupported_dtype_is_refused():
    with pytest.raises(native.NativeUnavailable, match="float16"):
        native.NativeKernels("tanh", torch.float16)
