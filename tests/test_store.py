import sqlite3

import numpy as np
import pytest

from runge_bench.problem.config import CONFIG_FIELDS, RunConfig, RunResult
from runge_bench.problem.errors import UserError
from runge_bench.problem.vocabulary import METRICS
from runge_bench.runs.store import Store, thin_curves


def fake_result(seed=0, status="ok", activation="tanh", value=1e-3) -> RunResult:
    c = RunConfig(activation, seed=seed, epochs=1000)
    epochs = np.arange(1, 1001, dtype=np.float32)
    return RunResult(
        config=c,
        status=status,
        wall_s=1.5,
        engine="reference",
        metrics={m: value * (i + 1) for i, m in enumerate(METRICS)} if status == "ok" else {},
        curves={
            "epoch": epochs,
            **{k: (1.0 / epochs).astype(np.float32) for k in ("train_f", "train_df", "val_f", "val_df")},
        },
        predictions={"f": np.linspace(0, 1, 401, dtype=np.float32), "df": np.zeros(401, np.float32)}
        if status == "ok"
        else {},
        error="boom" if status == "failed" else None,
        versions={"torch": "x"},
    )


def test_round_trip(tmp_path):
    path = tmp_path / "s" / "runs.sqlite"
    r = fake_result()
    with Store(path, create=True) as store:
        store.write(r)
    with Store(path) as store:
        df = store.runs()
        curves, predictions = store.arrays([r.run_id])[r.run_id]
        versions = store.versions([r.run_id])[r.run_id]
    back = df.set_index("run_id").loc[r.run_id]
    assert RunConfig.from_dict({k: back[k] for k in CONFIG_FIELDS}) == r.config and back.status == "ok"
    assert {m: back[m] for m in r.metrics} == r.metrics and versions == r.versions
    np.testing.assert_array_equal(predictions["f"], r.predictions["f"])
    assert len(curves["epoch"]) == 250 and curves["epoch"][-1] == 1000  # thinned, last kept
    assert list(df.columns[:3]) == ["run_id", "status", "activation"]
    assert df.loc[0, "val_f_mse"] == pytest.approx(1e-3) and df.loc[0, "width"] == 64


def test_rewrite_replaces_and_statuses(tmp_path):
    path = tmp_path / "runs.sqlite"
    with Store(path, create=True) as store:
        store.write(fake_result(0, "failed"))
        store.write(fake_result(1, "diverged"))
        assert set(store.statuses().values()) == {"failed", "diverged"}
        store.write(fake_result(0, "ok"))
        assert sorted(store.statuses().values()) == ["diverged", "ok"]
        assert len(store.runs()) == 2


def test_thin_curves_keeps_short_curves():
    c = {"epoch": np.arange(10.0), "val_f": np.arange(10.0)}
    assert thin_curves(c) is c


def test_missing_store_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no results store here"):
        Store(tmp_path / "nope.sqlite")


def _foreign_database(path, table: str):
    """An SQLite file holding one table of someone else's."""
    db = sqlite3.connect(path)
    db.execute(f"CREATE TABLE {table} (x)")
    db.commit()
    db.close()
    return path


def test_foreign_sqlite_file_is_refused(tmp_path):
    path = _foreign_database(tmp_path / "other.sqlite", "runs")
    with pytest.raises(UserError, match="not a runge-bench results store"):
        Store(path)


def test_garbage_file_is_refused(tmp_path):
    path = tmp_path / "runs.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(UserError, match="not a runge-bench results store"):
        Store(path)


def test_a_failed_open_leaves_no_connection_behind(tmp_path):
    import os

    path = _foreign_database(tmp_path / "other.sqlite", "unrelated")

    def open_fds() -> list[str]:
        return [
            os.readlink(f"/proc/self/fd/{fd}")
            for fd in os.listdir("/proc/self/fd")
            if os.path.exists(f"/proc/self/fd/{fd}")
        ]

    before = sum(str(path) in target for target in open_fds())
    for _ in range(3):
        with pytest.raises(UserError, match="not a runge-bench results store"):
            Store(path)
    assert sum(str(path) in target for target in open_fds()) == before


def test_a_plan_reads_an_empty_database_as_no_runs(tmp_path):
    """Two sweeps starting on one new store: the second may plan while the first has created the
    file but not yet its schema (an empty database). That is no runs stored, not a foreign file."""
    from runge_bench.runs.plan import make_plan
    from runge_bench.runs.study import load_study

    from .helpers import ROOT

    path = tmp_path / "smoke" / "runs.sqlite"
    path.parent.mkdir()
    sqlite3.connect(path).close()  # what connect() leaves before the schema: an empty database
    plan = make_plan(load_study(ROOT / "studies" / "smoke.toml"), tmp_path)
    assert len(plan.todo) == 16 and not plan.stored
    with Store(path, create=True) as store:  # and a sweep initialises it
        assert store.statuses() == {}
