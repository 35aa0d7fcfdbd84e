"""The batched engine's fused CPU kernels (kernels.cpp): built on first use, loaded with ctypes.

The C++ source is compiled with the machine's C++ compiler (`$CXX`, else `c++`) into a cache
folder (`$RUNGE_BENCH_CACHE`, else `~/.cache/runge-bench`), under a name that hashes the source,
the flags, the compiler and this CPU, so that an edited source, another compiler or another
machine sharing the folder gets its own build. A build takes a few seconds, once per machine;
concurrent workers may both build, and the last atomic rename wins.

`NativeKernels` computes what the torch functions of batched.py specify (`loss_and_grads`,
`val_losses`, `adam_step`, `forward`); `tests/test_native.py` holds the two to each other. Where no
compiler works, `unavailable()` says why and the engine uses the torch functions.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch
from torch import Tensor

from .common import ADAM_BETAS, ADAM_EPS

SOURCE = Path(__file__).with_name("kernels.cpp")
FLAGS = (
    "-O3",
    "-march=native",
    "-fopenmp-simd",
    "-fno-trapping-math",
    "-fno-math-errno",
    "-std=c++17",
    "-shared",
    "-fPIC",
)
DTYPES = {torch.float32: "float32", torch.float64: "float64"}
BUILD_TIMEOUT_S = 300
BYTES = (torch.bool, torch.uint8)  # one byte per member: C++ reads alive[m] as uint8_t


class NativeUnavailable(RuntimeError):
    """The kernels could not be built or loaded here; the message says why."""


def cache_dir() -> Path:
    root = os.environ.get("RUNGE_BENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "runge-bench"
    )
    return Path(root)


def _cpu_signature() -> str:
    """What -march=native depends on: the CPU's model and feature flags (Linux), else the arch."""
    try:
        text = Path("/proc/cpuinfo").read_text()
        keep = [line for line in text.splitlines() if line.startswith(("model name", "flags"))][:2]
        return "\n".join(keep) or platform.machine()
    except OSError:
        return platform.machine()


@functools.cache
def _library() -> ctypes.CDLL:
    cxx = os.environ.get("CXX") or "c++"
    if shutil.which(cxx) is None:
        raise NativeUnavailable(f"no C++ compiler: {cxx!r} is not on PATH (set CXX)")
    try:
        version = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise NativeUnavailable(f"{cxx} --version failed: {e}") from None
    source = SOURCE.read_bytes()
    key = hashlib.sha256(
        b"\0".join([source, " ".join(FLAGS).encode(), version.encode(), _cpu_signature().encode()])
    ).hexdigest()[:16]
    built = cache_dir() / f"kernels-{key}.so"
    if not _verified(built):  # absent, or truncated / altered since it was built: build it (again)
        _build(cxx, built)
    try:
        return ctypes.CDLL(str(built))
    except OSError as e:
        raise NativeUnavailable(f"loading {built} failed: {e}") from None


def _fingerprint(path: Path) -> str:
    data = path.read_bytes()
    return f"{len(data)} {hashlib.sha256(data).hexdigest()}"


def _verified(built: Path) -> bool:
    """Whether the cached build is the one that was written: its size and hash match the record
    beside it. Loading a truncated shared library is not an error but a SIGBUS when its pages are
    touched, which no exception handler survives."""
    sidecar = built.with_suffix(".sha256")
    try:
        return built.exists() and sidecar.read_text() == _fingerprint(built)
    except OSError:
        return False


