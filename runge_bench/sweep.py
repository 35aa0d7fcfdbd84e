"""A sweep: study -> plan (what is stored, what is left) -> parallel training -> the store.

Workers train and return results; only this (the parent) process writes the store, one
transaction per run, as results arrive. An interrupted sweep loses at most the runs in flight, and
running it again trains only what is missing.
"""

from __future__ import annotations

import math
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from joblib import Parallel, delayed, parallel_config

from .config import BATCHED_ENGINES, ENGINE_NAMES, RunConfig, RunResult
from .environment import library_versions
from .errors import UserError
from .resources import Estimate, available_bytes, check, estimate
from .store import Store, check_location, protocol_notes, store_path
from .study import Study

MAX_GROUP = 32  # members per stacked model: larger groups stop paying and delay each result


def group_size(config: RunConfig, max_group: int = MAX_GROUP) -> int:
    """Members per stacked model for a shape: fewer for wide layers, whose work per member is
    already large, so that a task takes about as long at any width (and a kill loses little)."""
    return min(max_group, max(4, int(max_group * (64 / config.width) ** 2)))


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
        stored = ", ".join(f"{n} {k}" for k, n in sorted(self.stored.items())) or "none"
        lines.append(f"  stored: {stored}; to train: {len(self.todo)}")
        if self.other_stored:
            lines.append(f"  (the store also holds {self.other_stored} runs outside this plan)")
        lines += [f"  ({note})" for note in protocol_notes(self.other_protocols)]
        return "\n".join(lines)


def make_plan(study: Study, results_dir: str | Path, *, retry_failed: bool = False) -> Plan:
    """Compare the study's runs with its store. Reads the store if there is one; writes nothing."""
    path = store_path(results_dir, study.name)
    check_location(path)
    statuses: dict[str, str] = {}
    other_protocols: dict[int, int] = {}
    if path.exists():
        with Store(path) as store:
            statuses, other_protocols = store.statuses(), store.other_protocols()
    ids = {c.run_id for c in study.configs}
    stored = Counter(statuses[i] for i in ids if i in statuses)
    redo = {"failed"} if retry_failed else set()
    todo = tuple(c for c in study.configs if c.run_id not in statuses or statuses[c.run_id] in redo)
    return Plan(study=study, store_path=path, todo=todo, stored=stored,
                other_stored=len(set(statuses) - ids), other_protocols=other_protocols)  # fmt: skip


def chunk_runs(configs: list[RunConfig], engine: str, jobs: int, max_group: int = MAX_GROUP) -> list[list[RunConfig]]:
    """Split runs into tasks: one run each for the reference engine; for the batched engine,
    groups of one shape, cut so that every worker gets work, most expensive first."""
    if engine == "reference":
        tasks = [[c] for c in configs]
    else:
        groups: dict[tuple, list[RunConfig]] = defaultdict(list)
        for c in configs:
            groups[c.shape_key()].append(c)
        pieces_per_group = max(1, math.ceil(jobs / max(1, len(groups))))
        tasks = []
        for members in groups.values():
            size = min(group_size(members[0], max_group), math.ceil(len(members) / pieces_per_group))
            tasks += [members[i : i + size] for i in range(0, len(members), size)]
    # Longest first, so that no worker is left with a big task at the end.
    cost = lambda t: sum(c.epochs * c.width * (c.width * (c.depth - 1) + 4) * c.n_points for c in t)  # noqa: E731
    return sorted(tasks, key=cost, reverse=True)


def engines() -> dict[str, Callable[[list[RunConfig], str], list[RunResult]]]:
    """Engine name (ENGINE_NAMES) -> train(configs, device) -> results (imported lazily: workers
    import torch)."""
    from . import train
    from .batched import train_batched

    trainers = {"reference": lambda configs, device="cpu": train.train_many_reference(configs, device)}
    for name, kernels in BATCHED_ENGINES.items():
        trainers[name] = lambda configs, device="cpu", k=kernels: train_batched(configs, device, kernels=k)
    return trainers


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


def _failed(config: RunConfig, message: str, engine: str, device: str) -> RunResult:
    return RunResult(config=config, status="failed", error=message, engine=engine, device=device,
                     versions=library_versions())  # fmt: skip


