"""The options of `sweep` and `bench`, checked before anything is read or trained: each mistake
a UserError naming its flag; and what they resolve to (the engine, the worker count, the device)."""

from __future__ import annotations

from collections.abc import Iterable

from ..engine import native
from ..problem.errors import UserError
from .resources import default_jobs
from .tasks import on_accelerator


def check_options(
    *, family: str, kernels: str, compile: bool, device: str, backend: str, scheduler: str | None
) -> None:
    """Option combinations a sweep refuses before it reads anything: a UserError naming the flag.
    family: the CLI's --engine, "batched" or "reference" (vocabulary.engine_family)."""
    check_device(device)
    if family != "batched" and (compile or kernels != "auto"):
        raise UserError("applies to the batched engine only", field="--compile" if compile else "--kernels")
    if compile and kernels == "native":
        raise UserError("compiles the torch kernels, not --kernels native", field="--compile")
    if scheduler is not None and backend != "dask":
        raise UserError("needs --backend dask", field="--scheduler")


MAX_REPEAT = 20  # rounds of the bench: each takes a minute or more; past this, the median no longer moves


def check_bench_options(*, repeat: int, fail_below: float | None, device: str | None, launch: bool = False) -> None:
    """`bench`'s own options: a UserError naming the flag."""
    if launch:  # the launch strategies on one device, any device (on the CPU: a dry run of the plumbing)
        if device is None:
            raise UserError("needs --device (the device whose launch strategies to measure)", field="--launch")
        check_device(device)
        return
    if not 1 <= repeat <= MAX_REPEAT:
        raise UserError(f"must be between 1 and {MAX_REPEAT}, got {repeat}", field="--repeat")
    if fail_below is not None and not 0 < fail_below <= 1:
        raise UserError(f"must be a fraction in (0, 1], got {fail_below}", field="--fail-below")
    if device is not None:
        check_device(device)
        if not on_accelerator(device):
            raise UserError(
                "names an accelerator (cuda, cuda:1); the CPU engines are measured anyway", field="--device"
            )


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


def resolve_engine(
    family: str, kernels: str = "auto", compile: bool = False, device: str = "cpu", activations: Iterable[str] = ()
) -> tuple[str, str | None]:
    """The engine a sweep trains with (one of vocabulary.ENGINES) for the CLI's --engine (its
    family: "reference" or "batched"), --kernels and --compile, and a note when it is not the one
    asked for, or not for every one of the sweep's `activations` (batched_engine)."""
    if family == "reference":
        return "reference", None
    return batched_engine(kernels, compile, device, activations)


def batched_engine(
    kernels: str = "auto", compile: bool = False, device: str = "cpu", activations: Iterable[str] = ()
) -> tuple[str, str | None]:
    """The batched engine to run for the requested kernels ("auto", "native" or "torch"), and a
    note when "auto" could not use the native ones, or when some of `activations` (the sweep's)
    have no native kernels and train with the torch kernels. Builds the native kernels here if
    needed, so that workers find them in the cache."""
    if compile:  # compiles the torch kernels
        return "batched+compile", None
    if kernels == "torch":
        return "batched", None
    why = native.unavailable(device)
    if why is None:
        lacking = sorted(a for a in set(activations) if native.unavailable(device, a) is not None)
        if lacking:
            return "batched+native", (
                f"no native kernels for {', '.join(lacking)}: their runs train with the torch kernels (engine batched)"
            )
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
    return (
        1,
        note + f"one process drives {device}, training each shape as one stacked model as large as its memory allows",
    )


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


def seed_range(text: str | None, field: str) -> range | None:
    """START:STOP (STOP excluded) as a range of seeds, or None for every seed; anything else, or
    an empty range, is a UserError naming the flag."""
    if text is None:
        return None
    start, sep, stop = text.partition(":")
    try:
        seeds = range(int(start), int(stop)) if sep else None
    except ValueError:
        seeds = None
    if seeds is None or not 0 <= seeds.start < seeds.stop:
        raise UserError(f"must be START:STOP with 0 <= START < STOP, e.g. 40:200, got {text!r}", field=field)
    return seeds
