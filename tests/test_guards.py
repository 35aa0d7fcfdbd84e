"""No option or study may put the machine at risk, and bad options are errors before any run."""

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from runge_bench.cli import run
from runge_bench.problem.config import PROTOCOL_VERSION, RunConfig
from runge_bench.problem.errors import UserError
from runge_bench.runs import options, resources, sweep, workers
from runge_bench.runs import store as store_module
from runge_bench.runs.plan import make_plan
from runge_bench.runs.store import Store
from runge_bench.runs.study import load_study
from runge_bench.runs.tasks import chunk_runs

from .helpers import ROOT, report_text, sweep_command

SMOKE = str(ROOT / "studies" / "smoke.toml")


def test_jobs_are_capped_at_a_multiple_of_the_cores(monkeypatch):
    monkeypatch.setattr(options, "default_jobs", lambda: 2)
    assert options.resolve_jobs(None) == (2, None)
    assert options.resolve_jobs(3) == (3, None)
    jobs, note = options.resolve_jobs(10_000)
    assert jobs == 2 * options.MAX_JOBS_PER_CORE and note == "--jobs 10000 capped at 4 (2 per core on 2 cores)"
    with pytest.raises(UserError, match="--jobs: must be at least 1"):
        options.resolve_jobs(0)


def test_never_more_workers_than_tasks(monkeypatch):
    seen = {}
    real = workers.parallel_config

    def spy(**kwargs):
        seen.update(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(workers, "parallel_config", spy)
    configs = [RunConfig("tanh", seed=s, epochs=2, n_points=20, width=4) for s in range(3)]
    results = list(workers.execute(chunk_runs(configs, "reference", 4), engine="reference", jobs=4))
    assert seen["n_jobs"] == 3 and len(results) == 3  # three tasks: three workers, not four


# ----------------------------------------------------------------------------- files and stores

TINY = 'name = "tiny"\n[fixed]\nwidth = 4\nepochs = 3\nn_points = 30\n[grid]\nactivation = ["tanh", "relu"]\nseed = [0, 1, 2]\n'
COMMITTED_SMOKE = ROOT / "results" / "smoke" / "runs.sqlite"


def _one_line(capsys, code: int, *fragments: str) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]  # beside a progress bar
    assert len(errors) == 1 and "Traceback" not in err, err
    for f in fragments:
        assert f in errors[0], err
    return errors[0]


def _copy_smoke(tmp_path) -> Path:
    d = tmp_path / "smoke"
    d.mkdir()
    shutil.copy(COMMITTED_SMOKE, d / "runs.sqlite")
    return d / "runs.sqlite"


def test_garbage_in_the_middle_of_a_store(tmp_path, capsys):
    path = _copy_smoke(tmp_path)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 8192] = os.urandom(8192)
    path.write_bytes(bytes(data))
    for argv in (
        ["report", str(path.parent), "--out", str(tmp_path / "r")],
        ["sweep", SMOKE, "--results-dir", str(tmp_path), "--dry-run"],
    ):
        _one_line(capsys, run(argv), str(path))
    assert path.read_bytes() == bytes(data)  # nothing written to a damaged store


def test_a_store_with_the_metadata_but_other_columns(tmp_path, capsys):
    path = tmp_path / "smoke" / "runs.sqlite"
    Store(path, create=True).close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE runs")
    db.execute("CREATE TABLE runs (run_id TEXT PRIMARY KEY, something_else TEXT)")
    db.commit()
    db.close()
    _one_line(capsys, run(["report", str(path.parent)]), "damaged or not of this schema")
    _one_line(
        capsys, run(["sweep", SMOKE, "--results-dir", str(tmp_path), "--dry-run"]), "damaged or not of this schema"
    )


