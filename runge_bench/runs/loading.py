"""Reading a results store for analysis: which store a name means, its runs as a DataFrame (with
notes on what was left out), and the arrays (curves, predictions) of chosen runs.

Everything here reads; nothing trains or writes. `api`, `show`, `compare` and `report` all read
through it.

The runs frame holds one row per run: run_id, status, every config field, the metrics, wall_s,
engine, device, diverged_epoch, error. Config values appear as in RunConfig, except batch_size,
which is a string, "full" or the size ("32"), so that a column has one type (`frame_value` turns a
RunConfig value into the frame's).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..problem import callables
from ..problem.activations import activation_order
from ..problem.config import CONFIG_FIELDS, FLOAT_FIELDS, RunConfig
from ..problem.errors import UserError
from ..problem.hypothesis import DEFAULT_PRIMARY, Hypothesis
from ..problem.vocabulary import METRICS
from .store import STORE_NAME, Store, check_location, protocol_notes, store_path
from .study import Study, load_study

RUNS_COLUMNS = ["run_id", "status", *CONFIG_FIELDS, *METRICS, "wall_s", "engine", "device", "diverged_epoch", "error"]


def frame_value(field: str, value: object) -> object:
    """A config value as the runs frame holds it: batch_size None (full batch) -> "full", a size
    -> its digits ("32", whether given as 32, 32.0 or "32"); every other field as it is."""
    if field != "batch_size":
        return value
    if value is None or value == "full" or (isinstance(value, float) and math.isnan(value)):
        return "full"
    try:
        return str(int(float(value)))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)


def select(df: pd.DataFrame, cell: dict) -> pd.DataFrame:
    """The rows of df whose columns equal cell's values (all of them; an empty cell selects all)."""
    mask = np.ones(len(df), bool)
    for k, v in cell.items():
        mask &= (df[k] == v).to_numpy()
    return df[mask]


def match(runs: pd.DataFrame, where: dict[str, object]) -> pd.DataFrame:
    """The runs whose fields have `where`'s values, each value read as the frame holds it
    (frame_value: batch_size=32 finds "32"). A UserError, naming the field, when a field is not a
    column, when no run has a value (saying which values the runs have), or when no run has them
    all together: a selection never comes back empty in silence."""
    wanted = {}
    for key, value in where.items():
        if key not in runs.columns:
            raise UserError(f"unknown field {key!r} (fields: {', '.join(CONFIG_FIELDS)}, status, engine)", field=key)
        wanted[key] = frame_value(key, value)
        if not (runs[key] == wanted[key]).any():
            levels = ", ".join(map(str, sorted(runs[key].dropna().unique(), key=lambda v: (str(type(v)), v))))
            raise UserError(f"no run has {key}={value!r} (the runs have {key} = {levels})", field=key)
    selected = select(runs, wanted)
    if selected.empty:
        together = ", ".join(f"{k}={v!r}" for k, v in where.items())
        raise UserError(f"no run has {together} together (each value exists alone)", field=next(iter(where)))
    return selected


INT_FIELDS = tuple(f for f in CONFIG_FIELDS if RunConfig.__dataclass_fields__[f].type == "int")
INT_RE = re.compile(r"[+-]?[0-9]{1,18}")  # what an int64 column can hold, exactly


def parse_value(field: str, raw: str) -> object:
    """A value typed on the command line (`show --where`), read as the field's type: an integer
    field takes an integer written as one ("16"; not "16.9", "1e400" or 23 digits), a float
    field a finite number, batch_size "full" or an integer; a UserError names the field
    otherwise. Strings are as typed."""
    raw = raw.strip()
    if field in INT_FIELDS or (field == "batch_size" and raw != "full"):
        if not INT_RE.fullmatch(raw):
            raise UserError(f"{field}={raw!r} is not an integer", field=field)
        return int(raw) if field != "batch_size" else frame_value(field, int(raw))
    if field in FLOAT_FIELDS:
        try:
            value = float(raw)
        except ValueError:
            raise UserError(f"{field}={raw!r} is not a number", field=field) from None
        if not math.isfinite(value):
            raise UserError(f"{field}={raw!r} is not a finite number", field=field)
        return value
    return frame_value(field, raw)


def prepare(runs: pd.DataFrame) -> pd.DataFrame:
    """The store's runs with batch_size as frame_value shows it ("full" or a number, never missing)."""
    df = runs.copy()
    df["batch_size"] = [frame_value("batch_size", b) for b in df["batch_size"]]
    return df


@dataclass(frozen=True)
class Source:
    """Where a report's runs come from."""

    store: Path
    name: str
    study: Study | None  # when given, only the runs of its current plan are reported


def resolve(study: str | Path, results_dir: str | Path) -> Source:
    """A study name, a study file, a results directory or a store file -> the store to read."""
    path, results_dir = Path(study), Path(results_dir)
    if path.suffix == ".toml":
        parsed = load_study(path)
        return Source(store_path(results_dir, parsed.name), parsed.name, parsed)
    if path.is_dir() and (path / STORE_NAME).exists():
        return Source(path / STORE_NAME, path.name, None)
    if path.is_file():
        return Source(path, path.parent.name, None)
    return Source(store_path(results_dir, str(study)), str(study), None)


