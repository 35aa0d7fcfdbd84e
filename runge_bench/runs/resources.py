"""What a sweep will cost before it starts: peak memory per worker, compute, and whether it fits.

No study file or option may put the machine at risk, so every sweep (and `--dry-run`) estimates
what its tasks need from their configs alone, refuses what cannot fit in this machine's memory
(unless told to go ahead) and warns about what will take hours. The estimates are rough by design
(factors fitted to measured peaks on this project's machines, rounded up) and say so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..engine.gauss_newton import CG_ITERS
from ..engine.model import n_parameters
from ..engine.refine import LBFGS_HISTORY
from ..problem import callables
from ..problem.config import RunConfig
from ..problem.data import n_val
from ..problem.errors import UserError

# A worker process with torch imported (measured ~260 MB) and, for the reference engine, torch.optim
# (which pulls in sympy and dynamo): rounded up so that the reference engine's measured peak at width
# 512, depth 4 (586-643 MB here, 725-729 MB inside CI's full test run) stays below the estimate.
BASE_BYTES = 420e6
# Bytes per (member x point x unit x layer) of activations kept for the backward pass, in units of
# the dtype's size, and per parameter (value, gradient, Adam's two moments, scratch). Fitted to peak
# RSS of single tasks (widths 256-2048, depths 2-4, 1-16 members): ~10 and ~5 for the batched
# engine's torch kernels (the native ones stream 32 points at a time and need less), ~40 for the
# reference engine's double-backward graph; rounded up.
ACTIVATION_WORDS = {"reference": 48.0, "batched": 14.0}
PARAM_WORDS = 8.0
FLOPS_PER_S = 20e9  # per worker; the native step reaches ~50 GFLOP/s at width 256, the rest less
HOURS_WARNING = 2.0
MEMORY_SHARE = 0.8  # of the memory available now that a sweep's workers may plan to use


def member_bytes(c: RunConfig, engine: str = "batched") -> float:
    """Estimated memory one more member adds to a stacked model (task_bytes without the process)."""
    return task_bytes([c], engine) - BASE_BYTES - refine_bytes(c) - user_code_bytes([c])


def task_bytes(task: list[RunConfig], engine: str) -> float:
    """Estimated peak memory of a worker training one task (one run, or one stacked group)."""
    c, m = task[0], len(task)
    word = 8 if c.dtype == "float64" else 4
    n_train = c.n_points - n_val(c.n_points, c.val_fraction)
    points = n_train if c.batch_size is None else min(c.batch_size, n_train)
    act = ACTIVATION_WORDS["reference" if engine == "reference" else "batched"]
    adam = word * m * (act * points * c.width * c.depth + PARAM_WORDS * n_parameters(c.width, c.depth))
    return BASE_BYTES + adam + max(refine_bytes(x) for x in task) + user_code_bytes(task)


def user_code_bytes(task: list[RunConfig]) -> float:
    """What a worker's import of the task's Python targets takes, as measured when the plan
    imported them to check them (problem.callables.import_bytes): every worker imports them too."""
    specs = {c.target for c in task if callables.is_callable_spec(c.target)}
    return sum(callables.import_bytes(spec) for spec in specs)


def refine_bytes(c: RunConfig) -> float:
    """Peak memory of a run's refinement (members refine one at a time). L-BFGS: its history of 2 x
    LBFGS_HISTORY parameter vectors. LM: the Jacobian (2N x P) about three times over (its per-layer
    blocks, the scaled copy) and the Gram system (min(2N, P) squared) twice (it and its Cholesky)."""
    word = 8 if c.dtype == "float64" else 4
    p, rows = n_parameters(c.width, c.depth), 2 * (c.n_points - n_val(c.n_points, c.val_fraction))
    if c.optimizer == "adam+lbfgs":
        return word * p * 2 * LBFGS_HISTORY
    if c.optimizer == "adam+lm":
        return word * (3.0 * rows * p + 2.0 * min(rows, p) ** 2)
    return 0.0  # adam+gn: a few parameter vectors per member, counted in member_bytes' PARAM_WORDS


def run_flops(c: RunConfig) -> float:
    """Floating-point operations of one run: per epoch, every training point goes forward (value and
    tangent) and back (two products per product forward), and every validation point forward."""
    layer = 2.0 * (c.width * c.width * (c.depth - 1) + 4 * c.width)  # multiply-adds of one point, one layer set
    n_v = n_val(c.n_points, c.val_fraction)
    return c.stages * (c.epochs * ((c.n_points - n_v) * 6 * layer + n_v * 2 * layer) + refine_flops(c))


def refine_flops(c: RunConfig) -> float:
    """Floating-point operations of a run's refinement. L-BFGS: per iteration ~2 evaluations of the
    training loss and gradient (line search included), as Adam's epoch costs. LM: per iteration the
    Jacobian (a backward pass per point and output), the Gram product (2N x P x min(2N, P)) and
    its Cholesky; a few tries per iteration when steps are rejected are not counted."""
    n_tr = c.n_points - n_val(c.n_points, c.val_fraction)
    layer = 2.0 * (c.width * c.width * (c.depth - 1) + 4 * c.width)
    if c.optimizer == "adam+lbfgs":
        return c.lbfgs_iters * 2 * n_tr * 8 * layer
    if c.optimizer == "adam+lm":
        p, rows = n_parameters(c.width, c.depth), 2 * n_tr
        return c.lm_iters * (rows * 8 * layer + 2.0 * rows * p * min(rows, p) + min(rows, p) ** 3 / 3)
    if c.optimizer == "adam+gn":  # per iteration up to CG_ITERS products J^T J v (a forward-mode and a
        # backward pass over the training points, as an Adam epoch's step), and a few more
        return c.gn_iters * (CG_ITERS + 4) * n_tr * 6 * layer
    return 0.0


@dataclass(frozen=True)
class Estimate:
    peak_bytes: float  # the largest task's peak, per worker
    workers: int
    flops: float

    @property
    def hours(self) -> float:
        return self.flops / (FLOPS_PER_S * max(1, self.workers)) / 3600

    def describe(self) -> str:
        return (
            f"estimate: peak memory ~{_size(self.peak_bytes)} per worker x {self.workers} workers; compute "
            f"~{self.flops / 1e12:.3g} TFLOP, ~{_duration(self.hours)} at ~{FLOPS_PER_S / 1e9:.0f} GFLOP/s "
            "per worker (rough)"
        )


def estimate(tasks: list[list[RunConfig]], engine: str, workers: int) -> Estimate:
    peak = max((task_bytes(t, engine) for t in tasks), default=BASE_BYTES)
    return Estimate(
        peak_bytes=peak, workers=min(workers, max(1, len(tasks))), flops=sum(run_flops(c) for t in tasks for c in t)
    )


def default_jobs() -> int:
    """The cores this process may run on: a sweep's worker count when --jobs is not given."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def available_bytes() -> float | None:
    """Memory available for new work now (MemAvailable), or None where it cannot be read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def check(est: Estimate, *, available: float | None, allow_large: bool) -> list[str]:
    """Refuse (UserError, field --allow-large) a sweep whose workers cannot fit in the memory
    available; return warnings (long sweeps, and what --allow-large let through)."""
    warnings = []
    if est.hours >= HOURS_WARNING:
        warnings.append(f"this sweep will take hours (~{_duration(est.hours)} estimated); --dry-run shows the plan")
    if available is None:
        return warnings
    budget = MEMORY_SHARE * available
    need = est.peak_bytes * est.workers
    if need <= budget:
        return warnings
    if est.peak_bytes <= budget:
        fits = int(budget // est.peak_bytes)
        problem = (
            f"{est.workers} workers need ~{_size(need)} at peak, more than {MEMORY_SHARE:.0%} of the "
            f"{_size(available)} available; --jobs {fits} fits"
        )
    else:
        problem = (
            f"one worker needs ~{_size(est.peak_bytes)} at peak, more than {MEMORY_SHARE:.0%} of the "
            f"{_size(available)} available: shrink width, depth, n_points or batch_size"
        )
    if not allow_large:
        raise UserError(
            f"{problem} (pass --allow-large to run it anyway)", field="--jobs" if est.peak_bytes <= budget else None
        )
    return [*warnings, f"--allow-large: {problem}"]


def _size(b: float) -> str:
    return f"{b / 1e9:.1f} GB" if b >= 1e9 else f"{b / 1e6:.0f} MB"


def _duration(hours: float) -> str:
    if hours >= 1:
        return f"{hours:.1f} h"
    return f"{hours * 60:.1f} min" if hours * 60 >= 1 else f"{hours * 3600:.0f} s"
