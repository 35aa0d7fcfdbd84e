"""The notebook API and `runge-bench show`, on the committed smoke store."""

import numpy as np
import pytest

from runge_bench import api
from runge_bench.cli import run
from runge_bench.problem.data import plot_grid
from runge_bench.problem.errors import UserError
from runge_bench.problem.targets import runge
from runge_bench.problem.vocabulary import METRICS
from runge_bench.runs.store import Store

from .helpers import ROOT

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
    assert (tmp_path / "cell" / "fits.svg").stat().st_size > 10_000 and (tmp_path / "cell" / "loss_curves.svg").exists()
    runs = api.runs(SMOKE)
    rid = runs[runs.activation == "relu"].run_id.iloc[0]
    assert run(["show", str(SMOKE), "--run", rid, "--out", str(tmp_path / "run")]) == 0
    text = (tmp_path / "run" / "show.md").read_text()
    value = runs.set_index("run_id").loc[rid, "val_f_mse"]
    assert f"run {rid}" in text and "1 runs (1 ok)" in text and f"{value:.2e}"[:4] in text


def test_version(capsys):
    from runge_bench import __version__

    assert run(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"runge-bench {__version__}"


def test_help_shows_defaults_and_takes_h(capsys):
    assert run(["sweep", "-h"]) == 0
    text = capsys.readouterr().out
    assert "Worker processes [default: all cores]." in text and "[default: results]" in text
    assert "<bool>" not in text and "--dry-run " in text


def test_show_and_predictions_follow_each_runs_target(tmp_path):
    """A run's truth is its own target's: predictions carry it, and show draws fits only for a
    selection of one target. --where may be repeated (its pairs add up)."""
    from runge_bench.engine.batched import train_batched
    from runge_bench.problem.config import RunConfig
    from runge_bench.problem.targets import get_target
    from runge_bench.runs.store import Store

    store = tmp_path / "mixed" / "runs.sqlite"
    configs = [
        RunConfig(a, seed=s, target=t, width=4, epochs=3, n_points=40)
        for t in ("runge", "sin4pi")
        for a in ("relu", "tanh")
        for s in (0, 1)
    ]
    with Store(store, create=True) as st:
        for activation in ("relu", "tanh"):
            for r in train_batched([c for c in configs if c.activation == activation]):
                st.write(r)
    ids = [c.run_id for c in configs if c.target == "sin4pi"][:1]
    preds = api.predictions(str(store.parent), ids)
    np.testing.assert_allclose(preds.f_true.to_numpy(), get_target("sin4pi").f(plot_grid()))
    assert run(["show", str(store.parent), "--where", "activation=tanh", "--out", str(tmp_path / "both")]) == 0
    text = (tmp_path / "both" / "show.md").read_text()
    assert "No fits figure: the selection spans 2 targets" in text and (tmp_path / "both" / "loss_curves.svg").exists()
    assert (
        run(
            [
                "show",
                str(store.parent),
                "--where",
                "activation=tanh",
                "--where",
                "target=sin4pi",
                "--out",
                str(tmp_path / "one"),
            ]
        )
        == 0
    )
    text = (tmp_path / "one" / "show.md").read_text()
    assert "activation=tanh, target=sin4pi" in text and "4 runs" not in text and "2 runs (2 ok)" in text
    assert (tmp_path / "one" / "fits.svg").exists()


def test_curves_of_runs_that_end_apart_share_one_epoch_grid():
    """A refinement that stops early leaves a shorter curve, thinned to other epochs: the figures'
    band is taken on the epochs of the run that ends first, each run interpolated there."""
    import pandas as pd

    from runge_bench.runs.loading import per_seed_arrays

    def arrays(epochs):
        e = np.asarray(epochs, float)
        return dict.fromkeys(("train_f", "train_df", "val_f", "val_df"), e * 0 + 1.0 / e) | {"epoch": e}, {
            "f": np.zeros(3),
            "df": np.zeros(3),
        }

    stored = {"a": arrays([1, 5, 10, 20]), "b": arrays([1, 3, 6, 9, 12])}
    runs = pd.DataFrame(
        {
            "run_id": ["a", "b"],
            "activation": "tanh",
            "seed": [0, 1],
            "deriv_weight": 1.0,
            "val_f_mse": [1.0, 2.0],
            "val_df_mse": [1.0, 2.0],
        }
    )
    _, curves, left_out = per_seed_arrays(stored, runs)
    c = curves["tanh"]
    assert not left_out and list(c["epoch"]) == [1, 3, 6, 9, 12]
    np.testing.assert_allclose(c["train_f"][1], [1, 1 / 3, 1 / 6, 1 / 9, 1 / 12])  # b, its own points
    np.testing.assert_allclose(c["train_f"][0][:2], [1, 1 - (1 - 1 / 5) * 2 / 4])  # a, interpolated at 3


def test_a_selection_reads_values_as_the_frame_holds_them_and_is_never_silently_empty(write_study, tmp_path):
    runs = api.runs(SMOKE)
    assert set(runs.batch_size) == {"full"}
    assert len(api.cell(runs, batch_size=None)) == len(api.cell(runs, batch_size="full")) == 16
    batched = runs.assign(batch_size=["32"] * 8 + ["full"] * 8)  # as a store with batch size 32 reads
    assert len(api.cell(batched, batch_size=32)) == len(api.cell(batched, batch_size="32")) == 8
    with pytest.raises(
        UserError, match=r"^batch_size: no run has batch_size=64 \(the runs have batch_size = 32, full\)"
    ):
        api.cell(batched, batch_size=64)
    with pytest.raises(UserError, match=r"^width: no run has width=17 \(the runs have width = 16\)"):
        api.cell(runs, width=17)
    lonely = runs[~((runs.activation == "tanh") & (runs.seed == 3))]
    with pytest.raises(UserError, match="no run has activation='tanh', seed=3 together"):
        api.cell(lonely, activation="tanh", seed=3)


def test_notes_say_what_the_runs_frame_leaves_out(tmp_path):
    import shutil
    import sqlite3

    store = tmp_path / "smoke" / "runs.sqlite"
    store.parent.mkdir()
    shutil.copy(SMOKE / "runs.sqlite", store)
    assert api.notes(store) == [] and api.runs(store).attrs["notes"] == []
    with sqlite3.connect(store) as db:  # two rows of an older protocol, as an old store keeps them
        db.execute("UPDATE runs SET protocol_version = 0 WHERE run_id IN (SELECT run_id FROM runs LIMIT 2)")
    runs = api.runs(store)
    assert len(runs) == 14
    (note,) = api.notes(store)
    assert runs.attrs["notes"] == [note] and "2 runs of older protocol version(s) 0" in note


def test_reading_a_store_needs_no_plotting_library():
    """api, show's selection and compare read stores through runs.loading: reading must not import
    the report builder (and with it seaborn and matplotlib)."""
    import subprocess
    import sys

    script = (
        "import sys\nfrom runge_bench import api\nfrom runge_bench.analysis import compare\n"
        f"api.runs({str(SMOKE)!r})\n"
        "loaded = [m for m in ('seaborn', 'matplotlib', 'runge_bench.outputs.report') if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_the_api_says_what_is_wrong_with_which_run(tmp_path):
    import shutil
    import sqlite3

    store = tmp_path / "smoke" / "runs.sqlite"
    store.parent.mkdir()
    shutil.copy(SMOKE / "runs.sqlite", store)
    ids = list(api.runs(store).run_id)
    one = ids[0]
    # A single id given as a string is one id, not its characters.
    assert set(api.curves(store, one).run_id) == {one} and set(api.predictions(store, one).run_id) == {one}
    with sqlite3.connect(store) as db:
        db.execute("UPDATE runs SET curves = X'00010203deadbeef' WHERE run_id = ?", (ids[1],))
        db.execute('UPDATE runs SET config = \'{"activation": 3, "bogus": 1}\' WHERE run_id = ?', (ids[2],))
    db.close()
    with pytest.raises(UserError, match=f"run {ids[1]}: its curves and predictions cannot be read"):
        api.curves(store, [one, ids[1]])
    with pytest.raises(UserError, match=f"run {ids[2]}: its config cannot be read"):
        api.predictions(store, ids[2])
    with pytest.raises(UserError, match="no stored run nope"):
        api.curves(store, "nope")
    (note,) = api.notes(store)
    assert "1 stored runs could not be read (a damaged row) and were left out" in note and ids[2] in note