def load_runs(source: Source) -> tuple[pd.DataFrame, list[str]]:
    """The runs to report, and notes on what was left out."""
    with _open(source) as store:
        return _runs(source, store)


def _open(source: Source) -> Store:
    check_location(source.store)
    if not source.store.exists():
        raise UserError("no results store here (run `runge-bench sweep` on the study first)", path=source.store)
    return Store(source.store)


def _runs(source: Source, store: Store) -> tuple[pd.DataFrame, list[str]]:
    runs, other_protocols, unreadable = store.runs(), store.other_protocols(), store.unreadable
    notes = [n[0].upper() + n[1:] + "." for n in protocol_notes(other_protocols)]
    if unreadable:
        notes.append(
            f"{len(unreadable)} stored runs could not be read (a damaged row) and were left out: "
            f"{', '.join(unreadable[:5])}{' ...' if len(unreadable) > 5 else ''}."
        )
    if source.study is not None:
        planned = {c.run_id for c in source.study.configs}
        kept = runs[runs.run_id.isin(planned)]
        if len(kept) < len(runs):
            notes.append(
                f"{len(runs) - len(kept)} stored runs are not in the current plan of "
                f"{source.study.path} and were ignored."
            )
        if len(kept) < len(planned):
            notes.append(f"{len(planned) - len(kept)} runs of the plan are not stored yet.")
        runs = kept
    runs, stale = _loadable_targets(runs)
    notes += stale
    if runs.empty:
        raise UserError(" ".join(["the store holds no runs to report", *notes]), path=source.store)
    df = prepare(runs)
    # Rows in a stable order: registry order for activations (tables take the order explicitly;
    # this keeps runs.csv and every listing stable), then seed and run id.
    rank = {a: i for i, a in enumerate(activation_order(df.activation))}
    df = df.sort_values(["activation", "seed", "run_id"], key=lambda c: c.map(rank) if c.name == "activation" else c)
    return df.reset_index(drop=True), notes


