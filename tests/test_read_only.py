"""A command that only reads never writes to what it reads, and a file that is not a runge-bench
store is never modified by a command that refuses it: its bytes are the same afterwards."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3

import pytest

from runge_bench import api
from runge_bench.cli import run
from runge_bench.problem.errors import UserError

from .helpers import ROOT, SMOKE_STUDY

COMMITTED_SMOKE = ROOT / "results" / "smoke" / "runs.sqlite"


def _foreign_sqlite(path):
    """Another program's SQLite database, in the default rollback-journal mode."""
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)")
        db.execute("INSERT INTO notes (text) VALUES ('mine')")
    db.close()


FOREIGN = {
    "another program's database": _foreign_sqlite,
    "an empty file": lambda path: path.write_bytes(b""),
    "a text file": lambda path: path.write_text("not a database\n" * 100),
}


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("kind", sorted(FOREIGN))
def test_a_file_that_is_not_a_store_is_refused_and_left_as_it_was(kind, tmp_path, capsys):
    store = tmp_path / "smoke" / "runs.sqlite"
    store.parent.mkdir()
    FOREIGN[kind](store)
    before = _digest(store)
    commands = [
        ["report", str(store)],
        ["report", "smoke", "--results-dir", str(tmp_path)],
        ["show", str(store), "--where", "activation=tanh"],
        ["compare", str(COMMITTED_SMOKE), str(store)],
    ]
    # An empty file is what another sweep's new store is in its first instant: a plan reads it as
    # holding no runs (and a sweep may make it its store); anything else is refused by the plan.
    sweeps = [["sweep", str(SMOKE_STUDY), "--results-dir", str(tmp_path), "--dry-run"]]
    if kind != "an empty file":
        commands += [*sweeps, ["sweep", str(SMOKE_STUDY), "--results-dir", str(tmp_path), "--jobs", "1"]]
    else:
        for argv in sweeps:
            assert run(argv) == 0 and _digest(store) == before
    for argv in commands:
        code = run(argv)
        err = capsys.readouterr().err
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        assert code == 2 and len(errors) == 1 and "Traceback" not in err, (argv, err)
        assert _digest(store) == before, f"{argv[0]} changed {kind}"
    with pytest.raises(UserError):
        api.runs(store)
    assert _digest(store) == before
    assert sorted(p.name for p in store.parent.iterdir()) == ["runs.sqlite"]  # no -wal, -shm or -journal left


def test_reading_a_store_leaves_its_file_as_it_was(tmp_path, capsys):
    store = tmp_path / "smoke" / "runs.sqlite"
    store.parent.mkdir()
    shutil.copy(COMMITTED_SMOKE, store)
    before = _digest(store)
    assert run(["report", str(store.parent), "--out", str(tmp_path / "report")]) == 0
    assert run(["show", str(store), "--where", "activation=tanh", "--out", str(tmp_path / "show")]) == 0
    assert run(["compare", str(COMMITTED_SMOKE), str(store), "--out", str(tmp_path / "compare")]) == 0
    assert run(["sweep", str(SMOKE_STUDY), "--results-dir", str(tmp_path), "--dry-run"]) == 0
    assert len(api.runs(store)) == 16
    capsys.readouterr()
    assert _digest(store) == before


def test_the_site_leaves_every_file_it_reads_as_it_was(tmp_path):
    """`site` reads stores, committed reports (figures, tables) and the performance log: every
    byte of them is the same afterwards, and nothing is added beside them."""
    shutil.copytree(ROOT / "results" / "smoke", tmp_path / "results" / "smoke")
    (tmp_path / "docs").mkdir()
    shutil.copy(ROOT / "docs" / "benchmarks.toml", tmp_path / "docs" / "benchmarks.toml")
    read = lambda: {
        p: _digest(p)
        for p in sorted((tmp_path / "results").rglob("*")) + [tmp_path / "docs" / "benchmarks.toml"]
        if p.is_file()
    }
    before = read()
    assert run(["site", str(tmp_path / "results"), "--out", str(tmp_path / "site"), "--jobs", "1"]) == 0
    assert read() == before
