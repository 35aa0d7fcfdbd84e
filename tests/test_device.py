"""The accelerator path (`--device cuda`), tested where it can be without one: which runs go
together and how large a stacked model gets, that one process trains them in order, the bench's
device rows, and the errors. The GPU itself is exercised by `.ci/device-check` (README)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from runge_bench.problem.config import RunConfig
from runge_bench.runs.bench import Case, format_table, measure_device
from runge_bench.runs.options import device_jobs
from runge_bench.runs.resources import member_bytes, task_bytes
from runge_bench.runs.study import load_study
from runge_bench.runs.tasks import (
    DEVICE_MAX_GROUP,
    REFINED_GROUP,
    device_group,
    device_tasks,
    make_tasks,
    on_accelerator,
)
from runge_bench.runs.workers import _run_here

runner = CliRunner()


def test_accelerators_are_told_from_the_cpu():
    assert on_accelerator("cuda") and on_accelerator("cuda:1")
    assert not on_accelerator("cpu")


def test_a_group_fills_half_the_free_memory_and_no_more():
    c = RunConfig("tanh", width=256)
    per = member_bytes(c)
    assert per == pytest.approx(task_bytes([c, c], "batched") - task_bytes([c], "batched"))
    assert device_group(c, free_bytes=10 * per) == 5
    assert device_group(c, free_bytes=1.0) == 1  # never none
    assert device_group(RunConfig("tanh", width=4), free_bytes=1e15) == DEVICE_MAX_GROUP
    assert device_group(RunConfig("tanh", optimizer="adam+lm", lm_iters=3), 1e12) == REFINED_GROUP


def test_the_ablation_on_a_large_device_is_one_model_per_shape():
    """On 140 GB free, each activation x width of the ablation (40 runs: 4 weights x 10 seeds)
    trains as one stacked model; on little memory the shapes split, and no run is lost or doubled."""
    configs = list(load_study("studies/ablation.toml").configs)
    big = device_tasks(configs, 140e9)
    assert len(big) == 20 and all(len(t) == 40 for t in big)
    assert all(len({c.shape_key() for c in t}) == 1 for t in big)
    small = device_tasks(configs, 2e9)
    assert len(small) > 20
    ids = [c.run_id for t in small for c in t]
    assert sorted(ids) == sorted(c.run_id for c in configs)


def test_one_process_trains_the_tasks_in_order():
    tasks = [
        [RunConfig("tanh", seed=s, width=4, epochs=2, n_points=20) for s in (0, 1)],
        [RunConfig("relu", seed=0, width=4, epochs=2, n_points=20)],
    ]
    results = list(_run_here(tasks, "batched", "cpu"))
    assert [r.config for r in results] == [c for t in tasks for c in t]
    assert all(r.status == "ok" and r.device == "cpu" for r in results)


def test_jobs_on_an_accelerator_are_one():
    assert device_jobs("cuda", None)[0] == 1
    jobs, note = device_jobs("cuda", 8)
    assert jobs == 1 and "--jobs 8 ignored" in note and "one process drives cuda" in note
    assert device_jobs("cpu", 1) == (1, None)


def test_bench_device_rows_and_their_table():
    """The device measurement runs on any device torch has (here the CPU): a row for the engine
    and one for the products alone, throughput counted for one process."""
    ms = measure_device(Case("full batch (800 points)", None, 2, 2, 8, 8), "cpu", members=8)
    assert [m.engine for m in ms] == ["batched@cpu", "matmul floor@cpu"]
    assert all(m.runs == 8 and m.epochs == 2 and m.wall_s > 0 for m in ms)
    table = format_table(ms, jobs=2)
    assert "ENGINE@DEVICE" in table and "| batched@cpu | 8 x 2 |" in table


def test_a_sweep_on_an_accelerator_is_routed_through_one_process(monkeypatch, write_study, tmp_path):
    """With the device check and the free-memory query standing in for a GPU (the CPU plays it),
    a sweep takes the accelerator route: one process, device-sized groups, its memory checked
    against the device's; every run stored as on the CPU route."""
    from runge_bench.runs import plan as plan_module
    from runge_bench.runs import sweep, tasks, workers
    from runge_bench.runs.store import Store

    calls = []
    for module in (workers, plan_module, tasks, sweep):
        monkeypatch.setattr(module, "on_accelerator", lambda device: True)
    monkeypatch.setattr(sweep, "device_free_bytes", lambda device: calls.append(device) or 64e9)
    monkeypatch.setattr(workers, "_run_local", lambda *a, **k: pytest.fail("the CPU pool was used"))
    study = load_study(
        write_study(
            'name = "gpu"\n[fixed]\nwidth = 4\nepochs = 3\nn_points = 30\n[grid]\n'
            'activation = ["relu", "tanh"]\nseed = [0, 1, 2]\n'
        )
    )
    plan = plan_module.make_plan(study, tmp_path)
    planned, est, _ = plan_module.plan_resources(plan, "batched", 1, device="cpu", device_free_bytes=64e9)
    assert est.workers == 1 and planned == make_tasks(
        list(plan.todo), "batched", workers=1, device="cpu", device_free_bytes=64e9
    )
    assert len(planned) == 2 and sorted(len(t) for t in planned) == [3, 3]  # one stacked model per shape
    summary = sweep.run_sweep(plan, engine="batched", jobs=1, device="cpu", tasks=planned)
    assert summary.counts["ok"] == 6 and calls == []  # the planned tasks ran: no second grouping
    summary = sweep.run_sweep(plan_module.make_plan(study, tmp_path / "again"), engine="batched", jobs=1, device="cpu")
    assert summary.counts["ok"] == 6 and calls == ["cpu"]  # without tasks, it groups by the device's memory
    with Store(plan.store_path) as store:
        assert len(store.statuses()) == 6


@pytest.mark.slow
def test_the_device_check_script_dry_runs_on_the_cpu(tmp_path):
    """.ci/device-check is what a session with a GPU runs: its plumbing (sweep into $OUT, the
    launch strategies, stores left whole for the comparison here) must keep working; `cpu --quick`
    runs it on the smoke study."""
    import os
    import subprocess
    import sys

    from runge_bench import api

    from .helpers import ROOT

    out = tmp_path / "out"
    done = subprocess.run(
        ["bash", str(ROOT / ".ci" / "device-check"), "cpu", "--quick"],
        cwd=ROOT,
        env={**os.environ, "OUT": str(out)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    log = (out / "log.txt").read_text()
    assert "device-check: sweep smoke on cpu (command included):" in log and "exit 0" in log
    assert "| 40 | torch kernels, every 50 epochs (a sweep's default on an accelerator) |" in log
    launch = [line for line in log.splitlines() if line.startswith("| 40 |")]
    assert len(launch) == 4 and [line.rsplit("|", 2)[1].strip() for line in launch] == ["-", "yes", "-", "yes"]
    assert sorted(p.name for p in (out / "smoke").iterdir()) == ["runs.sqlite"]  # no WAL left behind
    assert (api.runs(out / "smoke").status == "ok").sum() == 16
    compared = subprocess.run(
        # tails at ±0.3: what 8 runs a cell can show (tests/test_compare.py)
        [sys.executable, "-m", "runge_bench", "compare", "smoke", str(out / "smoke"), "--tail-margin", "0.3"]
        + ["--out", str(tmp_path / "cmp")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert compared.returncode == 0, compared.stderr[-2000:]
    assert "16 equivalent, 0 inconclusive, 0 different" in compared.stdout + compared.stderr