def _loadable_targets(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The runs whose target can be had now, and a note for each Python target that cannot (its
    module was edited or removed since the runs were trained): its runs are left out, said why."""
    notes, keep = [], pd.Series(True, index=runs.index)
    for spec in sorted(t for t in runs.target.unique() if callables.is_callable_spec(t)):
        try:
            callables.load(spec)
        except callables.CallableError as e:
            mine = runs.target == spec
            keep &= ~mine
            notes.append(f"{int(mine.sum())} runs fitted {spec}, which cannot be loaded now, and were left out: {e}.")
    return runs[keep], notes


@dataclass(frozen=True)
class StoreContents:
    """What a report reads of a store, read in one pass (read_store)."""

    runs: pd.DataFrame  # load_runs's frame
    notes: list[str]  # load_runs's notes
    text: dict[str, str]  # the study's "description" and "question" (study_text)
    versions: dict[str, dict[str, str]]  # run_id -> the library versions its run recorded
    arrays: dict[str, tuple[dict, dict]]  # run_id -> (curves, predictions) of the runs asked for
    primary: str = DEFAULT_PRIMARY  # the study's primary metric (its file's, else as recorded)
    hypotheses: tuple[tuple[Hypothesis, str | None], ...] = ()  # each with when it was declared (None: never)
    finished: dict[str, str] = field(default_factory=dict)  # run_id -> when it was stored

    def training_versions(self) -> list[tuple[str, int]]:
        """The distinct library sets the runs were trained with, as text, with their run counts."""
        counts: dict[str, int] = {}
        for v in self.versions.values():
            text = ", ".join(f"{k} {v[k]}" for k in sorted(v) if k != "runge_bench") or "not recorded"
            counts[text] = counts.get(text, 0) + 1
        return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))

    def last_epochs(self) -> dict[str, float]:
        """run_id -> the last epoch number of its stored curves, for the ok runs that were refined
        after Adam (their curves go on past `epochs` for every iteration completed)."""
        refined = self.runs[(self.runs.status == "ok") & (self.runs.optimizer != "adam")]
        return {
            rid: float(c["epoch"][-1])
            for rid in refined.run_id
            if rid in self.arrays and len((c := self.arrays[rid][0]).get("epoch", ()))
        }

    def best_epochs(self) -> dict[str, float]:
        """run_id -> the epoch whose parameters an ok checkpoint "best_val" run was scored with, as
        its stored curves record it (RunResult.best_epoch)."""
        scored = self.runs[(self.runs.status == "ok") & (self.runs.checkpoint == "best_val")]
        return {
            rid: float(c["best_epoch"][-1])
            for rid in scored.run_id
            if rid in self.arrays and len((c := self.arrays[rid][0]).get("best_epoch", ()))
        }


def read_store(source: Source, arrays_for: Callable[[pd.DataFrame], list[str]]) -> StoreContents:
    """The store opened once: its runs (load_runs), the study's text, every run's versions, and
    the arrays of the runs arrays_for(runs) names (a damaged row's are left out)."""
    with _open(source) as store:
        df, notes = _runs(source, store)
        text = _study_text(source, store)
        versions = store.versions(list(df.run_id))
        arrays = store.arrays(arrays_for(df))
        primary, hypotheses = _declared(source, store)
        finished = store.finished(list(df.run_id))
    return StoreContents(df, notes, text, versions, arrays, primary, hypotheses, finished)


def _declared(source: Source, store: Store) -> tuple[str, tuple[tuple[Hypothesis, str | None], ...]]:
    """The primary metric and the hypotheses to test, each with when a sweep first declared it:
    the study file's when the report was given one (a hypothesis no sweep recorded: None), else as
    the store recorded them."""
    primary, recorded = store.hypotheses()
    when = {Hypothesis.from_dict(h).text(): h.get("declared_at") for h in recorded}
    if source.study is not None:
        return source.study.primary, tuple((h, when.get(h.text())) for h in source.study.hypotheses)
    return primary or DEFAULT_PRIMARY, tuple((Hypothesis.from_dict(h), h.get("declared_at")) for h in recorded)


def _study_text(source: Source, store: Store) -> dict[str, str]:
    """The study's description and question: from its file when the report was given one, else as
    the last sweep recorded them in the store (empty strings where neither says)."""
    if source.study is not None:
        return {"description": source.study.description, "question": source.study.question}
    text = store.study_text()
    return {"description": text.get("description", ""), "question": text.get("question", "")}


def validation_curves(
    arrays: dict[str, tuple[dict, dict]], df: pd.DataFrame
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """run_id -> (epochs, validation loss MSE(f) + deriv_weight * MSE(f')) of the Adam epochs of
    every run in df whose arrays are given (Store.arrays), as stored (thinned to at most
    store.MAX_CURVE_POINTS epochs, the first and the last kept); runs whose curves cannot be read
    are left out."""
    weight = dict(zip(df.run_id, df.deriv_weight.astype(float)))
    epochs = dict(zip(df.run_id, df.epochs.astype(int)))
    out = {}
    for rid in df.run_id:
        c = arrays[rid][0] if rid in arrays else {}
        if not {"epoch", "val_f", "val_df"} <= set(c):
            continue
        e = np.asarray(c["epoch"], float)
        adam = e <= epochs[rid]  # a refinement's points go on past the Adam epochs
        out[rid] = (e[adam], (np.asarray(c["val_f"], float) + weight[rid] * np.asarray(c["val_df"], float))[adam])
    return out


def per_seed_arrays(arrays: dict[str, tuple[dict, dict]], runs: pd.DataFrame) -> tuple[dict, dict, list[str]]:
    """Predictions and curves of the given ok runs, by activation, for the fits and curves figures,
    from Store.arrays of those runs; and the ids of runs left out because their arrays are missing
    or incomplete (a damaged row)."""
    complete = {rid for rid, (c, p) in arrays.items() if {"f", "df"} <= set(p) and "epoch" in c}
    left_out = sorted(set(runs.run_id) - complete)
    runs = runs[runs.run_id.isin(complete)]
    members, curves = {}, {}
    for act, g in runs.groupby("activation", sort=False):
        g = g.assign(_total=g.val_f_mse + g.deriv_weight * g.val_df_mse).sort_values(["_total", "seed"])
        ids = list(g.run_id)
        f = np.stack([arrays[i][1]["f"] for i in ids]).astype(float)
        df = np.stack([arrays[i][1]["df"] for i in ids]).astype(float)
        members[act] = {"f": f, "df": df, "best": (len(ids) - 1) // 2}  # median of validation loss
        cs = [arrays[i][0] for i in ids]
        # Runs may end at different epochs (a refinement that stopped early) and so be thinned to
        # different epochs (store.thin_curves): put every run on the epochs of the one that ends
        # first, interpolating between its stored points, so that a band is taken over one epoch.
        grid = min((ci["epoch"].astype(float) for ci in cs), key=lambda e: (e[-1], -len(e)))
        c = {
            k: np.stack([np.interp(grid, ci["epoch"].astype(float), ci[k].astype(float)) for ci in cs])
            for k in ("train_f", "train_df", "val_f", "val_df")
        }
        w = g.deriv_weight.to_numpy(float)[:, None]
        c["train_total"], c["val_total"] = c["train_f"] + w * c["train_df"], c["val_f"] + w * c["val_df"]
        c["epoch"] = grid
        curves[act] = c
    return members, curves, left_out


def cell_arrays(source: Source, ok: pd.DataFrame) -> tuple[dict, dict, list[str]]:
    """The curves and predictions of the given ok runs, shaped for the fits and loss-curve figures
    (figures.per_seed_arrays), and the runs whose arrays could not be read."""
    with Store(source.store) as store:
        return per_seed_arrays(store.arrays(list(ok.run_id)), ok)
