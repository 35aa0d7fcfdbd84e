"""The notebook API and `runge-bench show`, on the committed smoke store."""

import numpy as np
import pytest

from runge_bench import api
from runge_bench.cli import run
from runge_bench.config import METRICS
from runge_bench.errors import UserError
from runge_bench.store import Store
from runge_bench.target import plot_grid, runge

from .conftest import ROOT

SMOKE = ROOT / "results" / "smoke"


def test_runs_is_one_tidy_row_per_run():
    runs = api.runs(SMOKE)
    assert len(runs) == 16 and runs.run_id.is_unique
    assert {"activation", "seed", "width", "batch_size", "status", *METRICS} <= set(runs.columns)
    with Store(SMOKE / "runs.sqlite") as store:
        stored = store.runs().set_index("run_id")
    np.testing.assert_array_equal(runs.set_index("run_id").loc[stored.index, "grid_f_mse"], stored.grid_f_mse)
    tanh = api.cell(runs, activation="tanh", seed=3)
    assert len(tanh) == 1 and tanh.iloc[0].activation == "tanh"
    with pytest.raises(UserError, match="unknown field 'wdth'"):
        api.cell(runs, wdth=16)


def test_curves_and_predictions_are_long_frames_of_the_stored_arrays():
    ids = list(api.runs(SMOKE).run_id[:3])
    curves = api.curves(SMOKE, ids)
    assert list(curves.columns) == ["run_id", "epoch", "curve", "value"]
    assert set(curves.curve) == {"train_f", "train_df", "val_f", "val_df"} and set(curves.run_id) == set(ids)
    with Store(SMOKE / "runs.sqlite") as store:
        stored_curves, stored_preds = store.arrays(ids)[ids[0]]
    one = curves[(curves.run_id == ids[0]) & (curves.curve == "val_df")].sort_values("epoch")
    np.testing.assert_array_equal(one.value.to_numpy(), stored_curves["val_df"].astype(float))
    assert one.epoch.iloc[-1] == 400
    preds = api.predictions(SMOKE, ids)
    assert len(preds) == 3 * len(plot_grid())
    mine = preds[preds.run_id == ids[0]]
    np.testing.assert_array_equal(mine.f.to_numpy(), stored_preds["f"].astype(float))
    np.testing.assert_allclose(mine.f_true.to_numpy(), runge(plot_grid()))
    with pytest.raises(UserError, match="no stored run nope"):
        api.curves(SMOKE, ["nope"])


def test_show_a_cell_and_a_run(tmp_path, capsys):
    assert run(["show", str(SMOKE), "--where", "activation=tanh", "--out", str(tmp_path / "cell")]) == 0
    text = (tmp_path / "cell" / "show.md").read_text()
    assert "activation=tanh" in text and "8 runs (8 ok)" in text and "| tanh | 8 |" in text
    assert (tmp_path / "cell" / "fits.png").stat().st_size > 10_000 and (tmp_path / "cell" / "loss_curves.png").exists()
    runs = api.runs(SMOKE)
    rid = runs[runs.activation == "relu"].run_id.iloc[0]
    assert run(["show", str(SMOKE), "--run", rid, "--out", str(tmp_path / "run")]) == 0
    text = (tmp_path / "run" / "show.md").read_text()
    value = runs.set_index("run_id").loc[rid, "val_f_mse"]
    assert f"run {rid}" in text and "1 runs (1 ok)" in text and f"{value:.2e}"[:4] in text


@pytest.mark.parametrize("argv, message", [
    (["--where", "width=17"], "error: --where: no run has width=17 (the store holds width = 16)"),
    (["--where", "wdth=16"], "error: --where: unknown field 'wdth'"),
    (["--where", "width"], "error: --where: expected field=value pairs"),
    (["--where", "width=abc"], "error: --where: width='abc' is not a number"),
    ([], "error: give exactly one of --where"),
    (["--run", "nope"], "--run: no stored run 'nope'"),
])  # fmt: skip
def test_show_errors_are_one_line(tmp_path, capsys, argv, message):
    code = run(["show", str(SMOKE), "--out", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_version(capsys):
    from runge_bench import __version__

    assert run(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"runge-bench {__version__}"


def test_help_shows_defaults_and_takes_h(capsys):
    assert run(["sweep", "-h"]) == 0
    text = capsys.readouterr().out
    assert "Worker processes [default: all cores]." in text and "[default: results]" in text
    assert "<bool>" not in text and "--dry-run " in text