def _build(cxx: str, built: Path) -> None:
    """Compile kernels.cpp to `built` (and its record), atomically: a concurrent reader sees the old
    files, the new ones or a mismatch it rebuilds, never a half-written library."""
    try:
        built.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=built.parent)
        os.close(fd)
    except OSError as e:
        raise NativeUnavailable(f"cannot write the kernel cache {built.parent}: {e}") from None
    sidecar_tmp = tmp + ".sha256"
    try:
        try:
            proc = subprocess.run(
                [cxx, *FLAGS, str(SOURCE), "-o", tmp], capture_output=True, text=True, timeout=BUILD_TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            raise NativeUnavailable(f"compiling {SOURCE.name} took more than {BUILD_TIMEOUT_S} s") from None
        except (OSError, subprocess.SubprocessError) as e:
            raise NativeUnavailable(f"running {cxx} failed: {e}") from None
        if proc.returncode != 0:
            first = (proc.stderr.strip().splitlines() or ["(no output)"])[0]
            raise NativeUnavailable(f"compiling {SOURCE.name} failed: {first}")
        try:
            Path(sidecar_tmp).write_text(_fingerprint(Path(tmp)))
            os.replace(sidecar_tmp, built.with_suffix(".sha256"))
            os.replace(tmp, built)
        except OSError as e:
            raise NativeUnavailable(f"cannot write the kernel cache {built.parent}: {e}") from None
    finally:
        for leftover in (tmp, sidecar_tmp):
            if os.path.exists(leftover):
                os.unlink(leftover)


def kernel_activations() -> tuple[str, ...]:
    """The activations kernels.cpp has kernels for (its RB_ACTIVATION lines), read from the source
    without building it; any other activation trains with the torch kernels."""
    text = SOURCE.read_text()
    return tuple(re.findall(r"^RB_ACTIVATION\(\w+, (\w+)\)$", text, flags=re.MULTILINE))


def unavailable(device: str = "cpu", activation: str | None = None) -> str | None:
    """None if the native kernels can train on `device` here (they build, load, and it is the CPU)
    and, when `activation` is given, kernels.cpp has that activation's kernels; else why not (one
    line). An activation registered in Python alone (problem/activations.py) has none: its runs
    train with the torch kernels."""
    if torch.device(device).type != "cpu":
        return f"the native kernels run on the CPU, not {device}"
    try:
        lib = _library()
    except NativeUnavailable as e:
        return str(e)
    if activation is not None and not hasattr(lib, f"rb_step_{activation}_float32"):
        return f"kernels.cpp has no kernels for activation {activation!r}"
    return None


_P, _L = ctypes.c_void_p, ctypes.c_long
_SIGNATURES = {  # entry point -> argument types; see the end of kernels.cpp
    "step": [_L] * 4 + [_P] * 9,
    "losses": [_L] * 4 + [_P] * 6,
    "activation": [_L] + [_P] * 4,
    "predict": [_L] * 4 + [_P] * 4,
}
_ADAM_ARGS = [_L] + [_P] * 5  # then five scalars of the dtype


def _ptr(t: Tensor, dtype: torch.dtype | tuple[torch.dtype, ...]) -> int:
    """The address C++ will read or write: only of a contiguous CPU tensor of the dtype it expects.
    A strided view, another dtype or a GPU tensor would be read as something else, silently."""
    if (
        t.dtype not in (dtype if isinstance(dtype, tuple) else (dtype,))
        or t.device.type != "cpu"
        or not t.is_contiguous()
    ):
        layout = "contiguous" if t.is_contiguous() else "not contiguous"
        raise ValueError(f"native kernels need contiguous CPU {dtype} tensors, got {t.dtype} on {t.device}, {layout}")
    return t.data_ptr()


def _pointers(tensors: list[Tensor], dtype: torch.dtype) -> ctypes.Array:
    return (ctypes.c_void_p * len(tensors))(*(_ptr(t, dtype) for t in tensors))


def _flat(params) -> list[Tensor]:
    """[w1, b1, w2, b2, ...]: the order kernels.cpp reads parameters and writes gradients in."""
    return [t for wb in params for t in wb]


class NativeKernels:
    """A whole training step (and validation pass) of M stacked members in C++, for one activation
    and dtype, on contiguous CPU tensors. It computes what `batched.loss_and_grads` and
    `batched.val_losses` compute with the torch kernels (tests hold the two to each other), but
    streams the points through the network in blocks that stay in cache: dense products, the
    activation and its derivatives, the output layer, the loss and the whole backward in one call.
    """

    def __init__(self, activation: str, dtype: torch.dtype):
        if dtype not in DTYPES:
            raise NativeUnavailable(f"native kernels support float32 and float64, not {dtype}")
        lib = _library()
        self._fn = {}
        for kernel, args in _SIGNATURES.items():
            fn = getattr(lib, f"rb_{kernel}_{activation}_{DTYPES[dtype]}")
            fn.argtypes, fn.restype = args, None
            self._fn[kernel] = fn
        self.dtype = dtype
        scalar = ctypes.c_float if dtype == torch.float32 else ctypes.c_double
        self._adam = getattr(lib, f"rb_adam_{DTYPES[dtype]}")
        self._adam.argtypes, self._adam.restype = [*_ADAM_ARGS, *[scalar] * 5], None

    def adam(self, theta: Tensor, grad: Tensor, m: Tensor, v: Tensor, lr: Tensor, step: int) -> None:
        """One Adam update in place, as batched.adam_step, over contiguous 1-d buffers (lr: one
        learning rate per parameter)."""
        b1, b2 = ADAM_BETAS
        n, d = theta.numel(), self.dtype
        if not grad.numel() == m.numel() == v.numel() == lr.numel() == n:
            raise ValueError("adam: theta, grad, m, v and lr must have as many elements")
        self._adam(
            n,
            _ptr(theta, d),
            _ptr(grad, d),
            _ptr(m, d),
            _ptr(v, d),
            _ptr(lr, d),
            b1,
            b2,
            ADAM_EPS,
            1 - b1**step,
            (1 - b2**step) ** 0.5,
        )

    @staticmethod
    def _dims(params, x: Tensor) -> tuple[int, int, int, int]:
        M, N, _ = x.shape
        return M, N, params[0][0].shape[-1], len(params) - 1

    def loss_and_grads(
        self, params, x: Tensor, f: Tensor, df: Tensor, weight: Tensor, alive: Tensor, out: list[Tensor] | None = None
    ) -> tuple[list[Tensor], Tensor, Tensor]:
        """As batched.loss_and_grads; the gradients go into `out` (shaped like the parameters, in
        the order [w1, b1, w2, b2, ...]) if given. A member not alive gets zero gradients and NaN
        losses."""
        flat = _flat(params)
        grads = out if out is not None else [torch.empty_like(t) for t in flat]
        M, N, H, D = self._dims(params, x)
        sq_f, sq_df = torch.empty(M, dtype=torch.float64), torch.empty(M, dtype=torch.float64)
        d, f64 = self.dtype, torch.float64
        self._fn["step"](
            M,
            N,
            H,
            D,
            _ptr(x, d),
            _ptr(f, d),
            _ptr(df, d),
            _ptr(weight, d),
            _ptr(alive, BYTES),
            _pointers(flat, d),
            _pointers(grads, d),
            _ptr(sq_f, f64),
            _ptr(sq_df, f64),
        )
        return grads, sq_f, sq_df

    def val_losses(self, params, x: Tensor, f: Tensor, df: Tensor) -> tuple[Tensor, Tensor]:
        """As batched.val_losses: each member's MSE of f and f' at x."""
        M, N, H, D = self._dims(params, x)
        sq_f, sq_df = torch.empty(M, dtype=torch.float64), torch.empty(M, dtype=torch.float64)
        d, f64 = self.dtype, torch.float64
        self._fn["losses"](
            M,
            N,
            H,
            D,
            _ptr(x, d),
            _ptr(f, d),
            _ptr(df, d),
            _pointers(_flat(params), d),
            _ptr(sq_f, f64),
            _ptr(sq_df, f64),
        )
        return sq_f / N, sq_df / N

    def predict(self, params, x: Tensor) -> tuple[Tensor, Tensor]:
        """y and dy/dx of the M members at x (M, N, 1), as batched.forward."""
        M, N, H, D = self._dims(params, x)
        y, dy = torch.empty_like(x), torch.empty_like(x)
        d = self.dtype
        self._fn["predict"](M, N, H, D, _ptr(x, d), _pointers(_flat(params), d), _ptr(y, d), _ptr(dy, d))
        return y, dy

    def activation(self, z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """sigma, sigma', sigma'' at the points of a contiguous z (as Activation.derivatives)."""
        out = [torch.empty_like(z) for _ in range(3)]
        self._fn["activation"](z.numel(), _ptr(z, self.dtype), *(_ptr(t, self.dtype) for t in out))
        return out[0], out[1], out[2]