def test_one_corrupt_blob_is_reported_and_left_out(tmp_path):
    path = _copy_smoke(tmp_path)
    db = sqlite3.connect(path)
    victim = db.execute(
        "SELECT run_id FROM runs WHERE json_extract(config, '$.activation') = 'tanh' ORDER BY run_id LIMIT 1"
    ).fetchone()[0]
    db.execute("UPDATE runs SET predictions = X'00010203deadbeef' WHERE run_id = ?", (victim,))
    db.commit()
    db.close()
    assert run(["report", str(path.parent), "--out", str(tmp_path / "r")]) == 0
    text = report_text(tmp_path / "r" / "report.md")
    assert (
        f"1 runs' curves and predictions could not be read (a damaged row) and are left out of the figures: {victim}"
        in text
    )
    assert (tmp_path / "r" / "figures" / "fits.svg").exists()
    assert len(pd.read_csv(tmp_path / "r" / "tables" / "runs.csv")) == 16  # its metrics are intact and kept


def test_rows_of_a_newer_protocol_are_named_not_hidden(tmp_path, capsys):
    path = _copy_smoke(tmp_path)
    db = sqlite3.connect(path)
    db.execute("UPDATE runs SET protocol_version = ?", (PROTOCOL_VERSION + 1,))
    db.commit()
    db.close()
    assert run(["sweep", SMOKE, "--results-dir", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"the store holds 16 runs of newer protocol version(s) {PROTOCOL_VERSION + 1}" in out and "upgrade" in out
    _one_line(capsys, run(["report", str(path.parent)]), "the store holds no runs to report", "newer protocol")


def test_a_result_waits_for_a_held_write_lock_and_is_never_dropped(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.2)  # SQLite gives up after 0.2 s, not 60
    study = tmp_path / "tiny.toml"
    study.write_text(TINY)
    plan = make_plan(load_study(study), tmp_path)
    Store(plan.store_path, create=True).close()
    holder = sqlite3.connect(plan.store_path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # another process's write transaction, held for 2 s
    waits = []
    release = threading.Timer(2.0, lambda: holder.execute("COMMIT"))
    release.start()
    try:
        summary = sweep.run_sweep(plan, engine="reference", jobs=1, on_wait=waits.append)
    finally:
        release.join()
        holder.close()
    assert sum(summary.counts.values()) == 6 and waits and "write lock" in waits[0]
    with Store(plan.store_path) as s:
        assert len(s.statuses()) == 6


def test_a_full_disk_stops_the_sweep_with_one_line_and_keeps_the_store(tmp_path, monkeypatch, capsys):
    """Simulated SQLITE_FULL (the real one: test_a_real_full_filesystem below, where mounts are allowed)."""
    real = Store.write
    calls = []

    def write(self, result):
        calls.append(result.run_id)
        if len(calls) > 2:
            raise sqlite3.OperationalError("database or disk is full")
        real(self, result)

    monkeypatch.setattr(Store, "write", write)
    study = tmp_path / "tiny.toml"
    study.write_text(TINY)
    code = run(["sweep", str(study), "--results-dir", str(tmp_path), "--jobs", "1", "--engine", "reference"])
    _one_line(capsys, code, "the disk is full: 2 runs of this sweep were stored", "run the same command to resume")
    with Store(tmp_path / "tiny" / "runs.sqlite") as s:
        assert len(s.statuses()) == 2


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()[:80]}); the simulated test covers it")


def test_a_real_full_filesystem(tmp_path, capsys):
    mnt = tmp_path / "small"
    _mount_tmpfs(mnt, "300k")
    try:
        study = tmp_path / "many.toml"
        study.write_text(TINY.replace("seed = [0, 1, 2]", "seed = { start = 0, stop = 60 }"))
        code = run(["sweep", str(study), "--results-dir", str(mnt), "--jobs", "1", "--engine", "reference"])
        err = _one_line(capsys, code, "the disk is full:", "the store is intact")
        stored = int(err.split("the disk is full: ")[1].split(" ")[0])
        with Store(mnt / "tiny" / "runs.sqlite") as s:
            assert 0 < len(s.statuses()) == stored < 120
    finally:
        subprocess.run(["umount", str(mnt)])


def test_a_read_only_filesystem(tmp_path, capsys):
    mnt = tmp_path / "ro"
    _mount_tmpfs(mnt, "10m")
    try:
        (mnt / "smoke").mkdir()
        shutil.copy(COMMITTED_SMOKE, mnt / "smoke" / "runs.sqlite")
        assert subprocess.run(["mount", "-o", "remount,ro", str(mnt)]).returncode == 0
        # A valid store there is read as it is; its report goes elsewhere.
        assert run(["report", str(mnt / "smoke"), "--out", str(tmp_path / "r")]) == 0
        assert (tmp_path / "r" / "report.md").exists()
        capsys.readouterr()
        # A new store there cannot be: one line.
        study = tmp_path / "tiny.toml"
        study.write_text(TINY)
        code = run(["sweep", str(study), "--results-dir", str(mnt), "--jobs", "1"])
        _one_line(capsys, code, str(mnt / "tiny"))
        # Nor can runs be added to the valid one.
        code = run(["sweep", SMOKE, "--results-dir", str(mnt), "--jobs", "1", "--retry-failed"])
        assert code == 0  # every run is stored: nothing to write
    finally:
        subprocess.run(["umount", str(mnt)])


def test_outputs_that_cannot_be_written_are_one_line_and_leave_nothing_half_written(tmp_path, capsys):
    """report, show and compare on a store whose directory is read-only (their default output is
    beside it), and into a directory on a full filesystem: one line naming the directory, exit 2,
    no traceback, and nothing of the output left there (no half-written file, no staging)."""
    ro, full = tmp_path / "ro", tmp_path / "full"
    _mount_tmpfs(ro, "10m")
    _mount_tmpfs(full, "64k")
    try:
        (ro / "smoke").mkdir()
        shutil.copy(COMMITTED_SMOKE, ro / "smoke" / "runs.sqlite")
        assert subprocess.run(["mount", "-o", "remount,ro", str(ro)]).returncode == 0
        store = str(ro / "smoke")
        for argv, where in [
            (["report", store], ro / "smoke"),
            (["show", store, "--where", "activation=tanh"], ro / "smoke" / "show" / "activation-tanh"),
            (["compare", str(COMMITTED_SMOKE.parent), store], ro / "smoke" / "compare"),
        ]:
            line = _one_line(capsys, run(argv), f"error: {where}: cannot write ", "read-only", "--out")
            assert "Traceback" not in line
        (full / "filler").write_bytes(b"x" * 60_000)  # what is left (a page or two) holds none of the outputs
        for argv in (
            ["report", str(COMMITTED_SMOKE.parent), "--out", str(full / "report")],
            ["show", str(COMMITTED_SMOKE.parent), "--where", "activation=tanh", "--out", str(full / "show")],
            ["compare", str(COMMITTED_SMOKE.parent), str(COMMITTED_SMOKE.parent), "--out", str(full / "compare")],
        ):
            _one_line(capsys, run(argv), "the disk is full", "--out")
            out = Path(argv[argv.index("--out") + 1])
            assert [p.name for p in out.iterdir() if not p.name.startswith(".runge-bench.lock")] == [], argv
    finally:
        subprocess.run(["umount", str(ro)])
        subprocess.run(["umount", str(full)])


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
def test_sigterm_stops_the_workers_and_keeps_what_finished(tmp_path):
    study = tmp_path / "slow.toml"
    study.write_text(
        'name = "slow"\n[fixed]\nwidth = 32\nepochs = 4000\nn_points = 200\n[grid]\n'
        'activation = ["tanh"]\nseed = { start = 0, stop = 12 }\n'
    )
    cmd = sweep_command(study, tmp_path, "--jobs", "2", "--engine", "reference")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store_path = tmp_path / "slow" / "runs.sqlite"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if store_path.exists():
            with Store(store_path) as s:
                if s.statuses():
                    break
        time.sleep(0.2)
    workers = [p for c in _children(proc.pid) for p in [c, *_children(c)]]
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "interrupted: " in err and "Traceback" not in err, err
    time.sleep(1.0)
    assert not [p for p in workers if _alive(p)]  # no worker left training
    with Store(store_path) as s:
        stored = len(s.statuses())
    assert 1 <= stored < 12 and f"interrupted: {stored} runs stored" in err


KILLER = """
import os, signal
if os.environ.get("KILL_SEED"):  # a worker that trains this seed is killed, as the OOM killer would
    import runge_bench.engine.reference as train
    real = train.train_many_reference
    def killing(configs, device="cpu"):
        if any(c.seed == int(os.environ["KILL_SEED"]) for c in configs):
            os.kill(os.getpid(), signal.SIGKILL)
        return real(configs, device)
    train.train_many_reference = killing
"""


@pytest.mark.slow
def test_a_worker_killed_from_outside_fails_its_run_and_the_sweep_goes_on(tmp_path):
    """A real SIGKILL of a real worker process (through a sitecustomize that loky's workers load),
    not a simulated exception: the dead worker's run is stored failed with the cause, every other
    run is trained and stored, and a second sweep trains nothing (it does not crash again)."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(KILLER)
    study = tmp_path / "k.toml"
    study.write_text(
        'name = "k"\n[fixed]\nwidth = 4\nepochs = 300\nn_points = 50\n[grid]\n'
        'activation = ["tanh"]\nseed = { start = 0, stop = 10 }\n'
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "KILL_SEED": "3"}
    cmd = sweep_command(study, tmp_path, "--engine", "reference", "--jobs", "2")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "9 ok, 0 diverged, 1 failed" in done.stdout, done.stderr
    with Store(tmp_path / "k" / "runs.sqlite") as s:
        runs = s.runs().set_index("seed")
    assert len(runs) == 10 and runs.loc[3, "status"] == "failed"
    assert runs.loc[3, "error"].startswith("the worker process training this run died ({SIGKILL(-9)})")
    assert (runs.drop(index=3).status == "ok").all()
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "nothing to train" in again.stdout


# ----------------------------------------------------------------------------- memory and compute

HUGE = 'name = "huge"\n[fixed]\nwidth = 4096\ndepth = 32\n[grid]\nactivation = ["tanh"]\nseed = [0, 1]\n'


def test_a_sweep_that_cannot_fit_is_refused_even_in_a_dry_run(tmp_path, capsys):
    study = tmp_path / "huge.toml"
    study.write_text(HUGE)
    code = run(["sweep", str(study), "--results-dir", str(tmp_path), "--dry-run"])
    _one_line(capsys, code, "error: one worker needs ~", "at peak, more than 80% of the", "pass --allow-large")
    assert run(["sweep", str(study), "--results-dir", str(tmp_path), "--dry-run", "--allow-large"]) == 0
    captured = capsys.readouterr()
    assert "warning: this sweep will take hours" in captured.err and "warning: --allow-large:" in captured.err
    assert "estimate: peak memory ~" in captured.out
    assert not (tmp_path / "huge").exists()


def test_too_many_workers_for_the_memory_are_refused_with_a_jobs_that_fits():
    est = resources.Estimate(peak_bytes=3e9, workers=8, flops=1e12)
    with pytest.raises(UserError, match=r"^--jobs: 8 workers need ~24.0 GB at peak, .*; --jobs 5 fits"):
        resources.check(est, available=20e9, allow_large=False)
    assert resources.check(est, available=40e9, allow_large=False) == []
    assert resources.check(est, available=None, allow_large=False) == []  # unknown memory: estimate only


@pytest.mark.slow
@pytest.mark.parametrize("engine, members", [("batched", 4), ("reference", 1)])
def test_the_memory_estimate_bounds_a_measured_peak(tmp_path, engine, members):
    """Train one real task in a fresh process and read its peak RSS: the estimate must not be
    below it (it refuses sweeps on this number), nor more than 3x above (it would refuse too much)."""
    script = (
        "import sys\n"
        "from runge_bench.problem.config import RunConfig\n"
        "from runge_bench.runs.workers import run_task\n"
        f"cfgs = [RunConfig('tanh', seed=s, width=512, depth=4, n_points=1000, epochs=2) for s in range({members})]\n"
        f"results = run_task(cfgs, '{engine}')\n"
        "assert all(r.status == 'ok' for r in results), results[0].error\n"
        # VmHWM: this process's own peak. ru_maxrss would count the peak of the process it was forked
        # from (Linux records the old memory's high-water mark at exec): the test runner's, near 1 GB.
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
        "print(int(hwm.split()[1]) * 1024)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    peak = float(done.stdout.split()[-1])
    task = [RunConfig("tanh", seed=s, width=512, depth=4, n_points=1000, epochs=2) for s in range(members)]
    estimated = resources.task_bytes(task, engine)
    assert peak <= estimated <= 3 * peak, (peak, estimated)


# ----------------------------------------------------------------------------- Dask addresses


def _serve(handler) -> tuple[int, threading.Thread]:
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    held = []

    def loop():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            handler(conn, held)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return server.getsockname()[1], server


@pytest.mark.slow
@pytest.mark.parametrize("behaviour", ["silent", "garbage"])
def test_another_service_on_the_port_is_a_clear_error_not_a_hang(tmp_path, behaviour):
    """A port where something else listens: one that accepts and never answers (dask's client
    waited minutes), one that answers garbage (dask's client read it as a message length and tried
    to allocate exabytes). Both: one line, exit 2. Run as a child process with a timeout, so that a
    hang fails the test (TimeoutExpired) instead of stalling the suite; no timing is asserted."""
    pytest.importorskip("distributed")

    def silent(conn, held):
        held.append(conn)

    def garbage(conn, held):
        conn.sendall(b"garbage" * 1000)
        conn.close()

    port, server = _serve(silent if behaviour == "silent" else garbage)
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "runge_bench",
                "sweep",
                SMOKE,
                "--results-dir",
                str(tmp_path),
                "--backend",
                "dask",
                "--scheduler",
                f"tcp://127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        server.close()
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert len(errors) == 1 and errors[0].startswith("error: --scheduler: ") and f"tcp://127.0.0.1:{port}" in errors[0]


def test_bench_jobs_are_capped_like_a_sweeps(monkeypatch, capsys):
    from runge_bench.runs import bench

    seen = {}
    monkeypatch.setattr(options, "default_jobs", lambda: 2)
    monkeypatch.setattr(bench, "run_bench", lambda **kw: seen.update(kw) or [])
    monkeypatch.setattr(bench, "format_table", lambda ms, jobs: "")
    assert run(["bench", "--quick", "--jobs", "10000"]) == 0
    assert seen["jobs"] == 2 * options.MAX_JOBS_PER_CORE and "capped at 4" in capsys.readouterr().out
    assert run(["bench", "--jobs", "0"]) == 2


@pytest.mark.slow
def test_one_ctrl_c_always_stops_a_report(tmp_path):
    """SIGINT at moments spread over a real report's run (reading, tables, figures): exit 130 every
    time, no staging directory left, and the earlier report in the output directory either whole
    as it was or (an interrupt during the final swap) the new one whole."""
    out = tmp_path / "out"
    assert run(["report", str(COMMITTED_SMOKE.parent), "--out", str(out)]) == 0
    before = (out / "report.md").read_text()
    source = ROOT / "results" / "seed-replication"
    for delay in (0.3, 0.9, 1.5, 2.2, 3.0, 4.0, 5.5, 7.0):
        proc = subprocess.Popen(
            [sys.executable, "-m", "runge_bench", "report", str(source), "--out", str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        if proc.returncode == 0:  # it finished before the signal came: later delays mean nothing more
            break
        assert proc.returncode == 130 and "Traceback" not in err and "Exception ignored" not in err, (delay, err)
        assert not [p for p in out.iterdir() if p.name.startswith(".staging-")]
        text = (out / "report.md").read_text()
        assert text == before or text.startswith("# runge-bench report: seed-replication"), delay
        if text == before:  # the earlier report, whole: its tables are the smoke study's
            assert len(pd.read_csv(out / "tables" / "runs.csv")) == 16
    assert delay > 1.0  # at least the first interrupts landed while it ran


@pytest.mark.slow
def test_two_reports_into_one_directory_do_not_mix(tmp_path):
    """Two reports of different studies written to one --out at once: the directory ends up
    holding one of them, whole (its report.md, tables and figures agree), never a mixture."""
    out = tmp_path / "out"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "runge_bench", "report", str(ROOT / "results" / name), "--out", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("smoke", "seed-replication")
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    study = (out / "report.md").read_text().splitlines()[0].removeprefix("# runge-bench report: ")
    expected = {"smoke": 16, "seed-replication": 40}[study]
    assert len(pd.read_csv(out / "tables" / "runs.csv")) == expected
    assert (out / "figures" / "reproduction.svg").exists() == (study == "seed-replication")
    assert not [p for p in out.iterdir() if p.name.startswith(".staging-")]
