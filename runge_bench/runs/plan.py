"""A sweep's plan: the study's runs against its store (what is stored, what is left), printed
before any work, and what the runs left will cost before they start (resources.py) for the tasks
they will run as (tasks.py)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..problem.config import RunConfig
from .resources import FLOPS_PER_S, Estimate, available_bytes, check, estimate, refine_bytes, refine_flops
from .store import EmptyStore, Store, check_location, protocol_notes, store_path
from .study import Study
from .tasks import make_tasks, on_accelerator


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
            if key in s.draws:
                lines.append(f"        {'':<13} ({s.draws[key]}; all: {', '.join(map(str, values))})")
        for key, value in s.fixed.items():
            lines.append(f"  fixed {key:<13} {'full' if key == 'batch_size' and value is None else value}")
        for i, case in enumerate(s.cases):
            lines.append(f"  case  {i:<13} " + ", ".join(f"{k}={v}" for k, v in case.items()))
        refined = [c for c in s.configs if c.optimizer != "adam" and not c.staged]
        if refined:
            lines.append(
                f"  refinement: {len(refined)} runs go on after Adam with L-BFGS or Levenberg-Marquardt, "
                "one run at a time in the worker that trained them (refine.py)"
            )
            lines += [f"  {line}" for line in lm_costs(refined)]
        staged = [c for c in s.configs if c.staged]
        if staged:
            lines.append(
                f"  stages: {len(staged)} runs go on after Adam with matrix-free Gauss-Newton and/or later "
                "stages fitted to their residual, every stacked model's members together (stages.py)"
            )
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
        out.append(
            f"LM at width {width}, depth {depth}: ~{per_iter / 1e9:.3g} GFLOP and ~{refine_bytes(c) / 1e6:.0f} MB "
            f"per iteration (~{per_iter / FLOPS_PER_S:.2g} s at {FLOPS_PER_S / 1e9:.0f} GFLOP/s); "
            f"{len(cs)} runs x {c.lm_iters} iterations ~{total_s / 60:.1f} worker-min"
        )
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
    return Plan(
        study=study,
        store_path=path,
        todo=todo,
        stored=stored,
        other_stored=len(set(statuses) - ids),
        other_protocols=other_protocols,
    )


def plan_resources(
    plan: Plan,
    engine: str,
    jobs: int,
    *,
    backend: str = "local",
    scheduler: str | None = None,
    scheduler_threads: int | None = None,
    allow_large: bool = False,
    device: str = "cpu",
    device_free_bytes: float | None = None,
) -> tuple[list[list[RunConfig]], Estimate, list[str]]:
    """The tasks the plan's remaining runs will train as (tasks.make_tasks), what they need
    (resources.py), and that checked against this machine's memory when they run here: a
    UserError when they cannot fit (unless allow_large), else warnings. The same tasks are then
    handed to the sweep, so that the check judges what actually runs.

    On a remote Dask cluster the tasks are sized to its `scheduler_threads` and the memory is its
    workers', not ours: estimate only. On an accelerator, one process and the device's free memory
    (`device_free_bytes`)."""
    todo = list(plan.todo)
    if on_accelerator(device) and backend == "local":
        tasks = make_tasks(todo, engine, workers=1, device=device, device_free_bytes=device_free_bytes)
        est = estimate(tasks, engine, 1)
        return tasks, est, check(est, available=device_free_bytes, allow_large=allow_large)
    remote = backend == "dask" and scheduler is not None
    workers = (scheduler_threads or jobs) if remote else jobs
    tasks = make_tasks(todo, engine, workers=workers)
    est = estimate(tasks, engine, workers)
    return tasks, est, check(est, available=None if remote else available_bytes(), allow_large=allow_large)
