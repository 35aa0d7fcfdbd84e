"""The results store: one SQLite file per study, one row per run, keyed by run_id.

SQLite in WAL mode with a busy timeout, one transaction per result: a killed sweep never loses or
tears a finished run, and two sweeps may write one store at once. Only a sweep's parent process
writes; workers return results. Arrays (curves, predictions) are stored as compressed .npz blobs;
curves longer than MAX_CURVE_POINTS are thinned to evenly spaced epochs (the last one kept) so
that committed stores stay small.
"""

from __future__ import annotations

import io
import json
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from .config import METRICS, PROTOCOL_VERSION, RunConfig, RunResult
from .errors import UserError

SCHEMA_VERSION = 1
APP_ID = "runge-bench"
MAX_CURVE_POINTS = 250
STORE_NAME = "runs.sqlite"

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


class Store:
    """A study's runs on disk. Use as a context manager, or call close()."""

    def __init__(self, path: str | Path, *, create: bool = False):
        self.path = Path(path)
        if not self.path.exists():
            if not create:
                raise UserError("no results store here (run `runge-bench sweep` first)", path=self.path)
            self.path.parent.mkdir(parents=True, exist_ok=True)
        elif self.path.is_dir():
            raise UserError("is a directory, not a results store", path=self.path)
        try:
            self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            self._db.execute("PRAGMA busy_timeout = 60000")
            self._open(create)
        except sqlite3.DatabaseError as e:
            raise UserError(f"not a runge-bench results store ({e})", path=self.path) from None

    def _open(self, create: bool, patience_s: float = 60.0) -> None:
        """Switch to WAL and check (or create) the schema. Two processes opening a new store at once
        can get "database is locked" at once, without the busy handler (switching the journal mode
        and creating the schema need the lock the other holds): wait and try again."""
        deadline = time.monotonic() + patience_s
        while True:
            try:
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable across a process kill
                self._check_or_init(create)
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
            self._db.executemany("INSERT OR IGNORE INTO meta VALUES (?, ?)",
                                 [("app", APP_ID), ("schema_version", str(SCHEMA_VERSION))])  # fmt: skip
            self._db.execute("COMMIT")
            return
        meta = dict(self._db.execute("SELECT key, value FROM meta")) if "meta" in tables else {}
        if meta.get("app") != APP_ID or "runs" not in tables:
            raise UserError("not a runge-bench results store (no runge-bench metadata)", path=self.path)
        if meta.get("schema_version") != str(SCHEMA_VERSION):
            raise UserError(f"store schema version {meta.get('schema_version')} is not the supported "
                            f"{SCHEMA_VERSION}", path=self.path)  # fmt: skip

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._db.close()

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
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            **{m: result.metrics.get(m) for m in METRICS},
            "curves": _pack(thin_curves(result.curves)),
            "predictions": _pack(result.predictions),
        }
        cols = ", ".join(row)
        marks = ", ".join(f":{k}" for k in row)
        with self._db:  # BEGIN ... COMMIT, or ROLLBACK on error
            self._db.execute(f"INSERT OR REPLACE INTO runs ({cols}) VALUES ({marks})", row)

    def statuses(self) -> dict[str, str]:
        """run_id -> status of every run stored under the current protocol."""
        q = "SELECT run_id, status FROM runs WHERE protocol_version = ?"
        return dict(self._db.execute(q, (PROTOCOL_VERSION,)))

    def count_other_protocols(self) -> int:
        q = "SELECT COUNT(*) FROM runs WHERE protocol_version != ?"
        return self._db.execute(q, (PROTOCOL_VERSION,)).fetchone()[0]

    def runs(self) -> pd.DataFrame:
        """One row per run of the current protocol: run_id, status, config fields, metrics, ..."""
        q = (f"SELECT run_id, status, config, error, diverged_epoch, engine, device, wall_s, "
             f"{', '.join(METRICS)} FROM runs WHERE protocol_version = ? ORDER BY run_id")  # fmt: skip
        df = pd.read_sql_query(q, self._db, params=(PROTOCOL_VERSION,))
        configs = pd.DataFrame([json.loads(c) for c in df.pop("config")], index=df.index)
        if configs.empty:
            configs = pd.DataFrame(columns=list(RunConfig.__dataclass_fields__))
        return pd.concat([df[["run_id", "status"]], configs, df.drop(columns=["run_id", "status"])], axis=1)

    def versions(self, run_ids: list[str]) -> dict[str, dict[str, str]]:
        """run_id -> the library versions its run recorded."""
        out = {}
        for i in range(0, len(run_ids), 500):  # one query per 500 ids (SQLite's variable limit)
            chunk = run_ids[i : i + 500]
            q = f"SELECT run_id, versions FROM runs WHERE run_id IN ({', '.join('?' * len(chunk))})"
            out.update({rid: json.loads(v) for rid, v in self._db.execute(q, chunk)})
        return out

    def arrays(self, run_ids: list[str]) -> dict[str, tuple[dict, dict]]:
        """run_id -> (curves, predictions) for the given runs."""
        out = {}
        for i in range(0, len(run_ids), 500):  # one query per 500 ids (SQLite's variable limit)
            chunk = run_ids[i : i + 500]
            q = f"SELECT run_id, curves, predictions FROM runs WHERE run_id IN ({', '.join('?' * len(chunk))})"
            for rid, curves, predictions in self._db.execute(q, chunk):
                out[rid] = (_unpack(curves), _unpack(predictions))
        return out

    def load(self, run_id: str) -> RunResult | None:
        """The full stored result of one run, or None."""
        q = ("SELECT config, status, error, diverged_epoch, engine, device, wall_s, versions, curves, "
             f"predictions, {', '.join(METRICS)} FROM runs WHERE run_id = ?")  # fmt: skip
        row = self._db.execute(q, (run_id,)).fetchone()
        if row is None:
            return None
        config, status, error, div, engine, device, wall, versions, curves, preds, *metrics = row
        return RunResult(
            config=RunConfig.from_dict(json.loads(config)), status=status, error=error,
            diverged_epoch=div, engine=engine, device=device, wall_s=wall,
            versions=json.loads(versions), curves=_unpack(curves), predictions=_unpack(preds),
            metrics={m: v for m, v in zip(METRICS, metrics) if v is not None},
        )  # fmt: skip
