"""The native (C++) step against the torch functions that specify it."""

import os

import pytest
import torch

from runge_bench.engine import native
from runge_bench.engine.stacked import forward, loss_and_grads, val_losses
from runge_bench.problem.activations import ACTIVATIONS, get_activation

pytestmark = pytest.mark.usefixtures("native_built")

# float64 agrees to rounding; float32 to a few ulps (own exp, other summation orders).
TOL = {torch.float64: dict(rtol=1e-11, atol=1e-13), torch.float32: dict(rtol=1e-4, atol=1e-5)}


def _problem(dtype, M=3, N=37, H=11, depth=2, seed=0):
    """Random stacked parameters and data, scaled so that every activation's regions are visited.
    N = 37 leaves a partial row block; the widths leave columns outside the vector tiles."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape: (torch.rand(*shape, generator=g, dtype=torch.float64) * 2 - 1).to(dtype)
    sizes = [1] + [H] * depth + [1]
    params = [(r(M, i, o) * 3 / i**0.5, r(M, 1, o)) for i, o in zip(sizes[:-1], sizes[1:])]
    x, f, df = r(M, N, 1), r(M, N, 1), r(M, N, 1)
    weight = torch.tensor([1.0, 0.1, 10.0][:M], dtype=dtype).view(M, 1, 1)
    return params, x, f, df, weight


def _close(got, expected, dtype):
    torch.testing.assert_close(got, expected, **TOL[dtype])


@pytest.mark.parametrize(
    "dtype,H", [(torch.float64, 11), (torch.float64, 16), (torch.float32, 20), (torch.float32, 64)]
)
@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("name", native.kernel_activations())
def test_step_and_validation_match_the_torch_functions(name, depth, dtype, H):
    params, x, f, df, weight = _problem(dtype, H=H, depth=depth)
    alive = torch.ones(3, 1, 1, dtype=torch.bool)
    fast = native.NativeKernels(name, dtype)
    spec = get_activation(name)
    grads, sq_f, sq_df = fast.loss_and_grads(params, x, f, df, weight, alive)
    expected, e_f, e_df = loss_and_grads(params, spec, x, f, df, weight, alive)
    for got, e in zip(grads, expected):
        _close(got, e, dtype)
    _close(sq_f, e_f, dtype)
    _close(sq_df, e_df, dtype)
    for got, e in zip(fast.val_losses(params, x, f, df), val_losses(params, spec, x, f, df)):
        _close(got, e, dtype)


def test_gradients_go_into_given_buffers():
    params, x, f, df, weight = _problem(torch.float32)
    out = [torch.full_like(t, 7.0) for wb in params for t in wb]
    alive = torch.ones(3, 1, 1, dtype=torch.bool)
    grads, _, _ = native.NativeKernels("tanh", torch.float32).loss_and_grads(params, x, f, df, weight, alive, out)
    expected, _, _ = loss_and_grads(params, get_activation("tanh"), x, f, df, weight, alive)
    assert all(g is o for g, o in zip(grads, out))
    for g, e in zip(out, expected):
        _close(g, e, torch.float32)


@pytest.mark.parametrize("name", native.kernel_activations())
def test_activation_far_out_and_at_zero(name):
    """Large |z| (exp underflow and its clamp, softplus's linear branch) and z = 0."""
    z = torch.tensor([-200.0, -90.0, -30.0, -20.5, -1e-6, 0.0, 1e-6, 0.7, 19.9, 20.5, 30.0, 90.0, 200.0])
    for dtype in (torch.float64, torch.float32):
        got = native.NativeKernels(name, dtype).activation(z.to(dtype))
        expected = get_activation(name).derivatives(z.to(dtype))
        for g, e in zip(got, expected):
            _close(g, torch.zeros_like(g) if e is None else e, dtype)


@pytest.mark.parametrize("name", native.kernel_activations())
def test_nan_reaches_the_losses_of_its_member_only(name):
    """Divergence is detected from non-finite losses: a NaN weight must reach them."""
    params, x, f, df, weight = _problem(torch.float32)
    params[1][0][1, 4, 2] = float("nan")
    sq_f, sq_df = native.NativeKernels(name, torch.float32).val_losses(params, x, f, df)
    assert torch.isfinite(sq_f[[0, 2]]).all() and torch.isfinite(sq_df[[0, 2]]).all()
    assert not (torch.isfinite(sq_f[1]) and torch.isfinite(sq_df[1]))


def test_a_loss_sum_that_overflows_the_dtype_is_not_finite():
    """As in the reference engine, which sums squared residuals in the run's dtype."""
    params, x, f, df, weight = _problem(torch.float32)
    f[0] = 3e19  # each squared residual ~1e39 > float32's max
    sq_f, _ = native.NativeKernels("tanh", torch.float32).val_losses(params, x, f, df)
    assert not torch.isfinite(sq_f[0]) and torch.isfinite(sq_f[1:]).all()


def test_a_dead_member_gets_zero_gradients_and_the_others_are_unchanged():
    params, x, f, df, weight = _problem(torch.float64, depth=3)
    fast = native.NativeKernels("silu", torch.float64)
    everyone = torch.ones(3, 1, 1, dtype=torch.bool)
    alive = torch.tensor([True, False, True]).view(3, 1, 1)
    all_grads, all_f, _ = fast.loss_and_grads(params, x, f, df, weight, everyone)
    grads, sq_f, _ = fast.loss_and_grads(params, x, f, df, weight, alive)
    for g, full in zip(grads, all_grads):
        assert not g[1].any()
        assert torch.equal(g[[0, 2]], full[[0, 2]])
    assert torch.isnan(sq_f[1]) and torch.equal(sq_f[[0, 2]], all_f[[0, 2]])


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
    assert sorted(p.suffix for p in built) == [".sha256", ".so"] and all(p.name.startswith("kernels-") for p in built)


def test_a_truncated_cached_build_is_rebuilt_not_loaded(monkeypatch, tmp_path):
    """Loading a truncated shared library crashes the process with SIGBUS when its pages are
    touched: the cache keeps each build's size and hash beside it and rebuilds on a mismatch."""
    monkeypatch.setenv("RUNGE_BENCH_CACHE", str(tmp_path))
    native._library.cache_clear()
    try:
        assert native.unavailable() is None
        (so,) = tmp_path.glob("*.so")
        whole = so.read_bytes()
        # A new file in its place, as a crashed copy would leave it: truncating the loaded file in
        # place would pull its pages from under this very process (the SIGBUS this test is about).
        (tmp_path / "half").write_bytes(whole[: len(whole) // 2])
        os.replace(tmp_path / "half", so)
        native._library.cache_clear()
        assert native.unavailable() is None
        assert native._verified(so) and len(so.read_bytes()) > len(whole) // 2  # rebuilt whole
    finally:
        native._library.cache_clear()


@pytest.mark.parametrize("how", ["timeout", "not executable"])
def test_a_build_that_cannot_finish_falls_back_to_the_torch_kernels(monkeypatch, tmp_path, how):
    from runge_bench.runs.options import batched_engine

    monkeypatch.setenv("RUNGE_BENCH_CACHE", str(tmp_path / "cache"))
    if how == "timeout":
        monkeypatch.setattr(native, "BUILD_TIMEOUT_S", 0.001)
        expected = "took more than 0.001 s"
    else:
        fake = tmp_path / "c++"
        fake.write_text("not a program")
        fake.chmod(0o755)  # executable bit, but no interpreter line: exec fails with OSError
        monkeypatch.setenv("CXX", str(fake))
        expected = "failed"
    native._library.cache_clear()
    try:
        engine, note = batched_engine("auto")
    finally:
        native._library.cache_clear()
    assert engine == "batched" and note.startswith("using the torch kernels:") and expected in note, note
    assert "\n" not in note


def test_unsupported_dtype_is_refused():
    with pytest.raises(native.NativeUnavailable, match="float16"):
        native.NativeKernels("tanh", torch.float16)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_adam_matches_the_torch_adam_step(dtype):
    from runge_bench.engine.stacked import adam_step

    g = torch.Generator().manual_seed(1)
    theta = torch.randn(1000, generator=g, dtype=torch.float64).to(dtype)
    lr = torch.tensor([1e-3, 3e-2], dtype=dtype).repeat_interleave(500)
    mine, spec = theta.clone(), theta.clone()
    state = [torch.zeros_like(theta) for _ in range(4)]
    fast = native.NativeKernels("tanh", dtype)
    for step in range(1, 6):
        grad = torch.randn(1000, generator=g, dtype=torch.float64).to(dtype)
        fast.adam(mine, grad, state[0], state[1], lr, step)
        adam_step([spec], [grad], [state[2]], [state[3]], step, lr)
    _close(mine, spec, dtype)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_predict_matches_the_torch_forward(depth):
    params, x, _, _, _ = _problem(torch.float64, depth=depth, N=70)
    y, dy = native.NativeKernels("softplus", torch.float64).predict(params, x)
    ey, edy, _ = forward(params, get_activation("softplus"), x)
    _close(y, ey, torch.float64)
    _close(dy, edy, torch.float64)


UBSAN_SCRIPT = """
import torch
from runge_bench.engine import native
from runge_bench.problem.activations import ACTIVATIONS
from runge_bench.engine.batched import train_batched
from runge_bench.problem.config import RunConfig

native.FLAGS = (*native.FLAGS, "-fsanitize=undefined", "-fno-sanitize-recover=all")
z = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.0, 1e30, -1e30, 3.0, -3.0] * 4)
for act in native.kernel_activations():
    for dtype in (torch.float32, torch.float64):
        native.NativeKernels(act, dtype).activation(z.to(dtype))
        # A diverging member (NaN through the whole step) beside a healthy one, depths 1-3.
        for depth in (1, 2, 3):
            good = RunConfig(act, seed=1, width=9, depth=depth, epochs=6, n_points=70, dtype=str(dtype)[6:])
            bad = RunConfig(act, seed=2, width=9, depth=depth, epochs=6, n_points=70, dtype=str(dtype)[6:], lr=1e6)
            train_batched([good, bad], kernels="native")
print("clean")
"""


@pytest.mark.slow
def test_the_kernels_have_no_undefined_behaviour_under_ubsan(tmp_path):
    """kernels.cpp built with -fsanitize=undefined, aborting on the first report, runs the
    activations at NaN, ±inf and huge inputs and whole training steps with a diverging member (the
    NaN that divergence detection relies on used to reach an integer cast and a negative shift)."""
    import subprocess
    import sys

    env = {**os.environ, "RUNGE_BENCH_CACHE": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", UBSAN_SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    if "cannot find -lubsan" in done.stderr or "libubsan" in done.stderr and "No such file" in done.stderr:
        pytest.skip("this compiler has no UBSan runtime")
    assert done.returncode == 0 and "clean" in done.stdout, done.stderr[-2000:]


def test_the_boundary_refuses_tensors_cpp_would_misread():
    k = native.NativeKernels("tanh", torch.float32)
    z = torch.zeros(4, 6)
    for bad, what in ((z.t(), "not contiguous"), (z.double(), "torch.float64"), (z[:, ::2], "not contiguous")):
        with pytest.raises(ValueError, match=what):
            k.activation(bad)
    theta = torch.zeros(5)
    with pytest.raises(ValueError, match="as many elements"):
        k.adam(theta, torch.zeros(5), torch.zeros(5), torch.zeros(5), torch.zeros(4), step=1)
    a, d1, d2 = k.activation(z)  # the right tensors pass
    assert torch.equal(a, torch.zeros(4, 6)) and torch.equal(d1, torch.ones(4, 6))


@pytest.fixture
def python_only_activation(monkeypatch):
    """An activation registered in Python alone (as a user's would be before any C++): ReLU's
    maths under a name kernels.cpp does not know."""
    from runge_bench.problem.activations import Activation

    relu = ACTIVATIONS["relu"]
    monkeypatch.setitem(ACTIVATIONS, "relu_py", Activation("relu_py", relu.module, relu.derivatives))
    return "relu_py"


def test_an_activation_without_native_kernels_trains_with_the_torch_ones(native_built, python_only_activation):
    from runge_bench.engine.batched import train_batched
    from runge_bench.problem.config import RunConfig

    assert native.unavailable() is None
    assert native.unavailable(activation="relu") is None
    assert "no kernels for activation 'relu_py'" in native.unavailable(activation=python_only_activation)
    configs = [RunConfig(python_only_activation, seed=s, width=4, epochs=3, n_points=30) for s in (0, 1)]
    native_results = train_batched(configs, kernels="native")
    torch_results = train_batched(configs, kernels="torch")
    assert [r.status for r in native_results] == ["ok", "ok"]
    assert {r.engine for r in native_results} == {"batched"}  # what actually trained them
    for a, b in zip(native_results, torch_results):
        assert a.metrics == b.metrics  # the same computation, bit for bit


def test_a_sweep_says_which_activations_lack_native_kernels(
    native_built, python_only_activation, write_study, tmp_path
):
    from typer.testing import CliRunner

    from runge_bench.cli import app
    from runge_bench.runs.store import Store

    study = write_study(
        'name = "py"\n[fixed]\nwidth = 4\nepochs = 3\nn_points = 30\n[grid]\n'
        'activation = ["relu", "relu_py"]\nseed = [0, 1]\n'
    )
    result = CliRunner().invoke(app, ["sweep", str(study), "--results-dir", str(tmp_path), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stdout.splitlines() if "no native kernels" in line]
    assert notes == [
        "engine: batched+native (no native kernels for relu_py: their runs train with the torch kernels (engine batched))"
    ]
    with Store(tmp_path / "py" / "runs.sqlite") as store:
        runs = store.runs()
    assert set(runs.status) == {"ok"}
    assert dict(zip(runs.activation, runs.engine)) == {"relu": "batched+native", "relu_py": "batched"}


def test_the_activations_with_kernels_are_read_from_the_source_and_have_them(native_built):
    """Every activation kernels.cpp declares has its entry points; every other one reports why not."""
    assert native.kernel_activations() == ("relu", "tanh", "silu", "softplus")
    for name in ACTIVATIONS:
        why = native.unavailable("cpu", name)
        assert (why is None) == (name in native.kernel_activations()), (name, why)
