"""A sweep: study -> plan (what is stored, what is left) -> parallel training -> the store.

Workers train and return results; only this (the parent) process writes the store, one
transaction per run, as results arrive. An interrupted sweep loses at most the runs in flight, and
running it again trains only what is missing.
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .config import ENGINE_NAMES, RunConfig, RunResult
from .errors import UserError
from .resources import FLOPS_PER_S, Estimate, available_bytes, check, estimate, refine_bytes, refine_flops
from .store import EmptyStore, Store, check_location, protocol_notes, store_path
from .study import Study
from .workers import chunk_runs, default_jobs, device_free_bytes, device_tasks, execute, on_accelerator

@dataclass(frozen=True)
class Plan:
    """What a sweep will do: the study's runs, which are stored already, which are left."""

    study: Study
    store_path: Path
    todo: tuple[RunConfig, ...]
    stored: Counter = field(default_factory=Counter)  # status -> count, among the study's runs
    other_stored: int = 0  # rows in the store that are not part of this study's current plan
    other_protocols: dict[int, int] = field(default_factory=dict)  # protocol version -> rows of it

    def describe(self) -> str:
        """A human-readable summary, printed by `sweep --dry-run` and before every sweep."""
        s = self.study
        lines = [f"study {s.name!r}: {len(s.configs)} runs -> {self.store_path}"]
        if s.description:
            lines.append(f"  {s.description}")
        for key, values in s.axes.items():
            shown = ", ".join(map(str, values[:8])) + (", ..." if len(values) > 8 else "")
            lines.append(f"  grid  {key:<13} {len(values):>4} values: {shown}")
        for key, value in s.fixed.items():
            lines.append(f"  fixed {key:<13} {'full' if key == 'batch_size' and value is None else value}")
        for i, case in enumerate(s.cases):
            lines.append(f"  case  {i:<13} " + ", ".join(f"{k}={v}" for k, v in case.items()))
        refined = [c for c in s.configs if c.optimizer != "adam"]
        if refined:
            lines.append(f"  refinement: {len(refined)} runs go on after Adam with L-BFGS or Levenberg-Marquardt, "
                         "one run at a time in the worker that trained them (refine.py)")  # fmt: skip
            lines += [f"  {line}" for line in lm_costs(refined)]
        stored = ", ".join(f"{n} {k}" for k, n in sorted(self.stored.items())) or "none"
        lines.append(f"  stored: {stored}; to train: {len(self.todo)}")
        if self.other_stored:
            lines.append(f"  (the store also holds {self.other_stored} runs outside this plan)")
        lines += [f"  ({note})" for note in protocol_notes(self.other_protocols)]
        return "\n".join(lines)


def lm_costs(configs: list[RunConfig]) -> list[str]:
    """What one Levenberg-Marquardt iteration costs at each network size of the plan (its Jacobian
    and Gram system grow with width squared, then cubed past 2N parameters): what decides the
    widths LM can afford."""
    shapes: dict[tuple, list[RunConfig]] = {}
    for c in configs:
        if c.optimizer == "adam+lm":
            shapes.setdefault((c.width, c.depth, c.n_points, c.val_fraction, c.dtype), []).append(c)
    out = []
    for (width, depth, *_), cs in sorted(shapes.items()):
        c = cs[0]
        per_iter = refine_flops(c) / c.lm_iters
        total_s = sum(refine_flops(x) for x in cs) / FLOPS_PER_S
        out.append(f"LM at width {width}, depth {depth}: ~{per_iter / 1e9:.3g} GFLOP and ~{refine_bytes(c) / 1e6:.0f} MB "
                   f"per iteration (~{per_iter / FLOPS_PER_S:.2g} s at {FLOPS_PER_S / 1e9:.0f} GFLOP/s); "
                   f"{len(cs)} runs x {c.lm_iters} iterations ~{total_s / 60:.1f} worker-min")  # fmt: skip
    return out


