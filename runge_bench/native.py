"""The batched engine's fused CPU kernels (kernels.cpp): built on first use, loaded with ctypes.

The C++ source is compiled with the machine's C++ compiler (`$CXX`, else `c++`) into a cache
folder (`$RUNGE_BENCH_CACHE`, else `~/.cache/runge-bench`), under a name that hashes the source,
the flags, the compiler and this CPU, so that an edited source, another compiler or another
machine sharing the folder gets its own build. A build takes a few seconds, once per machine;
concurrent workers may both build, and the last atomic rename wins.

`NativeKernels` has the interface of `batched.TorchKernels`, which specifies what each kernel
computes; `tests/test_native.py` holds the two to each other. Where no compiler works,
`unavailable()` says why and the engine uses the torch kernels.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch
from torch import Tensor

SOURCE = Path(__file__).with_name("kernels.cpp")
FLAGS = ("-O3", "-march=native", "-fopenmp-simd", "-fno-trapping-math", "-std=c++17", "-shared", "-fPIC")
DTYPES = {torch.float32: "float32", torch.float64: "float64"}


class NativeUnavailable(RuntimeError):
    """The kernels could not be built or loaded here; the message says why."""


def cache_dir() -> Path:
    root = os.environ.get("RUNGE_BENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "runge-bench")
    return Path(root)


def _cpu_signature() -> str:
    """What -march=native depends on: the CPU's model and feature flags (Linux), else the arch."""
    try:
        text = Path("/proc/cpuinfo").read_text()
        keep = [line for line in text.splitlines() if line.startswith(("model name", "flags"))][:2]
        return "\n".join(keep) or platform.machine()
    except OSError:
        return platform.machine()


@functools.lru_cache(maxsize=None)
def _library() -> ctypes.CDLL:
    cxx = os.environ.get("CXX") or "c++"
    if shutil.which(cxx) is None:
        raise NativeUnavailable(f"no C++ compiler: {cxx!r} is not on PATH (set CXX)")
    try:
        version = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise NativeUnavailable(f"{cxx} --version failed: {e}") from None
    source = SOURCE.read_bytes()
    key = hashlib.sha256(b"\0".join([source, " ".join(FLAGS).encode(), version.encode(),
                                     _cpu_signature().encode()])).hexdigest()[:16]  # fmt: skip
    target = cache_dir() / f"kernels-{key}.so"
    if not target.exists():
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
            os.close(fd)
        except OSError as e:
            raise NativeUnavailable(f"cannot write the kernel cache {target.parent}: {e}") from None
        try:
            proc = subprocess.run([cxx, *FLAGS, str(SOURCE), "-o", tmp], capture_output=True, text=True,
                                  timeout=300)  # fmt: skip
            if proc.returncode != 0:
                first = (proc.stderr.strip().splitlines() or ["(no output)"])[0]
                raise NativeUnavailable(f"compiling {SOURCE.name} failed: {first}")
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    try:
        return ctypes.CDLL(str(target))
    except OSError as e:
        raise NativeUnavailable(f"loading {target} failed: {e}") from None


def unavailable() -> str | None:
    """None if the native kernels build and load here, else why not (one line)."""
    try:
        _library()
    except NativeUnavailable as e:
        return str(e)
    return None


_P, _L = ctypes.c_void_p, ctypes.c_long
_SIGNATURES = {  # kernel -> argument types after (M, N, H); see the entry points in kernels.cpp
    "forward_first": [_P] * 4,
    "forward_rows": [_P] * 3,
    "backward_first": [_P] * 7,
    "backward_rows": [_P] * 6,
    "head": [_P] * 17,
}


def _ptr(t: Tensor | None) -> int | None:
    return None if t is None else t.data_ptr()


class NativeKernels:
    """The fused C++ kernels for one activation and dtype, on CPU tensors (see batched.TorchKernels).

    Every input must be contiguous; outputs are allocated here.
    """

    def __init__(self, activation: str, dtype: torch.dtype):
        if dtype not in DTYPES:
            raise NativeUnavailable(f"native kernels support float32 and float64, not {dtype}")
        lib = _library()
        self._fn = {}
        for kernel, args in _SIGNATURES.items():
            fn = getattr(lib, f"rb_{kernel}_{activation}_{DTYPES[dtype]}")
            fn.argtypes, fn.restype = [_L, _L, _L, *args], None
            self._fn[kernel] = fn

    @staticmethod
    def _dims(src) -> tuple[int, int, int]:
        if src.Z is None:
            m, n, _ = src.x.shape
            return m, n, src.b.shape[-1]
        m, n2, h = src.Z.shape
        return m, n2 // 2, h

    def forward(self, src) -> Tensor:
        M, N, H = self._dims(src)
        A = torch.empty(M, 2 * N, H, dtype=src.b.dtype)
        if src.Z is None:
            self._fn["forward_first"](M, N, H, _ptr(src.x), _ptr(src.w), _ptr(src.b), _ptr(A))
        else:
            self._fn["forward_rows"](M, N, H, _ptr(src.Z), _ptr(src.b), _ptr(A))
        return A

    def backward(self, src, GA: Tensor, alive: Tensor) -> tuple[Tensor | None, Tensor, Tensor | None]:
        M, N, H = self._dims(src)
        gb = torch.empty(M, 1, H, dtype=GA.dtype)
        if src.Z is None:
            gw1 = torch.empty(M, 1, H, dtype=GA.dtype)
            self._fn["backward_first"](M, N, H, _ptr(src.x), _ptr(src.w), _ptr(src.b), _ptr(GA), _ptr(alive),
                                       _ptr(gw1), _ptr(gb))  # fmt: skip
            return None, gb, gw1
        G = torch.empty_like(GA)
        self._fn["backward_rows"](M, N, H, _ptr(src.Z), _ptr(src.b), _ptr(GA), _ptr(alive), _ptr(G), _ptr(gb))
        return G, gb, None

    def head(self, src, w: Tensor, b: Tensor, f: Tensor, df: Tensor, weight: Tensor, alive: Tensor):
        M, N, H = self._dims(src)
        first = src.Z is None
        G = None if first else src.Z  # each row of G overwrites the row of Z it comes from
        gw1 = torch.empty(M, 1, H, dtype=w.dtype) if first else None
        gb, gw, gb_out = torch.empty(M, 1, H, dtype=w.dtype), torch.empty_like(w), torch.empty_like(b)
        sq_f, sq_df = torch.empty(M, dtype=torch.float64), torch.empty(M, dtype=torch.float64)
        self._fn["head"](M, N, H, _ptr(src.x), _ptr(src.Z), _ptr(src.w), _ptr(src.b), _ptr(w), _ptr(b), _ptr(f),
                         _ptr(df), _ptr(weight), _ptr(alive), _ptr(G), _ptr(gw1), _ptr(gb), _ptr(gw),
                         _ptr(gb_out), _ptr(sq_f), _ptr(sq_df))  # fmt: skip
        return G, gb, gw1, gw, gb_out, sq_f, sq_df

    def losses(self, src, w: Tensor, b: Tensor, f: Tensor, df: Tensor) -> tuple[Tensor, Tensor]:
        M, N, H = self._dims(src)
        sq_f, sq_df = torch.empty(M, dtype=torch.float64), torch.empty(M, dtype=torch.float64)
        self._fn["head"](M, N, H, _ptr(src.x), _ptr(src.Z), _ptr(src.w), _ptr(src.b), _ptr(w), _ptr(b), _ptr(f),
                         _ptr(df), None, None, None, None, None, None, None, _ptr(sq_f), _ptr(sq_df))  # fmt: skip
        return sq_f, sq_df
