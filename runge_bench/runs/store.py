"""The results store: one SQLite file per study, one row per run, keyed by run_id.

SQLite in WAL mode with a busy timeout, one transaction per result: a killed sweep never loses or
tears a finished run, and two sweeps may write one store at once. Only a sweep's parent process
writes; workers return results. Arrays (curves, predictions) are stored as compressed .npz blobs;
curves longer than MAX_CURVE_POINTS are thinned to evenly spaced epochs (the last one kept) so
that committed stores stay small.
"""

from __future__ import annotations

import errno
import io
import json
import os
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ..problem.config import PROTOCOL_VERSION, RunConfig, RunResult
from ..problem.errors import UserError
from ..problem.vocabulary import METRICS

SCHEMA_VERSION = 1
APP_ID = "runge-bench"
MAX_CURVE_POINTS = 250
STORE_NAME = "runs.sqlite"
BUSY_TIMEOUT_S = 60.0  # how long one statement waits for another process's lock before it fails

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    protocol_version INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('ok', 'diverged', 'failed')),
    config TEXT NOT NULL,
    error TEXT,
    diverged_epoch INTEGER,
    engine TEXT NOT NULL,
    device TEXT NOT NULL,
    wall_s REAL NOT NULL,
    versions TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    {", ".join(f"{m} REAL" for m in METRICS)},
    curves BLOB,
    predictions BLOB
);
"""


class EmptyStore(UserError):
    """A database with no tables at all: what a store is between its file's creation and its
    schema's (by another sweep starting at the same moment). A plan reads it as holding no runs;
    a sweep initialises it."""


def _read_only_error(e: sqlite3.OperationalError) -> bool:
    text = str(e)
    return "readonly" in text or "read-only" in text or "unable to open" in text


def check_location(path: Path) -> None:
    """Fail early, with one line, when a store cannot live at path: a file where a directory must
    be, or a directory where the store file must be (a dry run checks this too)."""
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise UserError("exists and is not a directory", path=parent)
    if path.is_dir():
        raise UserError("is a directory, not a results store", path=path)
    if path.is_symlink() and not path.exists():
        try:
            os.stat(path)
        except OSError as e:
            what = (
                "a symbolic link loop"
                if e.errno == errno.ELOOP
                else f"a symbolic link to {os.readlink(path)}, which does not exist"
            )
            raise UserError(f"is {what}: remove it or point it at a store", path=path) from None


def _make_dir(d: Path) -> None:
    """Create a store's directory, or say in one line why it cannot be."""
    check_location(d / STORE_NAME)
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the directory ({e.strerror})", path=d) from None


def protocol_notes(other_protocols: dict[int, int]) -> list[str]:
    """What a plan or report says of rows stored under other protocol versions, and what to do."""
    notes = []
    older = {v: n for v, n in other_protocols.items() if v < PROTOCOL_VERSION}
    newer = {v: n for v, n in other_protocols.items() if v > PROTOCOL_VERSION}
    if older:
        notes.append(
            f"the store also holds {sum(older.values())} runs of older protocol version(s) "
            f"{', '.join(map(str, older))}, ignored: this version ({PROTOCOL_VERSION}) trains and "
            "measures differently; sweep the study to recompute them"
        )
    if newer:
        notes.append(
            f"the store holds {sum(newer.values())} runs of newer protocol version(s) "
            f"{', '.join(map(str, newer))}, which this runge-bench (protocol {PROTOCOL_VERSION}) cannot "
            "read: upgrade runge-bench to report them, or use another --results-dir"
        )
    return notes


def store_path(results_dir: str | Path, study_name: str) -> Path:
    return Path(results_dir) / study_name / STORE_NAME


def _pack(arrays: dict[str, np.ndarray]) -> bytes | None:
    if not arrays:
        return None
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return buf.getvalue()


def _unpack(blob: bytes | None) -> dict[str, np.ndarray]:
    if blob is None:
        return {}
    with np.load(io.BytesIO(blob)) as npz:
        return {k: npz[k] for k in npz.files}


def thin_curves(curves: dict[str, np.ndarray], max_points: int = MAX_CURVE_POINTS) -> dict[str, np.ndarray]:
    """Keep at most `max_points` evenly spaced epochs of each curve, always the last one."""
    n = len(curves.get("epoch", ()))
    if n <= max_points:
        return curves
    keep = np.unique(np.linspace(0, n - 1, max_points).round().astype(int))
    return {k: v[keep] for k, v in curves.items()}


SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")  # what SQLite creates beside a database


