"""Faults: kills, concurrent writers, old or foreign stores, divergence, bad CLI input, and a
real Dask cluster on loopback."""

import os
import random
import signal
import sqlite3
import subprocess
import textwrap
import time

import pandas as pd
import pytest
from typer.testing import CliRunner

from runge_bench.cli import app, run
from runge_bench.problem.vocabulary import METRICS
from runge_bench.runs.plan import make_plan
from runge_bench.runs.store import Store
from runge_bench.runs.study import load_study
from runge_bench.runs.sweep import run_sweep

from .helpers import ROOT, report_text, sweep_command

runner = CliRunner()

KILL_STUDY = """
name = "kill"
[fixed]
width = 8
epochs = 600
n_points = 100
[grid]
activation = ["tanh", "relu"]
seed = { start = 0, stop = 6 }
"""


def _metrics(store_path) -> pd.DataFrame:
    with Store(store_path) as store:
        df = store.runs()
    return df.set_index("run_id")[["status", *METRICS]].sort_index()


@pytest.mark.slow
def test_sigkill_at_random_moments_never_loses_or_tears_a_run(write_study, tmp_path):
    study = write_study(KILL_STUDY)
    clean = tmp_path / "clean"
    # The reference engine stores one run at a time (about 1 s each here), so a kill 1.5-4 s into a
    # ~12 s sweep always lands mid-sweep, whatever the machine's speed within a factor of 3.
    run_sweep(make_plan(load_study(study), clean), engine="reference", jobs=1)  # uninterrupted
    expected = _metrics(clean / "kill" / "runs.sqlite")

    killed = tmp_path / "killed"
    rng = random.Random(1234)
    kills = 0
    for _ in range(4):
        proc = subprocess.Popen(
            sweep_command(study, killed, "--jobs", "1", "--engine", "reference"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(rng.uniform(1.5, 4.0))
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
        store = killed / "kill" / "runs.sqlite"
        if store.exists():  # whatever survived is intact
            db = sqlite3.connect(store)
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            n, distinct = db.execute("SELECT COUNT(*), COUNT(DISTINCT run_id) FROM runs").fetchone()
            assert n == distinct
            db.close()
            partial = _metrics(store)
            if len(partial):  # killed before the first run finished: nothing stored yet
                pd.testing.assert_frame_equal(partial, expected.loc[partial.index], rtol=1e-6)
    assert kills >= 1, "the sweep finished before any kill: make the study longer"
    done = subprocess.run(
        sweep_command(study, killed, "--jobs", "1", "--engine", "reference"), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    pd.testing.assert_frame_equal(_metrics(killed / "kill" / "runs.sqlite"), expected, rtol=1e-6)


@pytest.mark.slow
def test_two_sweeps_of_overlapping_studies_share_one_store(write_study, tmp_path):
    base = 'name = "shared"\n[fixed]\nwidth = 8\nepochs = 40\nn_points = 80\n[grid]\nactivation = ["tanh", "relu"]\n'
    a = write_study(base + "seed = [0, 1, 2, 3]\n", "a.toml")
    b = write_study(base + "seed = [2, 3, 4, 5]\n", "b.toml")
    procs = [
        subprocess.Popen(
            sweep_command(s, tmp_path, "--jobs", "1", "--engine", "reference"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for s in (a, b)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, stderr) in zip(procs, outs):
        assert p.returncode == 0, stderr
        assert "locked" not in stderr
    df = _metrics(tmp_path / "shared" / "runs.sqlite")
    assert len(df) == 12 and df.index.is_unique and set(df.status) == {"ok"}
    assert len(make_plan(load_study(a), tmp_path).todo) == 0 and len(make_plan(load_study(b), tmp_path).todo) == 0


def test_edited_study_gets_new_ids_and_report_counts_the_ignored(write_study, tmp_path):
    path = write_study(
        'name = "ed"\n[fixed]\nwidth = 8\nepochs = 10\nn_points = 60\n[grid]\n'
        'activation = ["tanh", "relu"]\nseed = [0, 1]\n'
    )
    run_sweep(make_plan(load_study(path), tmp_path), jobs=1)
    path.write_text(path.read_text().replace("epochs = 10", "epochs = 12"))
    plan = make_plan(load_study(path), tmp_path)
    assert len(plan.todo) == 4 and plan.other_stored == 4 and "outside this plan" in plan.describe()
    run_sweep(plan, jobs=1)
    result = runner.invoke(app, ["report", str(path), "--results-dir", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert "4 stored runs are not in the current plan" in report_text(tmp_path / "o" / "report.md")
    assert set(pd.read_csv(tmp_path / "o" / "tables" / "runs.csv").epochs) == {12}


def test_diverged_runs_are_stored_counted_and_excluded(write_study, tmp_path):
    path = write_study(
        'name = "div"\n[fixed]\nactivation = "relu"\nwidth = 16\nepochs = 20\nn_points = 100\n'
        "[grid]\nlr = [1e-3, 1e6]\nseed = [0, 1]\n"
    )
    summary = run_sweep(make_plan(load_study(path), tmp_path), jobs=1)
    assert summary.counts == {"ok": 2, "diverged": 2}
    with Store(tmp_path / "div" / "runs.sqlite") as store:
        df = store.runs()
    assert (df[df.status == "diverged"].diverged_epoch <= 3).all()
    assert runner.invoke(app, ["report", "div", "--results-dir", str(tmp_path)]).exit_code == 0
    summary_t = pd.read_csv(tmp_path / "div" / "tables" / "summary.csv")
    big = summary_t[summary_t.lr == 1e6]
    assert (big.n_diverged == 2).all() and (big.n_ok == 0).all() and big["median"].isna().all()
    text = report_text(tmp_path / "div" / "report.md")
    assert "2 diverged" in text and "Only ok runs enter the statistics" in text


def test_rows_of_an_older_protocol_are_ignored_with_a_note(tmp_path):
    smoke = ROOT / "studies" / "smoke.toml"
    run_sweep(make_plan(load_study(smoke), tmp_path), jobs=1)
    db = sqlite3.connect(tmp_path / "smoke" / "runs.sqlite")
    db.execute("UPDATE runs SET protocol_version = 0, run_id = 'old-' || run_id WHERE status = 'ok' AND rowid = 1")
    db.commit()
    db.close()
    plan = make_plan(load_study(smoke), tmp_path)
    assert len(plan.todo) == 1  # the old row does not count as done
    run_sweep(plan, jobs=1)
    assert runner.invoke(app, ["report", "smoke", "--results-dir", str(tmp_path)]).exit_code == 0
    assert "also holds 1 runs of older protocol version(s) 0, ignored" in report_text(tmp_path / "smoke" / "report.md")
    assert len(pd.read_csv(tmp_path / "smoke" / "tables" / "runs.csv")) == len(load_study(smoke).configs) == 16


@pytest.mark.slow
def test_unreachable_scheduler_is_a_clear_error(tmp_path, capsys):
    code = run(
        [
            "sweep",
            str(ROOT / "studies" / "smoke.toml"),
            "--results-dir",
            str(tmp_path),
            "--backend",
            "dask",
            "--scheduler",
            "tcp://127.0.0.1:9",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: --scheduler: cannot reach a Dask scheduler at tcp://127.0.0.1:9")


@pytest.mark.slow
def test_sweep_through_a_real_dask_cluster_matches_local(write_study, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    study = load_study(
        write_study(
            textwrap.dedent("""
        name = "dask"
        [fixed]
        width = 8
        epochs = 25
        n_points = 80
        [grid]
        activation = ["tanh", "relu", "silu"]
        seed = [0, 1, 2]
    """)
        )
    )
    run_sweep(make_plan(study, tmp_path / "local"), jobs=2)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        seen = []
        summary = run_sweep(
            make_plan(study, tmp_path / "dask"),
            backend="dask",
            scheduler=cluster.scheduler_address,
            on_result=lambda r: seen.append(r.run_id),
        )
    assert summary.counts == {"ok": 9} and len(seen) == 9
    local, remote = (
        _metrics(tmp_path / "local" / "dask" / "runs.sqlite"),
        _metrics(tmp_path / "dask" / "dask" / "runs.sqlite"),
    )
    pd.testing.assert_frame_equal(remote, local, rtol=1e-6)
    assert len(make_plan(study, tmp_path / "dask").todo) == 0  # resume works the same


@pytest.mark.slow
def test_the_readme_cluster_recipe_on_loopback(write_study, tmp_path):
    """The README's "any set of machines" recipe, as far as one machine allows: `dask scheduler`
    and `dask worker ... --nthreads 1` started as the README says (on 127.0.0.1), and a sweep
    pointed at the scheduler with --scheduler, through the installed command."""
    import json
    import shutil
    import sys

    pytest.importorskip("dask.distributed")
    dask = shutil.which("dask") or str(ROOT / ".." / "nonexistent")
    if not os.path.exists(dask):
        pytest.skip("the dask command is not installed")
    study = write_study(
        'name = "recipe"\n[fixed]\nwidth = 8\nepochs = 20\nn_points = 60\n[grid]\nactivation = ["tanh", "relu"]\nseed = [0, 1]\n'
    )
    info = tmp_path / "scheduler.json"
    procs = [
        subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", str(info)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        deadline = time.time() + 60
        while not info.exists() and time.time() < deadline:
            time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        procs.append(
            subprocess.Popen(
                [dask, "worker", address, "--nthreads", "1", "--nworkers", "2", "--no-dashboard"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        done = subprocess.run(
            [sys.executable, "-m", "runge_bench", "sweep", str(study), "--results-dir", str(tmp_path / "r"),
             "--backend", "dask", "--scheduler", address],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        assert "4 ok, 0 diverged, 0 failed" in done.stdout
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def test_the_readme_slurm_recipe_renders_its_job_script():
    """The SLURM recipe (docs/engines.md), as far as a machine without SLURM allows: dask-jobqueue renders
    the batch script it would submit (single-threaded workers, the prologue, the memory)."""
    jobqueue = pytest.importorskip("dask_jobqueue", reason="dask-jobqueue is not installed (pip install dask-jobqueue)")
    cluster = jobqueue.SLURMCluster(
        cores=8,
        processes=8,
        memory="16GB",
        walltime="02:00:00",
        job_script_prologue=["module load gcc", "source ~/runge-bench/.venv/bin/activate"],
        scheduler_options={"dashboard_address": None, "host": "127.0.0.1"},
    )
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH --cpus-per-task=8" in script and "#SBATCH -t 02:00:00" in script
    assert "module load gcc\nsource ~/runge-bench/.venv/bin/activate" in script
    assert "--nthreads 1" in script and "--nworkers 8" in script