def make_plan(study: Study, results_dir: str | Path, *, retry_failed: bool = False) -> Plan:
    """Compare the study's runs with its store. Reads the store if there is one; writes nothing."""
    path = store_path(results_dir, study.name)
    check_location(path)
    statuses: dict[str, str] = {}
    other_protocols: dict[int, int] = {}
    if path.exists():
        try:
            with Store(path) as store:
                statuses, other_protocols = store.statuses(), store.other_protocols()
        except EmptyStore:  # another sweep is creating it this instant: nothing stored yet
            pass
    ids = {c.run_id for c in study.configs}
    stored = Counter(statuses[i] for i in ids if i in statuses)
    redo = {"failed"} if retry_failed else set()
    todo = tuple(c for c in study.configs if c.run_id not in statuses or statuses[c.run_id] in redo)
    return Plan(study=study, store_path=path, todo=todo, stored=stored,
                other_stored=len(set(statuses) - ids), other_protocols=other_protocols)  # fmt: skip


def batched_engine(kernels: str = "auto", compile: bool = False, device: str = "cpu") -> tuple[str, str | None]:
    """The batched engine to run for the requested kernels ("auto", "native" or "torch"), and a
    note when "auto" could not use the native ones. Builds the native kernels here if needed, so
    that workers find them in the cache."""
    if compile:  # compiles the torch kernels
        return "batched+compile", None
    if kernels == "torch":
        return "batched", None
    from .native import unavailable

    why = unavailable(device)
    if why is None:
        return "batched+native", None
    if kernels == "native":
        raise UserError(why, field="--kernels")
    return "batched", f"using the torch kernels: {why}"


MAX_JOBS_PER_CORE = 2  # each worker runs one torch thread: more processes than this only add memory


def device_jobs(device: str, requested: int | None) -> tuple[int, str | None]:
    """On an accelerator: one process drives it, whatever --jobs asks, with a note when it asked
    for more. Elsewhere: resolve_jobs."""
    if not on_accelerator(device):
        return resolve_jobs(requested)
    note = f"--jobs {requested} ignored: " if requested not in (None, 1) else ""
    return 1, note + f"one process drives {device}, training each shape as one stacked model as large as its memory allows"


def resolve_jobs(requested: int | None) -> tuple[int, str | None]:
    """The local worker count for a requested --jobs (None: all cores), capped at MAX_JOBS_PER_CORE
    per core, with a note when the cap applies. A sweep further never starts more workers than it
    has tasks."""
    cores = default_jobs()
    if requested is None:
        return cores, None
    if requested < 1:
        raise UserError(f"must be at least 1, got {requested}", field="--jobs")
    cap = MAX_JOBS_PER_CORE * cores
    if requested > cap:
        return cap, f"--jobs {requested} capped at {cap} ({MAX_JOBS_PER_CORE} per core on {cores} cores)"
    return requested, None


def plan_resources(plan: Plan, engine: str, jobs: int, *, backend: str = "local", scheduler: str | None = None,
                   allow_large: bool = False, device: str = "cpu") -> tuple[Estimate, list[str]]:  # fmt: skip
    """Estimate what the plan's remaining runs need (resources.py) and check it against this
    machine's memory when they run here: a UserError when they cannot fit (unless allow_large),
    else warnings. On a remote Dask cluster the memory is the workers', not ours: estimate only.
    On an accelerator, one process and the device's free memory (workers.device_tasks)."""
    kind = "reference" if engine == "reference" else "batched"
    if on_accelerator(device) and backend == "local":
        free = device_free_bytes(device)
        est = estimate(device_tasks(list(plan.todo), free), kind, 1)
        return est, check(est, available=free, allow_large=allow_large)
    est = estimate(chunk_runs(list(plan.todo), kind, jobs), kind, jobs)
    local = backend == "local" or scheduler is None
    return est, check(est, available=available_bytes() if local else None, allow_large=allow_large)


def check_options(*, engine: str, kernels: str, compile: bool, device: str, backend: str,
                  scheduler: str | None) -> None:  # fmt: skip
    """Option combinations a sweep refuses before it reads anything: a UserError naming the flag."""
    check_device(device)
    if engine != "batched" and (compile or kernels != "auto"):
        raise UserError("applies to the batched engine only", field="--compile" if compile else "--kernels")
    if compile and kernels == "native":
        raise UserError("compiles the torch kernels, not --kernels native", field="--compile")
    if scheduler is not None and backend != "dask":
        raise UserError("needs --backend dask", field="--scheduler")


