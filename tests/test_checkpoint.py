"""checkpoint "best_val": a run scored with the parameters of its epoch of lowest validation loss."""

import dataclasses

import numpy as np
import pytest

from runge_bench.engine.batched import train_batched
from runge_bench.engine.reference import train_reference
from runge_bench.problem.config import RunConfig
from runge_bench.runs.store import Store, thin_curves

from .helpers import ROOT

# A learning rate high enough that the validation loss is not monotone: the best epoch is not the last.
RUN = RunConfig("tanh", seed=1, width=16, n_points=200, epochs=200, lr=3e-2, checkpoint="best_val")


def _engines(c):
    return {
        "reference": lambda: train_reference(c),
        "torch": lambda: train_batched([c], kernels="torch")[0],
        "native": lambda: train_batched([c], kernels="native")[0],
    }


@pytest.mark.parametrize("engine", ["reference", "torch", "native"])
def test_best_val_is_the_run_stopped_at_its_best_epoch(engine, native_built):
    best = _engines(RUN)[engine]()
    assert best.status == "ok" and 1 <= best.best_epoch < RUN.epochs
    curve = best.curves["best_epoch"]
    assert np.all(np.diff(curve) >= 0) and curve[-1] == best.best_epoch  # the best so far, epoch by epoch
    objective = best.curves["val_f"].astype(float) + RUN.deriv_weight * best.curves["val_df"].astype(float)
    assert int(np.argmin(objective)) + 1 == best.best_epoch  # the first epoch of the lowest validation loss
    stopped = _engines(dataclasses.replace(RUN, epochs=best.best_epoch, checkpoint="last"))[engine]()
    assert stopped.metrics == best.metrics  # scored with exactly those parameters
    last = _engines(dataclasses.replace(RUN, checkpoint="last"))[engine]()
    assert last.best_epoch is None and last.metrics != best.metrics


def test_engines_agree_on_the_best_epoch_and_members_keep_their_own_choice(native_built):
    ref = train_reference(RUN)
    last = dataclasses.replace(RUN, checkpoint="last")
    for kernels in ("torch", "native"):
        group = train_batched([RUN, last, dataclasses.replace(RUN, seed=2)], kernels=kernels)
        assert group[0].best_epoch == ref.best_epoch  # (their errors there differ by float32 drift at this lr)
        alone = train_batched([last], kernels=kernels)[0]
        assert group[1].best_epoch is None and group[1].metrics == pytest.approx(alone.metrics, rel=1e-5)


def test_the_best_epoch_survives_storage(tmp_path):
    long = dataclasses.replace(RUN, epochs=600)  # more epochs than a stored curve keeps
    result = train_batched([long])[0]
    assert len(thin_curves(result.curves)["best_epoch"]) < 600
    with Store(tmp_path / "runs.sqlite", create=True) as store:
        store.write(result)
        curves, _ = store.arrays([result.run_id])[result.run_id]
    assert int(curves["best_epoch"][-1]) == result.best_epoch


def test_the_stored_best_epoch_reaches_the_report(tmp_path):
    """A store of best_val runs: the results object and report.md say the epoch each was scored at,
    as stored, and a study without the checkpoint has no such section."""
    from runge_bench import api
    from runge_bench.outputs.report import build_report
    from runge_bench.runs.loading import resolve

    runs = [dataclasses.replace(RUN, seed=s, epochs=60) for s in (1, 2, 3)]
    runs += [dataclasses.replace(r, checkpoint="last") for r in runs]
    results = train_batched(runs)
    with Store(tmp_path / "s" / "runs.sqlite", create=True) as store:
        for r in results:
            store.write(r)
    table = api.results(tmp_path / "s").tables.checkpoints
    assert len(table) == 1 and table.iloc[0].n_ok == 3  # the best_val runs only
    best = sorted(r.best_epoch for r in results if r.best_epoch is not None)
    assert table.iloc[0].best_epoch_min == best[0] and table.iloc[0].best_epoch_max == best[-1]
    assert table.iloc[0].before_last == sum(b < 60 for b in best)
    build_report(resolve(str(tmp_path / "s"), tmp_path), draw=False)
    text = (tmp_path / "s" / "report.md").read_text()
    assert "## Checkpoints" in text and (tmp_path / "s" / "tables" / "checkpoints.csv").exists()
    assert "## Checkpoints" not in (ROOT / "results" / "smoke" / "report.md").read_text()
