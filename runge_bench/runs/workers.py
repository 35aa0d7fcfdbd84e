"""Where tasks are trained: a worker's set-up, one task, and tasks on local worker processes (which
survive a dead worker), on a Dask cluster, or in this process when it drives an accelerator.

Workers train and return results; they never write the store (sweep.py does, in the parent). How
runs are cut into tasks is tasks.py's.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path

from joblib import Parallel, delayed, parallel_config

from ..engine.environment import library_versions
from ..problem.config import RunConfig, RunResult
from ..problem.errors import UserError
from ..problem.vocabulary import BATCHED_ENGINES
from .resources import default_jobs
from .tasks import on_accelerator


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
    """Engine name (vocabulary.ENGINES) -> train(configs, device) -> results. Imported here, not at
    the top: the engines import torch, which the CLI's planning and --help need not wait for."""
    from ..engine.batched import train_batched
    from ..engine.reference import train_many_reference

    trainers = {"reference": lambda configs, device="cpu": train_many_reference(configs, device)}
    for name, kernels in BATCHED_ENGINES.items():
        trainers[name] = lambda configs, device="cpu", k=kernels: train_batched(configs, device, kernels=k)
    return trainers


def _failed(config: RunConfig, message: str, engine: str, device: str) -> RunResult:
    return RunResult(
        config=config, status="failed", error=message, engine=engine, device=device, versions=library_versions()
    )


def keep_freed_memory() -> None:
    """Ask glibc to keep freed memory for reuse instead of returning it to the OS.

    A stacked step allocates and frees tensors of a few MB each; by default glibc serves these
    with fresh mmaps (or trims them from the heap on free), so every step pays for page faults,
    which made elementwise ops several times slower than their arithmetic in a VM (measured).
    A process-wide setting, so it is called by worker processes (sweep, bench), not on import.
    No-op where glibc is not the allocator.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 1 << 30)  # allocations below 1 GiB come from the heap
        libc.mallopt(m_trim_threshold, 1 << 30)  # and freed heap memory is kept, up to 1 GiB
    except (OSError, AttributeError):
        pass


def configure_worker() -> None:
    """Process-wide settings for a worker process: one torch thread (parallelism comes from
    processes and stacking, not intra-op threads) and glibc keeping freed memory
    (keep_freed_memory).
    Nothing in the calling process: with one job, or in library use, joblib runs tasks here, and
    the caller's threads and allocator are not ours to change."""
    import multiprocessing

    if multiprocessing.parent_process() is None:
        return
    import torch

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


def execute(
    tasks: list[list[RunConfig]],
    *,
    engine: str,
    jobs: int | None = None,
    device: str = "cpu",
    backend: str = "local",
    scheduler: str | None = None,
) -> Iterator[RunResult]:
    """Train tasks (tasks.make_tasks) in parallel with joblib and yield each result as its task
    finishes.

    backend "local": joblib's loky processes on this machine, `jobs` of them; on an accelerator,
    this process, one task after another. backend "dask": joblib's Dask backend on the cluster at
    `scheduler` (tcp://host:port), or on a LocalCluster of `jobs` single-threaded worker processes
    started here when no scheduler is given.
    """
    jobs = jobs or default_jobs()
    if backend == "dask":
        yield from _execute_dask(tasks, engine=engine, jobs=jobs, device=device, scheduler=scheduler)
        return
    if backend != "local":
        raise UserError(f"unknown backend {backend!r} (valid: local, dask)", field="--backend")
    if on_accelerator(device):
        yield from _run_here(tasks, engine, device)
        return
    yield from _run_local(tasks, engine, device, jobs)


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
                        delayed(_tracked)(i, tasks[i], engine, device, marks) for i in pending
                    ):
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
        message = (
            f"the worker process training this run died ({_exit_codes(e, cause)}): killed from outside, e.g. by the "
            "out-of-memory killer; see the plan's memory estimate"
        )
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
        raise UserError(
            'the dask backend needs dask.distributed: pip install -e ".[dask]"', field="--backend"
        ) from None
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
        )
        return Client(cluster), cluster
    try:
        return Client(scheduler, timeout=DASK_CONNECT_TIMEOUT_S), None
    except (OSError, TimeoutError, ValueError) as e:
        raise UserError(
            f"cannot reach the Dask scheduler at {scheduler} ({type(e).__name__})", field="--scheduler"
        ) from None


_PROBE = """
import sys
from dask.distributed import Client
client = Client(sys.argv[1], timeout=float(sys.argv[2]))
print(sum(client.nthreads().values()))
client.close()
"""


def check_scheduler(scheduler: str) -> int:
    """The worker threads of the Dask cluster at `scheduler` (what its tasks are sized to); a
    UserError when `scheduler` is not the address of a Dask scheduler that answers: a malformed
    address, a missing port, nothing listening, or another service there.
    The handshake runs in a child process with a hard timeout: against a port where something
    else listens, dask's own client can wait for minutes, or read garbage as a message length and
    try to allocate exabytes."""
    try:
        from distributed.comm import get_address_host_port
    except ImportError:
        raise UserError(
            'the dask backend needs dask.distributed: pip install -e ".[dask]"', field="--backend"
        ) from None
    try:
        _, port = get_address_host_port(scheduler)
    except ValueError as e:
        raise UserError(f"not a scheduler address ({e}); expected tcp://HOST:PORT", field="--scheduler") from None
    if not 0 < int(port) < 65536:
        raise UserError(f"port {port} is out of range in {scheduler}", field="--scheduler")
    limit = 2 * DASK_CONNECT_TIMEOUT_S
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, scheduler, str(DASK_CONNECT_TIMEOUT_S)],
            capture_output=True,
            text=True,
            timeout=limit,
        )
    except subprocess.TimeoutExpired:
        raise UserError(
            f"no Dask scheduler answered at {scheduler} within {limit} s (is something else listening there?)",
            field="--scheduler",
        ) from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no answer"])[-1]
        raise UserError(f"cannot reach a Dask scheduler at {scheduler} ({last[:160]})", field="--scheduler")
    try:
        return max(1, int(done.stdout.strip().splitlines()[-1]))
    except (IndexError, ValueError):
        return 1


def _execute_dask(
    tasks: list[list[RunConfig]], *, engine: str, jobs: int, device: str, scheduler: str | None
) -> Iterator[RunResult]:
    client, cluster = _dask_client(scheduler, jobs)
    try:
        with parallel_config(backend="dask", n_jobs=-1):
            yield from _run_tasks(tasks, engine, device)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
