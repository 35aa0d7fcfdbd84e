"""runge-bench from Python: a results store as tidy pandas DataFrames, for notebooks.

    from runge_bench import api

    runs = api.runs("ablation")                        # one row per run: config, status, metrics
    ids = runs.query("activation == 'tanh' and width == 64 and deriv_weight == 1.0").run_id
    curves = api.curves("ablation", ids)               # run_id, epoch, curve, value (long)
    fits = api.predictions("ablation", ids)            # run_id, x, f, df, f_true, df_true (long)

    r = api.results("ablation")                        # every table and finding of the report
    r.tables.comparisons                               # = results/ablation/tables/comparisons.csv
    r.findings["Across cells"]                         # [(claim, [scope, test, ...]), ...]
    r.glance                                           # what "At a glance" leads with

`study` is what `runge-bench report` takes: a study name (read from `results_dir/<name>/`), a
study file, a results directory or a store file. Everything here reads; nothing trains or writes.

What a store holds but the runs frame leaves out (rows of other protocol versions, damaged rows,
runs outside a study file's current plan) is said in notes: `api.notes(study)`, and
`runs(...).attrs["notes"]`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from .analysis.study import StudyResults, study_results
from .problem.config import CONFIG_FIELDS
from .problem.data import plot_grid
from .problem.errors import UserError
from .problem.targets import get_target
from .runs.loading import Source, load_runs, match, resolve
from .runs.store import Store

RESULTS = Path("results")


def source(study: str | Path, results_dir: str | Path = RESULTS) -> Source:
    """Where `study`'s runs are stored (runs.loading.resolve)."""
    return resolve(study, results_dir)


def runs(study: str | Path, results_dir: str | Path = RESULTS) -> pd.DataFrame:
    """Every run of the store (of the study's current plan, for a study file), one row each:
    run_id, status, every config field (batch_size as a string, "full" or the size), the eight
    metrics, wall_s, engine, device, diverged_epoch, error. Diverged and failed runs are included:
    filter on status == "ok" for statistics. `.attrs["notes"]`: what was left out (notes())."""
    df, notes_ = load_runs(source(study, results_dir))
    df.attrs["notes"] = notes_
    return df


def results(study: str | Path, results_dir: str | Path = RESULTS, tune: list[str] | None = None) -> StudyResults:
    """Every table, finding and figure's data of the study's report, computed as `runge-bench
    report` computes them (analysis.study.study_results), without writing a file: `.tables`
    (summary, comparisons, ranking, baselines, ...), `.findings` by section, `.glance`, and the
    study kinds' own (`.zoo`, `.sensitivity`, `.tuned` where they apply). tune: as report --tune."""
    return study_results(source(study, results_dir), tune)


def notes(study: str | Path, results_dir: str | Path = RESULTS) -> list[str]:
    """What the store holds that runs() leaves out, one sentence each: rows of other protocol
    versions, damaged rows, runs outside a study file's current plan, planned runs not stored yet.
    Empty when nothing was left out."""
    return load_runs(source(study, results_dir))[1]


def _ids(run_ids: str | Iterable[str]) -> list[str]:
    """The run ids asked for, once each: a single id given as a string is one id."""
    return [run_ids] if isinstance(run_ids, str) else list(dict.fromkeys(run_ids))


def _arrays(study: str | Path, run_ids: str | Iterable[str], results_dir: str | Path) -> dict[str, tuple[dict, dict]]:
    """run_id -> (curves, predictions) of the given runs; a UserError for a run the store does not
    hold, and another for one whose arrays are damaged (saying which)."""
    src = source(study, results_dir)
    ids = _ids(run_ids)
    with Store(src.store) as store:
        arrays = store.arrays(ids)
        damaged = [i for i in ids if i in store.unreadable]
    if damaged:
        raise UserError(
            f"run {damaged[0]}: its curves and predictions cannot be read (a damaged row)"
            + (f"; {len(damaged) - 1} more like it" if len(damaged) > 1 else ""),
            path=src.store,
        )
    missing = [i for i in ids if i not in arrays]
    if missing:
        raise UserError(
            f"no stored run {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""),
            path=src.store,
        )
    return arrays


def curves(study: str | Path, run_ids: str | Iterable[str], results_dir: str | Path = RESULTS) -> pd.DataFrame:
    """The per-epoch losses of the given runs, long: run_id, epoch, curve (train_f, train_df,
    val_f, val_df), value. Stored curves are thinned to at most 250 epochs (store.py)."""
    frames = []
    for rid, (c, _) in _arrays(study, run_ids, results_dir).items():
        wide = pd.DataFrame({k: np.asarray(v, float) for k, v in c.items()})
        long = wide.melt(id_vars="epoch", var_name="curve", value_name="value")
        frames.append(long.assign(run_id=rid, epoch=long.epoch.astype(int)))
    out = (
        pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["epoch", "curve", "value", "run_id"])
    )
    return out[["run_id", "epoch", "curve", "value"]]


def predictions(study: str | Path, run_ids: str | Iterable[str], results_dir: str | Path = RESULTS) -> pd.DataFrame:
    """The trained networks' f and f' on the plotting grid (problem.data.plot_grid), beside the truth
    (each run's own target), long: run_id, x, f, df, f_true, df_true. Diverged and failed runs have
    none."""
    x = plot_grid()
    arrays = _arrays(study, run_ids, results_dir)
    fitted = runs(study, results_dir).set_index("run_id")["target"] if arrays else {}
    frames = []
    for rid, (_, p) in arrays.items():
        if p:
            if rid not in fitted:
                raise UserError(
                    f"run {rid}: its config cannot be read (a damaged row), so neither can its target",
                    path=source(study, results_dir).store,
                )
            t = get_target(fitted[rid])
            frames.append(
                pd.DataFrame(
                    {
                        "run_id": rid,
                        "x": x,
                        "f": np.asarray(p["f"], float),
                        "df": np.asarray(p["df"], float),
                        "f_true": t.f(x),
                        "df_true": t.df(x),
                    }
                )
            )
    if not frames:
        return pd.DataFrame(columns=["run_id", "x", "f", "df", "f_true", "df_true"])
    return pd.concat(frames, ignore_index=True)


def cell(runs_df: pd.DataFrame, **where: object) -> pd.DataFrame:
    """The runs of one cell: runs(...) filtered by config values (and status, engine), e.g.
    cell(df, width=16, deriv_weight=0.0, batch_size=32). A value is read as the frame holds it
    (batch_size=32 finds "32"). An unknown field, a value no run has (the error lists those the
    runs have) or a combination no run has is a UserError: a selection is never empty in silence."""
    unknown = set(where) - set(CONFIG_FIELDS) - {"status", "engine"}
    if unknown:
        field = sorted(unknown)[0]
        raise UserError(f"unknown field {field!r} (fields: {', '.join(CONFIG_FIELDS)}, status, engine)", field=field)
    return match(runs_df, where)
