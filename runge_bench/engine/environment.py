"""The arithmetic a number depends on: library versions, the BLAS libraries loaded and the CPU.

Two machines with the same store may still compute different baselines (numpy and scipy call the
BLAS, whose kernels are chosen at run time per CPU) and two machines may train different networks
(torch's kernels, the native step's build for this CPU). Every run records `library_versions()`,
and every report states what computed its own numbers, so that a difference can be traced.
"""

from __future__ import annotations

import platform
import re
from pathlib import Path

import numpy as np
import scipy

from ..problem.version import package_version


def cpu_model() -> str:
    """The CPU's model name, as /proc/cpuinfo gives it (else platform's guess)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_libraries() -> str:
    """The BLAS libraries loaded in this process and the kernel set each chose for this CPU, e.g.
    "openblas 0.3.31 Haswell; mkl 2024.2 avx512" (threadpoolctl reads them from the loaded
    libraries themselves, which build metadata cannot: OpenBLAS picks its kernels at run time)."""
    import scipy.linalg  # noqa: F401  (loads scipy's own BLAS, which numpy's import does not)
    from threadpoolctl import threadpool_info

    seen = []
    for lib in threadpool_info():
        if lib.get("user_api") != "blas":
            continue
        text = " ".join(str(lib[k]) for k in ("internal_api", "version", "architecture") if lib.get(k))
        if text not in seen:
            seen.append(text)
    return "; ".join(sorted(seen)) or "none found"


def _torch_blas(build: str) -> str:
    """torch's BLAS from its build summary (it links MKL statically, out of threadpoolctl's sight)."""
    found = re.search(r"BLAS_INFO=([\w.-]+)", build)
    return found.group(1) if found else "unknown"


def library_versions() -> dict[str, str]:
    """Versions of everything whose arithmetic can change a run's numbers (recorded per run)."""
    import torch

    return {
        "runge_bench": package_version(),
        "python": platform.python_version(),
        "cpu": cpu_model(),
        "torch": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_blas": _torch_blas(torch.__config__.show()),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "blas": blas_libraries(),
    }


def analysis_versions() -> dict[str, str]:
    """What computes a report's own numbers (baselines, statistics): numpy, scipy, their BLAS."""
    import pandas as pd

    return {
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pd.__version__,
        "blas": blas_libraries(),
        "cpu": cpu_model(),
    }