class Store:
    """A study's runs on disk. Use as a context manager, or call close()."""

    def __init__(self, path: str | Path, *, create: bool = False):
        self.path = Path(path)
        self.read_only = False
        self.unreadable: list[str] = []  # run ids whose arrays could not be read (see arrays())
        for p in (self.path, *(self.path.with_name(self.path.name + s) for s in SQLITE_SIDE_FILES)):
            if p.is_symlink():  # SQLite would write through it (the store, its WAL, its shared memory)
                raise UserError("is a symbolic link: a store and its side files are not opened through one", path=p)
        if not self.path.exists():
            if not create:
                raise UserError("no results store here (run `runge-bench sweep` first)", path=self.path)
            _make_dir(self.path.parent)
        elif self.path.is_dir():
            raise UserError("is a directory, not a results store", path=self.path)
        self._db = None
        try:
            try:
                self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
                self._db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
                self._open(create)
            except sqlite3.OperationalError as e:
                if create or not _read_only_error(e):
                    raise
                # A store on a read-only filesystem (or a file we may not write): read it as it is.
                self._db.close()
                self._db = sqlite3.connect(
                    f"{self.path.resolve().as_uri()}?mode=ro&immutable=1", uri=True, isolation_level=None
                )
                self._check_or_init(False)
                self.read_only = True
        except sqlite3.OperationalError as e:
            self._close_quietly()
            if _read_only_error(e):
                raise UserError(
                    f"cannot write a store here ({e}): a read-only filesystem or no permission; "
                    "choose another --results-dir",
                    path=self.path,
                ) from None
            raise UserError(f"cannot open the store ({e})", path=self.path) from None
        except sqlite3.DatabaseError as e:
            self._close_quietly()
            raise UserError(f"not a runge-bench results store, or a damaged one ({e})", path=self.path) from None
        except UserError:
            self._close_quietly()
            raise

    def _close_quietly(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _open(self, create: bool, patience_s: float = 60.0) -> None:
        """Check (or create) the schema, then, for a writer, switch to WAL. The check comes first
        and only reads: a file that is not a runge-bench store (another program's database, an
        empty file) is refused before anything is written to it, and a reader never writes to the
        file it reads (a store is in WAL mode from its creation). Two processes opening a new store
        at once can get "database is locked" at once, without the busy handler (creating the schema
        and switching the journal mode need the lock the other holds): wait and try again."""
        deadline = time.monotonic() + patience_s
        while True:
            try:
                self._check_or_init(create)
                if create:
                    self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable across a process kill
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                time.sleep(0.05)

    def _check_or_init(self, create: bool) -> None:
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables and create:
            self._db.execute("BEGIN IMMEDIATE")
            for stmt in _SCHEMA.strip().split(";"):
                if stmt.strip():
                    self._db.execute(stmt)
            self._db.executemany(
                "INSERT OR IGNORE INTO meta VALUES (?, ?)", [("app", APP_ID), ("schema_version", str(SCHEMA_VERSION))]
            )
            self._db.execute("COMMIT")
            return
        if not tables:  # an empty database: another sweep's store in its first instant, or a new file
            raise EmptyStore("an empty database, not yet a runge-bench results store", path=self.path)
        meta = dict(self._db.execute("SELECT key, value FROM meta")) if "meta" in tables else {}
        if meta.get("app") != APP_ID or "runs" not in tables:
            raise UserError("not a runge-bench results store (no runge-bench metadata)", path=self.path)
        if meta.get("schema_version") != str(SCHEMA_VERSION):
            raise UserError(
                f"store schema version {meta.get('schema_version')} is not the supported {SCHEMA_VERSION}",
                path=self.path,
            )

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._close_quietly()

    def _query(self, sql: str, params=()) -> list[tuple]:
        """Run a read query; a damaged file or a table of another shape is a UserError."""
        try:
            return self._db.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as e:
            raise UserError(
                f"cannot read the store ({e}): it is damaged or not of this schema; its results cannot be trusted",
                path=self.path,
            ) from None

    def study_text(self) -> dict[str, str]:
        """What the last sweep into this store said of its study: "description" and "question"
        (empty where no sweep recorded them), so that a report of the store alone can say them."""
        rows = self._query("SELECT key, value FROM meta WHERE key IN ('study_description', 'study_question')")
        return {k.removeprefix("study_"): v for k, v in rows}

    def record_study(self, description: str, question: str) -> None:
        """Record the study's description and question (the sweep does, each time it runs)."""
        self._write_meta([("study_description", description), ("study_question", question)])

    def _write_meta(self, items: list[tuple[str, str]]) -> None:
        """Set meta keys in one transaction."""
        if self.read_only:
            raise UserError("the store is read-only (a read-only filesystem or no permission)", path=self.path)
        self._db.execute("BEGIN IMMEDIATE")
        self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", items)
        self._db.execute("COMMIT")

    def hypotheses(self) -> tuple[str, list[dict]]:
        """The primary metric and the hypotheses sweeps declared into this store: each a
        Hypothesis.to_dict() with "declared_at", the time a sweep first recorded it (ISO, UTC)."""
        meta = dict(self._query("SELECT key, value FROM meta WHERE key IN ('study_primary', 'hypotheses')"))
        try:
            declared = json.loads(meta.get("hypotheses", "[]"))
        except ValueError:
            declared = []
        return meta.get("study_primary", ""), declared if isinstance(declared, list) else []

    def record_hypotheses(self, primary: str, hypotheses: list[dict]) -> None:
        """Record the study's primary metric and its hypotheses; one recorded before keeps the
        time it was first declared, a new one gets now."""
        _, known = self.hypotheses()
        texts = {json.dumps({k: v for k, v in h.items() if k != "declared_at"}, sort_keys=True) for h in known}
        now = datetime.now(UTC).isoformat(timespec="microseconds")  # finer than a run's: ties go to exploratory
        new = [{**h, "declared_at": now} for h in hypotheses if json.dumps(h, sort_keys=True) not in texts]
        self._write_meta([("study_primary", primary), ("hypotheses", json.dumps(known + new, sort_keys=True))])

    def finished(self, run_ids: list[str]) -> dict[str, str]:
        """run_id -> when its result was stored (ISO, UTC)."""
        return {rid: t for rid, t in self._by_ids("finished_at", run_ids) if t}

    def write(self, result: RunResult) -> None:
        """Store one result in its own transaction, replacing any earlier row of the same run."""
        row = {
            "run_id": result.run_id,
            "protocol_version": PROTOCOL_VERSION,
            "status": result.status,
            "config": json.dumps(result.config.to_dict(), sort_keys=True),
            "error": result.error,
            "diverged_epoch": result.diverged_epoch,
            "engine": result.engine,
            "device": result.device,
            "wall_s": float(result.wall_s),
            "versions": json.dumps(result.versions, sort_keys=True),
            "finished_at": datetime.now(UTC).isoformat(timespec="microseconds"),
            **{m: result.metrics.get(m) for m in METRICS},
            "curves": _pack(thin_curves(result.curves)),
            "predictions": _pack(result.predictions),
        }
        cols = ", ".join(row)
        marks = ", ".join(f":{k}" for k in row)
        if self.read_only:
            raise UserError("the store is read-only (a read-only filesystem or no permission)", path=self.path)
        with self._db:  # BEGIN ... COMMIT, or ROLLBACK on error: a failed write leaves no trace
            self._db.execute(f"INSERT OR REPLACE INTO runs ({cols}) VALUES ({marks})", row)

    def statuses(self) -> dict[str, str]:
        """run_id -> status of every run stored under the current protocol."""
        return dict(self._query("SELECT run_id, status FROM runs WHERE protocol_version = ?", (PROTOCOL_VERSION,)))

    def other_protocols(self) -> dict[int, int]:
        """protocol version -> rows stored under it, for every version but the current one."""
        q = "SELECT protocol_version, COUNT(*) FROM runs WHERE protocol_version != ? GROUP BY 1 ORDER BY 1"
        return dict(self._query(q, (PROTOCOL_VERSION,)))

    def runs(self) -> pd.DataFrame:
        """One row per run of the current protocol: run_id, status, config fields, metrics, ...
        A row whose config cannot be read is left out and its id added to `unreadable`."""
        extra = ["error", "diverged_epoch", "engine", "device", "wall_s", *METRICS]
        q = f"SELECT run_id, status, config, {', '.join(extra)} FROM runs WHERE protocol_version = ? ORDER BY run_id"
        rows, configs = [], []
        for run_id, status, config, *rest in self._query(q, (PROTOCOL_VERSION,)):
            try:
                configs.append(RunConfig.from_dict(json.loads(config)).to_dict())
            except (TypeError, ValueError):
                self.unreadable.append(run_id)
                continue
            rows.append((run_id, status, *rest))
        df = pd.DataFrame(rows, columns=["run_id", "status", *extra])
        for m in METRICS:
            df[m] = df[m].astype(float)
        config_df = pd.DataFrame(configs, columns=list(RunConfig.__dataclass_fields__))
        return pd.concat([df[["run_id", "status"]], config_df, df.drop(columns=["run_id", "status"])], axis=1)

    def _by_ids(self, columns: str, run_ids: list[str]) -> list[tuple]:
        out = []
        for i in range(0, len(run_ids), 500):  # one query per 500 ids (SQLite's variable limit)
            chunk = run_ids[i : i + 500]
            out += self._query(
                f"SELECT run_id, {columns} FROM runs WHERE run_id IN ({', '.join('?' * len(chunk))})", chunk
            )
        return out

    def versions(self, run_ids: list[str]) -> dict[str, dict[str, str]]:
        """run_id -> the library versions its run recorded ({} where unreadable)."""
        out = {}
        for rid, v in self._by_ids("versions", run_ids):
            try:
                out[rid] = json.loads(v)
            except (TypeError, ValueError):
                out[rid] = {}
        return out

    def arrays(self, run_ids: list[str]) -> dict[str, tuple[dict, dict]]:
        """run_id -> (curves, predictions) for the given runs. A run whose blobs cannot be read
        (a damaged store) is left out and its id added to `unreadable`: one bad row must not sink
        a report."""
        out = {}
        for rid, curves, predictions in self._by_ids("curves, predictions", run_ids):
            try:
                out[rid] = (_unpack(curves), _unpack(predictions))
            except Exception:  # np.load of damaged bytes raises any of a dozen types
                self.unreadable.append(rid)
        return out