def resolve_engine(engine: str, kernels: str = "auto", compile: bool = False, device: str = "cpu") -> tuple[str, str | None]:
    """The engine name a sweep trains with (config.ENGINE_NAMES), and a note when it is not the
    one asked for (batched_engine)."""
    return ("reference", None) if engine == "reference" else batched_engine(kernels, compile, device)


def check_device(device: str) -> str:
    """The torch device to train on, checked before any run starts: a device torch does not know,
    one it cannot train on, or a GPU that is not there is a UserError (nothing is stored)."""
    import torch

    try:
        kind = torch.device(device).type
    except (RuntimeError, ValueError):
        raise UserError(f"not a torch device: {device!r} (e.g. cpu, cuda, cuda:1)", field="--device") from None
    if kind == "cpu":
        return device
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"{device}: no CUDA device is available on this machine", field="--device")
        index = torch.device(device).index
        if index is not None and index >= torch.cuda.device_count():
            raise UserError(f"{device}: this machine has {torch.cuda.device_count()} CUDA device(s)", field="--device")
        return device
    raise UserError(f"{device}: training runs on cpu or cuda, not {kind}", field="--device")


LOCK_RETRY_S = (0.1, 5.0)  # first and longest pause between attempts to write a locked store


def store_patiently(store: Store, result: RunResult, summary: SweepSummary,
                    on_wait: Callable[[str], None] | None = None) -> None:  # fmt: skip
    """Write one result. A store locked by another process for longer than SQLite's busy timeout
    is tried again, with growing pauses, until it frees: a trained result is never dropped (Ctrl-C
    stops the wait). A full disk ends the sweep with a UserError; the store keeps every result
    written before (each is its own transaction) and the failed write leaves no trace."""
    pause = LOCK_RETRY_S[0]
    while True:
        try:
            store.write(result)
            return
        except sqlite3.OperationalError as e:
            text = str(e)
            if "locked" in text or "busy" in text:
                if on_wait is not None:
                    on_wait(f"waiting for the store's write lock (held by another process): {store.path}")
                time.sleep(pause)
                pause = min(2 * pause, LOCK_RETRY_S[1])
                continue
            stored = sum(summary.counts.values())
            if "full" in text:
                raise UserError(f"the disk is full: {stored} runs of this sweep were stored before it filled, "
                                "the store is intact; free space and run the same command to resume",
                                path=store.path) from None  # fmt: skip
            raise UserError(f"cannot write the store ({text}); {stored} runs of this sweep were stored",
                            path=store.path) from None  # fmt: skip


@dataclass
class SweepSummary:
    counts: Counter = field(default_factory=Counter)
    wall_s: float = 0.0

    def describe(self) -> str:
        c = self.counts
        return (f"trained {sum(c.values())} runs in {self.wall_s:.1f} s: {c['ok']} ok, "
                f"{c['diverged']} diverged, {c['failed']} failed")  # fmt: skip


def run_sweep(plan: Plan, *, engine: str = "batched", jobs: int | None = None, device: str = "cpu",
              backend: str = "local", scheduler: str | None = None,
              on_result: Callable[[RunResult], None] | None = None,
              on_wait: Callable[[str], None] | None = None) -> SweepSummary:  # fmt: skip
    """Train what the plan has left and store each result as it arrives. on_wait(message) is
    called while a result waits for the store's write lock."""
    if engine not in ENGINE_NAMES:
        raise UserError(f"unknown engine {engine!r} (valid: {', '.join(ENGINE_NAMES)})", field="--engine")
    summary = SweepSummary()
    start = time.perf_counter()
    if not plan.todo:
        return summary
    with Store(plan.store_path, create=True) as store:
        for result in execute(list(plan.todo), engine=engine, jobs=jobs, device=device, backend=backend,
                              scheduler=scheduler):  # fmt: skip
            store_patiently(store, result, summary, on_wait)
            summary.counts[result.status] += 1
            summary.wall_s = time.perf_counter() - start
            if on_result is not None:
                on_result(result)
    summary.wall_s = time.perf_counter() - start
    return summary
