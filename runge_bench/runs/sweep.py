"""A sweep: a plan's tasks trained in parallel (workers.py), each result stored as it arrives.

Workers train and return results; only this (the parent) process writes the store, one
transaction per run, as results arrive. An interrupted sweep loses at most the runs in flight, and
running it again trains only what is missing.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..problem.config import RunConfig, RunResult
from ..problem.errors import UserError
from ..problem.vocabulary import ENGINES
from .options import check_options, device_jobs, resolve_engine, resolve_jobs
from .plan import Plan, make_plan, plan_resources
from .resources import Estimate, default_jobs
from .store import Store
from .study import Study, load_study
from .tasks import make_tasks, on_accelerator
from .workers import check_scheduler, device_free_bytes, execute

LOCK_RETRY_S = (0.1, 5.0)  # first and longest pause between attempts to write a locked store


def store_patiently(
    store: Store, result: RunResult, summary: SweepSummary, on_wait: Callable[[str], None] | None = None
) -> None:
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
                raise UserError(
                    f"the disk is full: {stored} runs of this sweep were stored before it filled, "
                    "the store is intact; free space and run the same command to resume",
                    path=store.path,
                ) from None
            raise UserError(
                f"cannot write the store ({text}); {stored} runs of this sweep were stored", path=store.path
            ) from None


@dataclass
class SweepSummary:
    counts: Counter = field(default_factory=Counter)
    wall_s: float = 0.0

    def describe(self) -> str:
        c = self.counts
        return (
            f"trained {sum(c.values())} runs in {self.wall_s:.1f} s: {c['ok']} ok, "
            f"{c['diverged']} diverged, {c['failed']} failed"
        )


def record_study(plan: Plan) -> None:
    """The store learns its study's description and question (for a report of the store alone),
    where it can be written now: a read-only store, or one whose write lock another sweep holds,
    keeps what it has (the next sweep records them)."""
    if not plan.store_path.exists():
        return
    try:
        with Store(plan.store_path) as store:
            if store.study_text() != {"description": plan.study.description, "question": plan.study.question}:
                store.record_study(plan.study.description, plan.study.question)
            declare(plan, store)
    except (sqlite3.OperationalError, UserError):
        pass


def declare(plan: Plan, store: Store) -> None:
    """Record the study's primary metric and hypotheses in its store (a hypothesis keeps the time
    it was first declared)."""
    store.record_hypotheses(plan.study.primary, [h.to_dict() for h in plan.study.hypotheses])


def run_sweep(
    plan: Plan,
    *,
    engine: str = "batched",
    jobs: int | None = None,
    device: str = "cpu",
    backend: str = "local",
    scheduler: str | None = None,
    tasks: list[list[RunConfig]] | None = None,
    on_result: Callable[[RunResult], None] | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> SweepSummary:
    """Train what the plan has left and store each result as it arrives. `tasks`: the plan's
    remaining runs cut into tasks, as plan.plan_resources made and checked them; when not given,
    they are cut here the same way for `jobs` workers. on_wait(message) is called while a result
    waits for the store's write lock."""
    if engine not in ENGINES:
        raise UserError(f"unknown engine {engine!r} (valid: {', '.join(ENGINES)})", field="--engine")
    summary = SweepSummary()
    start = time.perf_counter()
    if not plan.todo:
        record_study(plan)
        return summary
    if tasks is None:
        free = device_free_bytes(device) if backend == "local" and on_accelerator(device) else None
        tasks = make_tasks(
            list(plan.todo), engine, workers=jobs or default_jobs(), device=device, device_free_bytes=free
        )
    with Store(plan.store_path, create=True) as store:
        # Before any run is trained: what makes a hypothesis confirmatory. Another sweep holding the
        # lock: it is declared later (so exploratory for the runs trained meanwhile).
        with contextlib.suppress(sqlite3.OperationalError):
            declare(plan, store)
        for result in execute(tasks, engine=engine, jobs=jobs, device=device, backend=backend, scheduler=scheduler):
            store_patiently(store, result, summary, on_wait)
            summary.counts[result.status] += 1
            summary.wall_s = time.perf_counter() - start
            if on_result is not None:
                on_result(result)
    summary.wall_s = time.perf_counter() - start
    record_study(plan)  # after the runs: a write lock another sweep holds can delay no result
    return summary


# ------------------------------------------------------------------ the `sweep` command's steps


