"""Where runs are trained: a worker's set-up, one task, and tasks on local worker processes (which
survive a dead worker) or on a Dask cluster.

Workers train and return results; they never write the store (sweep.py does, in the parent).
Runs are cut into tasks here: one run each for the reference engine, groups of one shape for the
batched engine.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import traceback
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterator

from joblib import Parallel, delayed, parallel_config

from .config import BATCHED_ENGINES, RunConfig, RunResult
from .environment import library_versions
from .errors import UserError
from .resources import member_bytes, run_flops


MAX_GROUP = 32  # members per stacked model: larger groups stop paying and delay each result


REFINED_GROUP = 2  # members per task for runs refined after Adam (refine.py): they refine one by one


def group_size(config: RunConfig, max_group: int = MAX_GROUP) -> int:
    """Members per stacked model for a shape: fewer for wide layers, whose work per member is
    already large, so that a task takes about as long at any width (and a kill loses little).
    Runs with a refinement spend nearly all their time in it, one member at a time, so their
    tasks are small: they spread over the workers instead of queueing in one."""
    if config.optimizer != "adam":
        return min(max_group, REFINED_GROUP)
    return min(max_group, max(4, int(max_group * (64 / config.width) ** 2)))


def chunk_runs(configs: list[RunConfig], engine: str, jobs: int, max_group: int = MAX_GROUP) -> list[list[RunConfig]]:
    """Split runs into tasks: one run each for the reference engine; for the batched engine,
    groups of one shape, cut so that every worker gets work, most expensive first."""
    if engine == "reference":
        tasks = [[c] for c in configs]
    else:
        groups: dict[tuple, list[RunConfig]] = defaultdict(list)
        for c in configs:
            groups[(*c.shape_key(), c.optimizer)].append(c)
        pieces_per_group = max(1, math.ceil(jobs / max(1, len(groups))))
        tasks = []
        for members in groups.values():
            size = min(group_size(members[0], max_group), math.ceil(len(members) / pieces_per_group))
            tasks += [members[i : i + size] for i in range(0, len(members), size)]
    # Longest first, so that no worker is left with a big task at the end.
    cost = lambda t: sum(run_flops(c) for c in t)  # noqa: E731
    return sorted(tasks, key=cost, reverse=True)


# On an accelerator one process drives the device (a pool of CPU workers would only contend for
# it), and each shape trains as one stacked model as large as the device's memory allows, so that
# every kernel launch does as much work as it can.
DEVICE_MAX_GROUP = 4096
DEVICE_MEMORY_SHARE = 0.5  # of the device's free memory that one stacked model may plan to use


def on_accelerator(device: str) -> bool:
    """Whether runs on `device` train on an accelerator (cuda, cuda:1), not on this machine's CPUs."""
    return device.split(":")[0] != "cpu"


def device_group(config: RunConfig, free_bytes: float) -> int:
    """Members per stacked model on an accelerator with free_bytes of free memory: as many as
    DEVICE_MEMORY_SHARE of it holds (resources.member_bytes), at least 1, at most DEVICE_MAX_GROUP.
    Runs refined after Adam refine one member at a time on the host side of the loop; they keep
    REFINED_GROUP."""
    if config.optimizer != "adam":
        return REFINED_GROUP
    return max(1, min(DEVICE_MAX_GROUP, int(DEVICE_MEMORY_SHARE * free_bytes // member_bytes(config))))


def device_tasks(configs: list[RunConfig], free_bytes: float) -> list[list[RunConfig]]:
    """The tasks of a sweep on an accelerator: runs of one shape (and optimizer) in groups of
    device_group, the largest work first."""
    groups: dict[tuple, list[RunConfig]] = defaultdict(list)
    for c in configs:
        groups[(*c.shape_key(), c.optimizer)].append(c)
    tasks = []
    for members in groups.values():
        size = device_group(members[0], free_bytes)
        tasks += [members[i : i + size] for i in range(0, len(members), size)]
    return sorted(tasks, key=lambda t: sum(run_flops(c) for c in t), reverse=True)


def device_free_bytes(device: str) -> float:
    """Free memory on an accelerator now, as the driver reports it."""
    import torch

    free, _total = torch.cuda.mem_get_info(torch.device(device))
    return float(free)


def _run_here(tasks: list[list[RunConfig]], engine: str, device: str) -> Iterator[RunResult]:
    """Run tasks one after another in this process (the one that drives the device), yielding
    each task's results as it finishes."""
    for task in tasks:
        yield from run_task(task, engine, device)


def engines() -> dict[str, Callable[[list[RunConfig], str], list[RunResult]]]:
    """Engine name (ENGINE_NAMES) -> train(configs, device) -> results (imported lazily: workers
    import torch)."""
    from . import train
    from .batched import train_batched

    trainers = {"reference": lambda configs, device="cpu": train.train_many_reference(configs, device)}
    for name, kernels in BATCHED_ENGINES.items():
        trainers[name] = lambda configs, device="cpu", k=kernels: train_batched(configs, device, kernels=k)
    return trainers


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
    if on_accelerator(device):
        yield from _run_here(device_tasks(list(configs), device_free_bytes(device)), engine, device)
        return
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