def configure_worker() -> None:
    """Process-wide settings for a worker process: one torch thread (parallelism comes from
    processes and stacking, not intra-op threads) and glibc keeping freed memory (batched.py).
    Nothing in the calling process: with one job, or in library use, joblib runs tasks here, and
    the caller's threads and allocator are not ours to change."""
    import multiprocessing

    if multiprocessing.parent_process() is None:
        return
    import torch

    from .batched import keep_freed_memory

    torch.set_num_threads(1)
    keep_freed_memory()


def run_task(configs: list[RunConfig], engine: str, device: str = "cpu") -> list[RunResult]:
    """Train one task in a worker. Never raises: an exception marks the task's runs failed."""
    configure_worker()
    try:
        return engines()[engine](configs, device)
    except Exception as exc:  # isolate the failure: the sweep goes on
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return [_failed(c, last, engine, device) for c in configs]


def default_jobs() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


MAX_JOBS_PER_CORE = 2  # each worker runs one torch thread: more processes than this only add memory


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
                   allow_large: bool = False) -> tuple[Estimate, list[str]]:  # fmt: skip
    """Estimate what the plan's remaining runs need (resources.py) and check it against this
    machine's memory when they run here: a UserError when they cannot fit (unless allow_large),
    else warnings. On a remote Dask cluster the memory is the workers', not ours: estimate only."""
    kind = "reference" if engine == "reference" else "batched"
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
        raise UserError("--scheduler needs --backend dask", field="--scheduler")


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


def execute(configs: list[RunConfig], *, engine: str = "batched", jobs: int | None = None,
            device: str = "cpu", backend: str = "local", scheduler: str | None = None) -> Iterator[RunResult]:  # fmt: skip
    """Train runs in parallel with joblib and yield each result as its task finishes.

    backend "local": joblib's loky processes on this machine, `jobs` of them. backend "dask":
    joblib's Dask backend on the cluster at `scheduler` (tcp://host:port), or on a LocalCluster
    of `jobs` single-threaded worker processes started here when no scheduler is given.
    """
    jobs = jobs or default_jobs()
    if backend == "dask":
        yield from _execute_dask(configs, engine=engine, jobs=jobs, device=device, scheduler=scheduler)
        return
    if backend != "local":
        raise UserError(f"unknown backend {backend!r} (valid: local, dask)", field="--backend")
    yield from _run_local(chunk_runs(list(configs), engine, jobs), engine, device, jobs)


def _tracked(index: int, configs: list[RunConfig], engine: str, device: str, marks: str) -> tuple[int, list[RunResult]]:
    """run_task, leaving a mark that task `index` started (so that the parent can tell, when a
    worker dies, which tasks were in flight)."""
    Path(marks, str(index)).touch()
    return index, run_task(configs, engine, device)


def _run_local(tasks: list[list[RunConfig]], engine: str, device: str, jobs: int) -> Iterator[RunResult]:
    """Run tasks on loky workers here, yielding results as each task finishes, and survive dead
    workers. A worker killed from outside (SIGKILL, the kernel's out-of-memory killer) takes the
    pool down with it; the results already yielded are kept, each task that was in flight is run
    again alone, and one that kills its worker alone too is the culprit: its runs are returned as
    failed with the cause (so that a later sweep does not crash on it again). The rest go on."""
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    pending = list(range(len(tasks)))
    with tempfile.TemporaryDirectory(prefix="runge-bench-marks-") as marks:
        while pending:
            done: set[int] = set()
            try:
                with parallel_config(backend="loky", n_jobs=max(1, min(jobs, len(pending)))):  # no idle workers
                    for i, results in Parallel(return_as="generator_unordered")(
                            delayed(_tracked)(i, tasks[i], engine, device, marks) for i in pending):  # fmt: skip
                        done.add(i)
                        yield from results
                return
            except TerminatedWorkerError as e:
                cause = _exit_codes(e, "a worker died")
                in_flight = [i for i in pending if i not in done and Path(marks, str(i)).exists()]
                pending = [i for i in pending if i not in done and i not in in_flight]
                for i in in_flight:
                    yield from _run_alone(tasks[i], engine, device, cause)
                for i in pending:
                    Path(marks, str(i)).unlink(missing_ok=True)