@dataclass(frozen=True)
class SweepOptions:
    """How a sweep trains (the sweep command's options)."""

    engine: str = "batched"  # the family: batched or reference
    kernels: str = "auto"  # the batched engine's elementwise work: auto, native or torch
    compile: bool = False
    device: str = "cpu"
    backend: str = "local"  # local processes, or a Dask cluster
    scheduler: str | None = None  # a Dask scheduler's address (a LocalCluster here when None)
    jobs: int | None = None  # worker processes (all cores when None)
    allow_large: bool = False  # run even when the estimated peak memory exceeds what is available
    retry_failed: bool = False  # train runs stored as failed again


@dataclass(frozen=True)
class PreparedSweep:
    """A study's plan, cut into tasks for the workers that will train them and checked against
    the machine's memory: exactly what the sweep then trains."""

    plan: Plan
    jobs: int
    jobs_note: str | None  # why the workers are fewer than asked, if they are
    tasks: list[list[RunConfig]]
    estimate: Estimate | None  # None when nothing is left to train
    warnings: list[str]


def prepare_sweep(
    study: Path, results_dir: Path, options: SweepOptions, overrides: list[str] | None = None, name: str | None = None
) -> PreparedSweep:
    """Check the options, plan the study against its store and cut what is left into tasks."""
    resolve_jobs(options.jobs)  # a bad --jobs is refused whatever the device
    check_options(
        family=options.engine,
        kernels=options.kernels,
        compile=options.compile,
        device=options.device,
        backend=options.backend,
        scheduler=options.scheduler,
    )
    plan = make_plan(load_study(study, overrides, name), results_dir, retry_failed=options.retry_failed)
    return prepare_plan(plan, options)


def prepare_plan(plan: Plan, options: SweepOptions) -> PreparedSweep:
    """A plan's remaining runs cut into tasks for the workers that will train them, checked against
    the machine's memory (what prepare_sweep does after planning)."""
    resolve_jobs(options.jobs)
    study_kernels(plan.study, options)  # refused before anything is recorded or trained
    jobs, jobs_note = device_jobs(options.device, options.jobs)
    if not plan.todo:
        return PreparedSweep(plan, jobs, jobs_note, [], None, [])
    local_accelerator = on_accelerator(options.device) and options.backend == "local"
    tasks, estimate, warnings = plan_resources(
        plan,
        options.engine,
        jobs,
        backend=options.backend,
        scheduler=options.scheduler,
        scheduler_threads=check_scheduler(options.scheduler) if options.scheduler is not None else None,
        allow_large=options.allow_large,
        device=options.device,
        device_free_bytes=device_free_bytes(options.device) if local_accelerator else None,
    )
    return PreparedSweep(plan, jobs, jobs_note, tasks, estimate, warnings)


def sweep_engine(prepared: PreparedSweep, options: SweepOptions) -> tuple[str, str | None]:
    """The engine that trains the plan's runs, and a note on how it was chosen. A study file's
    `kernels` is the default of --kernels; a --kernels or --compile that contradicts it is refused."""
    activations = {c.activation for c in prepared.plan.todo}
    kernels = study_kernels(prepared.plan.study, options)
    return resolve_engine(options.engine, kernels, options.compile, options.device, activations)


def study_kernels(study: Study, options: SweepOptions) -> str:
    """The kernels a sweep of `study` uses: the study file's `kernels` unless --kernels says
    otherwise; a contradiction between the two is a UserError naming the flag."""
    pinned = study.kernels
    if pinned == "auto":
        return options.kernels
    where = f"{study.path} sets kernels = {pinned!r}" if study.path else f"the study sets kernels = {pinned!r}"
    if options.kernels not in ("auto", pinned):
        raise UserError(f"contradicts the study: {where}", field="--kernels")
    if options.engine != "batched":
        raise UserError(f"the study asks for the batched engine's {pinned} kernels: {where}", field="--engine")
    if options.compile and pinned == "native":
        raise UserError(f"compiles the torch kernels; {where}", field="--compile")
    return pinned


def train_prepared(
    prepared: PreparedSweep,
    options: SweepOptions,
    engine: str,
    on_result: Callable[[RunResult], None] | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> SweepSummary:
    """run_sweep on the prepared tasks."""
    return run_sweep(
        prepared.plan,
        engine=engine,
        jobs=prepared.jobs,
        device=options.device,
        backend=options.backend,
        scheduler=options.scheduler,
        tasks=prepared.tasks,
        on_result=on_result,
        on_wait=on_wait,
    )
