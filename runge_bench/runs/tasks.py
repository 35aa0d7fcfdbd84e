"""How a sweep's runs are cut into tasks: one run each for the reference engine, groups of one
shape trained as one stacked model for the batched engines, one stacked model as large as an
accelerator's memory allows on a device.

The grouping is computed once per sweep (`make_tasks`): the memory check judges exactly the tasks
the workers then run.
"""

from __future__ import annotations

import math
from collections import defaultdict

from ..problem.config import RunConfig
from ..problem.vocabulary import engine_family
from .resources import member_bytes, run_flops

MAX_GROUP = 32  # members per stacked model: larger groups stop paying and delay each result
REFINED_GROUP = 2  # members per task for runs refined after Adam (engine/refine.py): they refine one by one


def group_size(config: RunConfig, max_group: int = MAX_GROUP) -> int:
    """Members per stacked model for a shape: fewer for wide layers, whose work per member is
    already large, so that a task takes about as long at any width (and a kill loses little).
    Runs with a refinement spend nearly all their time in it, one member at a time, so their
    tasks are small: they spread over the workers instead of queueing in one."""
    if config.optimizer != "adam" and not config.staged:
        return min(max_group, REFINED_GROUP)
    return min(max_group, max(4, int(max_group * (64 / config.width) ** 2)))


def _by_shape(configs: list[RunConfig]) -> list[list[RunConfig]]:
    """Runs that can be trained as one stacked model: one shape, one optimizer; in plan order."""
    groups: dict[tuple, list[RunConfig]] = defaultdict(list)
    for c in configs:
        groups[(*c.shape_key(), c.optimizer)].append(c)
    return list(groups.values())


def _longest_first(tasks: list[list[RunConfig]]) -> list[list[RunConfig]]:
    """Most work first, so that no worker is left with a big task at the end."""
    return sorted(tasks, key=lambda t: sum(run_flops(c) for c in t), reverse=True)


def chunk_runs(configs: list[RunConfig], engine: str, jobs: int, max_group: int = MAX_GROUP) -> list[list[RunConfig]]:
    """Split runs into tasks for `jobs` CPU workers: one run each for the reference engine; for a
    batched engine, groups of one shape, cut so that every worker gets work, most work first."""
    if engine_family(engine) == "reference":
        return _longest_first([[c] for c in configs])
    groups = _by_shape(configs)
    pieces_per_group = max(1, math.ceil(jobs / max(1, len(groups))))
    tasks = []
    for members in groups:
        size = min(group_size(members[0], max_group), math.ceil(len(members) / pieces_per_group))
        tasks += [members[i : i + size] for i in range(0, len(members), size)]
    return _longest_first(tasks)


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
    if config.optimizer != "adam" and not config.staged:
        return REFINED_GROUP
    return max(1, min(DEVICE_MAX_GROUP, int(DEVICE_MEMORY_SHARE * free_bytes // member_bytes(config))))


def device_tasks(configs: list[RunConfig], free_bytes: float) -> list[list[RunConfig]]:
    """The tasks of a sweep on an accelerator: runs of one shape (and optimizer) in groups of
    device_group, the largest work first."""
    tasks = []
    for members in _by_shape(configs):
        size = device_group(members[0], free_bytes)
        tasks += [members[i : i + size] for i in range(0, len(members), size)]
    return _longest_first(tasks)


def make_tasks(
    configs: list[RunConfig], engine: str, *, workers: int, device: str = "cpu", device_free_bytes: float | None = None
) -> list[list[RunConfig]]:
    """The tasks a sweep runs, computed once: on an accelerator (device_free_bytes given), stacked
    models sized to its memory; else chunk_runs for `workers` workers (a local pool's processes,
    or a Dask cluster's threads)."""
    if on_accelerator(device):
        if device_free_bytes is None:
            raise ValueError(f"tasks on {device} need its free memory")
        return device_tasks(configs, device_free_bytes)
    return chunk_runs(configs, engine, workers)
