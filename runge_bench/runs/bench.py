"""`runge-bench bench`: training throughput of the engines, side by side in one run.

Each engine trains its own workload on all cores through the same joblib worker pool as a sweep
(one torch thread per worker): the reference engine one run per task, the batched engine groups
of `group` runs. Throughput is model-epochs per second of wall time, including each run's final
evaluation; the pool is warmed up first so process start-up is not counted. The numbers are
measurements on a shared machine whose speed drifts: `--repeat N` measures every engine in N
rounds, takes each ratio within a round and reports their median and range.

For full batch it also times, through torch.bmm, the matrix products alone that an engine doing
this network's arithmetic must compute every epoch (`matmul_only`), on the same cores in the same
run: that floor bounds the ratio of every engine that leaves its products to torch (batched,
batched+compile). The native engine computes its own, fused with the elementwise work.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from statistics import median

import torch
from joblib import Parallel, delayed

from ..engine.native import unavailable
from ..problem.config import RunConfig
from ..problem.vocabulary import ENGINES
from .options import check_bench_options, resolve_jobs
from .resources import default_jobs
from .tasks import chunk_runs
from .workers import configure_worker, run_task


@dataclass(frozen=True)
class Case:
    name: str
    batch_size: int | None
    epochs: int
    reference_runs: int  # workload per engine, sized so each takes a few seconds
    batched_runs: int
    group: int  # members per stacked model


def cases(quick: bool, jobs: int) -> list[Case]:
    if quick:
        return [
            Case("full batch (800 points)", None, 50, jobs * 2, jobs * 16, 16),
            Case("batch size 32", 32, 5, jobs, jobs * 64, 64),
        ]
    return [
        Case("full batch (800 points)", None, 200, jobs * 4, jobs * 32, 16),
        Case("batch size 32", 32, 20, jobs * 2, jobs * 128, 64),
    ]


@dataclass(frozen=True)
class Measurement:
    case: str
    engine: str
    runs: int
    epochs: int
    wall_s: float
    warmup_s: float = 0.0  # compile time, paid once per worker process and shape
    round: int = 0  # with --repeat: which round of the case (every engine is measured once per round)

    @property
    def model_epochs_per_s(self) -> float:
        return self.runs * self.epochs / self.wall_s


def _configs(case: Case, n: int) -> list[RunConfig]:
    # The seed configuration: 1-64-64-1, tanh, 1000 points (800 train), validation every epoch.
    return [RunConfig("tanh", seed=s, epochs=case.epochs, batch_size=case.batch_size) for s in range(n)]


FLOOR = "matmul floor"  # the pseudo-engine that only multiplies matrices


def matmul_only(
    members: int, epochs: int, n_train: int = 800, n_val: int = 200, width: int = 64, device: str = "cpu"
) -> float:
    """Wall seconds of the dense products one stacked epoch of a 1-width-width-1 network needs,
    and nothing else: per step, the hidden layer's value and tangent (2), its weight gradient
    through both (2) and its input gradients (2), all N x width x width; then the validation
    forward (2, on the validation points). One torch thread, as in a sweep's worker; on an
    accelerator, the products queued on it and waited for."""
    import torch

    configure_worker()
    g = torch.Generator().manual_seed(0)
    a = torch.randn(members, n_train, width, generator=g).to(device)
    a_val = torch.randn(members, n_val, width, generator=g).to(device)
    w = torch.randn(members, width, width, generator=g).to(device)
    sync = torch_sync(device)
    torch.bmm(a, w)  # the first product on a device initialises its libraries: not timed
    sync()
    start = time.perf_counter()
    for _ in range(epochs):
        for _ in range(2):  # the value and the tangent path
            torch.bmm(a, w)  # forward
            torch.bmm(a.transpose(1, 2), a)  # weight gradient
            torch.bmm(a, w.transpose(1, 2))  # input gradient
            torch.bmm(a_val, w)  # validation forward
    sync()
    return time.perf_counter() - start


def _measure_floor(pool: Parallel, case: Case) -> Measurement:
    members, tasks = case.group, max(1, case.batched_runs // case.group)
    start = time.perf_counter()
    pool(delayed(matmul_only)(members, case.epochs) for _ in range(tasks))
    return Measurement(case.name, FLOOR, members * tasks, case.epochs, time.perf_counter() - start)


def _measure(pool: Parallel, case: Case, engine: str, jobs: int) -> Measurement:
    n = case.reference_runs if engine == "reference" else case.batched_runs
    configs = _configs(case, n)
    tasks = chunk_runs(configs, "reference" if engine == "reference" else "batched", jobs, max_group=case.group)
    warmup = 0.0
    if "compile" in engine:  # compile every worker's step for this shape first, and time it
        start = time.perf_counter()
        one_epoch = [
            [RunConfig(c.activation, seed=c.seed, epochs=1, batch_size=c.batch_size) for c in t] for t in tasks
        ]
        pool(delayed(run_task)(t, engine) for t in one_epoch[:jobs])
        warmup = time.perf_counter() - start
    start = time.perf_counter()
    results = [r for rs in pool(delayed(run_task)(t, engine) for t in tasks) for r in rs]
    wall = time.perf_counter() - start
    bad = [r for r in results if r.status != "ok"]
    if bad:
        raise RuntimeError(f"bench run failed: {bad[0].error}")
    return Measurement(case.name, engine, n, case.epochs, wall, warmup)


DEVICE_MEMBERS = 1024  # members of the one stacked model an accelerator trains per case


def measure_device(case: Case, device: str, members: int = DEVICE_MEMBERS, floor: bool = True) -> list[Measurement]:
    """The batched engine's torch kernels on an accelerator, driven from this process as a sweep
    with --device does: `members` runs of the case as one stacked model, after a one-epoch
    warm-up (the device's context and libraries start on first use); and, for full batch, the
    products alone on the device (its floor). Engine names carry the device: "batched@cuda"."""
    configs = _configs(case, members)
    run_task([replace(c, epochs=1) for c in configs], "batched", device)
    start = time.perf_counter()
    results = run_task(configs, "batched", device)
    wall = time.perf_counter() - start
    bad = [r for r in results if r.status != "ok"]
    if bad:
        raise RuntimeError(f"bench run on {device} failed: {bad[0].error}")
    out = [Measurement(case.name, f"batched@{device}", members, case.epochs, wall)]
    if floor and case.batch_size is None:
        out.append(
            Measurement(
                case.name, f"{FLOOR}@{device}", members, case.epochs, matmul_only(members, case.epochs, device=device)
            )
        )
    return out


@dataclass(frozen=True)
class Strategy:
    """One way of driving an accelerator through the batched engine: its kernels, torch.compile's
    mode, and how many epochs run between copies of the losses to the host."""

    name: str
    kernels: str
    sync_every: int | None  # None: the engine's default (batched.SYNC_EVERY on an accelerator)
    compile_mode: str | None = None


LAUNCH_STRATEGIES = (
    Strategy("torch kernels, losses copied back every epoch", "torch", 1),
    Strategy("torch kernels, every 50 epochs (a sweep's default on an accelerator)", "torch", None),
    Strategy("torch.compile (inductor), every 50 epochs", "compile", None),
    Strategy("torch.compile reduce-overhead (CUDA graphs), every 50 epochs", "compile", None, "reduce-overhead"),
)


@dataclass(frozen=True)
class LaunchMeasurement:
    strategy: str
    members: int
    epochs: int
    wall_s: float
    warmup_s: float  # the same members for LAUNCH_WARMUP epochs first: compilation, graph capture
    same_as_first: bool | None  # every metric equal to the first strategy's with these kernels (None: it is the first)

    @property
    def ms_per_epoch(self) -> float:
        return 1e3 * self.wall_s / self.epochs


LAUNCH_WARMUP = 3


def measure_launch(
    device: str, members: tuple[int, ...] = (40, 1024), epochs: int = 200, strategies=LAUNCH_STRATEGIES
) -> list[LaunchMeasurement]:
    """Wall time per epoch of the seed network (tanh, full batch) trained as one stacked model of
    `members` runs on `device`, for each launch strategy, after a warm-up of the same shape; and
    whether the strategies that share the first's arithmetic (the same kernels) give its numbers
    exactly (the copies back to the host and CUDA graphs change no arithmetic)."""
    from ..engine.batched import train_batched

    configure_worker()
    sync = torch_sync(device)
    out = []
    for m in members:
        configs = [RunConfig("tanh", seed=s, epochs=epochs) for s in range(m)]
        first: dict[str, list] = {}  # kernels -> the first strategy's results with them
        for st in strategies:
            kw = dict(kernels=st.kernels, sync_every=st.sync_every, compile_mode=st.compile_mode)
            start = time.perf_counter()
            train_batched([replace(c, epochs=LAUNCH_WARMUP) for c in configs], device, **kw)
            sync()
            warm = time.perf_counter() - start
            start = time.perf_counter()
            results = train_batched(configs, device, **kw)
            sync()
            wall = time.perf_counter() - start
            same = None
            if st.kernels not in first:
                first[st.kernels] = results
            else:
                same = all(a.metrics == b.metrics for a, b in zip(first[st.kernels], results))
            out.append(LaunchMeasurement(st.name, m, epochs, wall, warm, same))
    return out


def format_launch(ms: list[LaunchMeasurement], device: str) -> str:
    lines = [
        f"Launch strategies on {device}: seed network (tanh, full batch), one stacked model; wall time "
        "per epoch with each model's final evaluation, after a warm-up of the same shape.",
        "",
        "| members | strategy | ms per epoch | vs the first | warm-up s | same numbers as the first with its kernels |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    base = {}
    for m in ms:
        base.setdefault(m.members, m.ms_per_epoch)
        same = "-" if m.same_as_first is None else ("yes" if m.same_as_first else "NO")
        lines.append(
            f"| {m.members} | {m.strategy} | {m.ms_per_epoch:.2f} | {base[m.members] / m.ms_per_epoch:.2f}x "
            f"| {m.warmup_s:.1f} | {same} |"
        )
    return "\n".join(lines)


def torch_sync(device: str) -> Callable[[], None]:
    import torch

    return torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)


def run_bench(
    *,
    quick: bool = False,
    jobs: int | None = None,
    engines: tuple[str, ...] = ENGINES,
    floor: bool = True,
    repeat: int = 1,
    on_measurement: Callable[[Measurement], None] | None = None,
    device: str | None = None,
) -> list[Measurement]:
    """Measure every engine on every case, `repeat` rounds per case (each round measures every
    engine once, in turn, so that a ratio compares measurements taken minutes apart at most);
    return the measurements in order. With `device` (an accelerator), each round also measures
    measure_device on it, beside the CPU engines."""
    jobs = jobs or default_jobs()
    out = []
    with Parallel(n_jobs=jobs, return_as="list") as pool:
        # Warm-up: every worker imports torch and runs each engine once (first calls are slow).
        warm = [RunConfig("tanh", epochs=1, n_points=20)]
        pool(delayed(run_task)(warm, e) for _ in range(2 * jobs) for e in engines)
        for case in cases(quick, jobs):
            todo = [lambda e=e, case=case: [_measure(pool, case, e, jobs)] for e in engines]
            if floor and case.batch_size is None:
                todo.append(lambda case=case: [_measure_floor(pool, case)])
            if device is not None:
                todo.append(lambda case=case: measure_device(case, device, floor=floor))
            for r in range(repeat):
                for measure in todo:
                    for m in measure():
                        out.append(replace(m, round=r))
                        if on_measurement is not None:
                            on_measurement(out[-1])
    return out


# The default engines' usual speed-up over the reference per case, from this project's bench runs
# on its 2-core CI machines (README, 2026-11-29: native full batch 4.7-5.7x, quick 4.9x; batch size
# 32 24-38x, quick 22.7x; torch kernels 2.3-2.6x and ~14-15x). `bench --fail-below F` fails when a
# measured ratio is below F times its usual one: generous, so that machine drift (10-30%) never
# trips it; what it catches is a fast path silently off (a batched engine no faster than the loop
# it replaces), not a 10% regression.
USUAL_RATIOS = {
    ("full batch (800 points)", "batched+native"): 4.9,
    ("batch size 32", "batched+native"): 25.0,
    ("full batch (800 points)", "batched"): 2.4,
    ("batch size 32", "batched"): 14.0,
}


def ratios_of(measurements: list[Measurement]) -> dict[tuple[str, str], list[float]]:
    """(case, engine) -> its throughput over the reference's, one ratio per round (each within
    its round, against the reference measured minutes earlier, not hours)."""
    ref = {(m.case, m.round): m.model_epochs_per_s for m in measurements if m.engine == "reference"}
    out: dict[tuple[str, str], list[float]] = {}
    for m in measurements:
        if (m.case, m.round) in ref:
            out.setdefault((m.case, m.engine), []).append(m.model_epochs_per_s / ref[m.case, m.round])
    return out


def regressions(measurements: list[Measurement], fraction: float) -> list[str]:
    """One line per gated (case, engine) whose median ratio is below fraction x USUAL_RATIOS."""
    out = []
    for (case, engine), rs in ratios_of(measurements).items():
        usual = USUAL_RATIOS.get((case, engine))
        if usual is not None and median(rs) < fraction * usual:
            out.append(
                f"{case}, {engine}: {median(rs):.1f}x the reference, below {fraction:g} x its usual "
                f"{usual:g}x = {fraction * usual:.1f}x"
            )
    return out


def format_table(measurements: list[Measurement], jobs: int) -> str:
    """A Markdown table with the ratio of each engine to the reference on the same case. With
    several rounds (--repeat), a row per case and engine: median wall time and throughput, and the
    median of the per-round ratios (each against the reference of the same round) with their range."""
    lines = [
        "| case | engine | runs x epochs | wall (s) | model-epochs/s | ms per model-epoch per core | vs reference | compile (s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    rows: dict[tuple[str, str], list[Measurement]] = {}
    for m in measurements:
        rows.setdefault((m.case, m.engine), []).append(m)
    all_ratios = ratios_of(measurements)
    for (case, engine), ms in rows.items():
        m0 = ms[0]
        rs = all_ratios.get((case, engine), [])
        per_s = median([m.model_epochs_per_s for m in ms])
        if not rs:
            vs = "nan"
        elif len(rs) == 1 or engine == "reference":
            vs = f"{median(rs):.1f}x"
        else:
            vs = f"{median(rs):.1f}x ({min(rs):.1f}-{max(rs):.1f})"
        warmup = median([m.warmup_s for m in ms])
        cores = 1 if "@" in engine else jobs  # one process drives an accelerator
        lines.append(
            f"| {case} | {engine} | {m0.runs} x {m0.epochs} | {median([m.wall_s for m in ms]):.1f} | "
            f"{per_s:.0f} | {1000 * cores / per_s:.2f} | {vs} | "
            f"{f'{warmup:.0f}' if warmup else '-'} |"
        )
    rounds = len({m.round for m in measurements})
    if rounds > 1:
        lines += [
            "",
            f"{rounds} rounds, each measuring every engine in turn: medians over the rounds; a ratio is "
            "taken within each round, then their median and (range).",
        ]
    if any(m.engine == FLOOR for m in measurements):
        lines += [
            "",
            f"{FLOOR}: torch.bmm computing only the dense products of a stacked epoch (forward, "
            "weight and input gradients, validation), on the same cores: the most an engine that "
            "leaves its products to torch can reach. batched+native computes its own products, "
            "a block of points at a time beside the elementwise work, so this does not bound it.",
        ]
    if any("@" in m.engine for m in measurements):
        lines += [
            "",
            "ENGINE@DEVICE: the batched engine's torch kernels on that accelerator, all runs of the case as "
            "one stacked model driven by this process (as `sweep --device` trains), after a one-epoch "
            f"warm-up; {FLOOR}@DEVICE: the products alone there. Their per-core column counts one process.",
        ]
    return "\n".join(lines)


def bench(
    *,
    quick: bool,
    jobs: int | None,
    repeat: int,
    fail_below: float | None,
    device: str | None,
    launch: bool,
    say: Callable[[str], None],
    on_measurement: Callable[[Measurement], None] | None = None,
    refinement: bool = False,
    record: Callable[[Measured], None] | None = None,
) -> list[str]:
    """The `bench` command: check its options, measure, and say the table (say(text) for each
    block of output); hand what was measured to `record` (the CLI's --log). Return the
    regressions found by --fail-below (empty without it)."""
    jobs, jobs_note = resolve_jobs(jobs)  # capped as a sweep's are: bench starts as many workers
    check_bench_options(repeat=repeat, fail_below=fail_below, device=device, launch=launch)
    kind = "bench" + (" --refine" if refinement else "") + (" --quick" if quick else "")
    if refinement:
        rows = measure_refine(REFINE_WIDTHS[:2] if quick else REFINE_WIDTHS)
        say(format_refine(rows))
        if record is not None:
            ratios = {f"width {r['width']}": round(r["lm_s"] / r["gn_s"], 2) for r in rows}
            record(Measured(kind, jobs, ratios, "a dense LM iteration's time over a Gauss-Newton one's"))
        return []
    if launch:
        say(format_launch(measure_launch(device, members=(40,) if quick else (40, 1024)), device))
        return []
    if jobs_note:
        say(jobs_note)
    say(f"training throughput on {jobs} worker(s), one torch thread each; seed network 1-64-64-1, tanh")
    engines, why = ENGINES, unavailable()
    if why is not None:
        engines = tuple(e for e in ENGINES if e != "batched+native")
        say(f"batched+native left out: {why}")
    ms = run_bench(quick=quick, jobs=jobs, engines=engines, repeat=repeat, device=device, on_measurement=on_measurement)
    say(format_table(ms, jobs))
    if record is not None:
        named = {
            f"{_CASE.get(c, c)}: {_ENGINE.get(e, e)}": round(median(rs), 2) for (c, e), rs in ratios_of(ms).items()
        }
        named = {k: v for k, v in named.items() if not k.endswith(": reference")}
        record(Measured(kind, jobs, named, "throughput over the reference's"))
    if fail_below is None:
        return []
    slow = regressions(ms, fail_below)
    if not slow:
        say(f"no regression: every gated ratio is at least {fail_below:g} x its usual one")
    return slow


@dataclass(frozen=True)
class Measured:
    """What one bench measured, for a performance log: the benchmark (e.g. "bench --quick"), the
    workers, each series' ratio (median over the rounds) and what a ratio is of."""

    benchmark: str
    jobs: int
    ratios: dict[str, float]
    what: str


_CASE = {"full batch (800 points)": "full batch"}  # a log's series names, as its hand-made entries say them
_ENGINE = {
    "batched+native": "native",
    "batched+compile": "compile",
    "batched": "torch kernels",
    FLOOR: "products alone",
}


REFINE_WIDTHS = (32, 64, 128, 256)
REFINE_ITERS_MEASURED = 2


def measure_refine(widths: tuple[int, ...] = REFINE_WIDTHS, iters: int = REFINE_ITERS_MEASURED) -> list[dict]:
    """Seconds per iteration of the dense Levenberg-Marquardt refinement (refine.py: the Jacobian
    formed, a Cholesky of the smaller Gram system) and of the matrix-free Gauss-Newton
    (gauss_newton.py: every solve run to its CG_ITERS steps, the most an iteration costs), side by
    side on one network of each width
    (tanh, depth 2, float64, the protocol's 800 training points, from its initial parameters;
    every iteration's tries, rejected ones included, are timed), with each one's peak memory as
    the sweep's estimate counts it."""
    from ..engine.gauss_newton import gauss_newton
    from ..engine.model import init_params, n_parameters, stack_params
    from ..engine.refine import refine
    from ..problem.activations import get_activation
    from ..problem.data import make_split
    from ..problem.targets import get_target
    from .resources import member_bytes, refine_bytes

    act, t = get_activation("tanh"), get_target("runge")
    split = make_split(1000, 0.2, 0)
    data = lambda x: tuple(torch.as_tensor(a, dtype=torch.float64).view(1, -1, 1) for a in (x, t.f(x), t.df(x)))
    train, val = data(split.x_train), data(split.x_val)
    fresh = lambda c: [(w.detach().clone(), b.detach().clone()) for w, b in stack_params([init_params(c)])]
    rows = []
    for width in widths:
        lm = RunConfig("tanh", width=width, dtype="float64", optimizer="adam+lm", lm_iters=iters)
        gn = RunConfig("tanh", width=width, dtype="float64", optimizer="adam+gn", gn_iters=iters)
        start = time.perf_counter()
        done = refine(lm, fresh(lm), act, train, val)
        lm_s = (time.perf_counter() - start) / max(1, done.iterations)
        start = time.perf_counter()
        gauss_newton(act, fresh(gn), train, torch.ones(1, dtype=torch.float64), iters, cg_tol=0.0)
        gn_s = (time.perf_counter() - start) / iters
        rows.append(
            {
                "width": width,
                "params": n_parameters(width, 2),
                "lm_s": lm_s,
                "gn_s": gn_s,
                "lm_mb": (refine_bytes(lm) + member_bytes(lm)) / 1e6,
                "gn_mb": member_bytes(gn) / 1e6,
            }
        )
    return rows


def format_refine(rows: list[dict]) -> str:
    from ..engine.gauss_newton import CG_ITERS

    lines = [
        "seconds per iteration, one network (tanh, depth 2, float64, 800 points), side by side; "
        f"Gauss-Newton at its full {CG_ITERS} conjugate-gradient steps:",
        f"{'width':>6} {'params':>8} {'dense LM':>10} {'matrix-free GN':>15} {'LM / GN':>8} {'LM MB':>8} {'GN MB':>7}",
    ]
    for r in rows:
        lines.append(
            f"{r['width']:>6} {r['params']:>8,} {r['lm_s']:>10.3g} {r['gn_s']:>15.3g} {r['lm_s'] / r['gn_s']:>8.2f} "
            f"{r['lm_mb']:>8.0f} {r['gn_mb']:>7.0f}"
        )
    return "\n".join(lines)