def _exit_codes(e: Exception, default: str) -> str:
    """The exit codes loky names in a TerminatedWorkerError, e.g. "{SIGKILL(-9)}"."""
    text = str(e)
    marker = "The exit codes of the workers are "
    return text.split(marker)[-1].strip().splitlines()[0].rstrip(".") if marker in text else default


def _run_alone(task: list[RunConfig], engine: str, device: str, cause: str) -> list[RunResult]:
    """One task in a worker of its own: its results, or, if that worker dies too, its runs failed."""
    from joblib.externals.loky.process_executor import TerminatedWorkerError

    try:
        with parallel_config(backend="loky", n_jobs=2):  # 2: a worker process even for one task
            (results,) = Parallel(return_as="list")([delayed(run_task)(task, engine, device)])
        return results
    except TerminatedWorkerError as e:
        message = (f"the worker process training this run died ({_exit_codes(e, cause)}): killed from outside, e.g. by the "
                   "out-of-memory killer; see the plan's memory estimate")  # fmt: skip
        return [_failed(c, message, engine, device) for c in task]


def _run_tasks(tasks: list[list[RunConfig]], engine: str, device: str) -> Iterator[RunResult]:
    """Run tasks on the active joblib backend, yielding results as each task finishes."""
    if not tasks:
        return
    for results in Parallel(return_as="generator_unordered")(delayed(run_task)(t, engine, device) for t in tasks):
        yield from results


DASK_CONNECT_TIMEOUT_S = 10


def _dask_client(scheduler: str | None, jobs: int):
    """A Client to the scheduler, or to a LocalCluster of `jobs` single-threaded worker processes on
    loopback; returns (client, cluster or None)."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise UserError("the dask backend needs dask.distributed: pip install -e \".[dask]\"",
                        field="--backend") from None  # fmt: skip
    if scheduler is None:
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                               dashboard_address=None, host="127.0.0.1")  # fmt: skip
        return Client(cluster), cluster
    try:
        return Client(scheduler, timeout=DASK_CONNECT_TIMEOUT_S), None
    except (OSError, TimeoutError, ValueError) as e:
        raise UserError(f"cannot reach the Dask scheduler at {scheduler} ({type(e).__name__})",
                        field="--scheduler") from None  # fmt: skip


_PROBE = """
import sys
from dask.distributed import Client
client = Client(sys.argv[1], timeout=float(sys.argv[2]))
client.scheduler_info()
client.close()
"""


def check_scheduler(scheduler: str) -> None:
    """Fail early, with a UserError, when `scheduler` is not the address of a Dask scheduler that
    answers: a malformed address, a missing port, nothing listening, or another service there.
    The handshake runs in a child process with a hard timeout: against a port where something
    else listens, dask's own client can wait for minutes, or read garbage as a message length and
    try to allocate exabytes."""
    try:
        from distributed.comm import get_address_host_port
    except ImportError:
        raise UserError("the dask backend needs dask.distributed: pip install -e \".[dask]\"",
                        field="--backend") from None  # fmt: skip
    try:
        _, port = get_address_host_port(scheduler)
    except ValueError as e:
        raise UserError(f"not a scheduler address ({e}); expected tcp://HOST:PORT", field="--scheduler") from None
    if not 0 < int(port) < 65536:
        raise UserError(f"port {port} is out of range in {scheduler}", field="--scheduler")
    limit = 2 * DASK_CONNECT_TIMEOUT_S
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE, scheduler, str(DASK_CONNECT_TIMEOUT_S)],
                              capture_output=True, text=True, timeout=limit)  # fmt: skip
    except subprocess.TimeoutExpired:
        raise UserError(f"no Dask scheduler answered at {scheduler} within {limit} s (is something else "
                        "listening there?)", field="--scheduler") from None  # fmt: skip
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no answer"])[-1]
        raise UserError(f"cannot reach a Dask scheduler at {scheduler} ({last[:160]})", field="--scheduler")


def _execute_dask(configs, *, engine: str, jobs: int, device: str, scheduler: str | None) -> Iterator[RunResult]:
    client, cluster = _dask_client(scheduler, jobs)
    try:
        # Size the tasks to the cluster: one task per worker thread at least.
        threads = sum(client.nthreads().values()) or jobs
        with parallel_config(backend="dask", n_jobs=-1):
            yield from _run_tasks(chunk_runs(list(configs), engine, threads), engine, device)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


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
