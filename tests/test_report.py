import filecmp
import shutil

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from runge_bench.cli import app
from runge_bench.problem.config import RunConfig, RunResult
from runge_bench.problem.published import PUBLISHED
from runge_bench.problem.vocabulary import METRICS
from runge_bench.runs.store import Store

from .helpers import ROOT, report_text

runner = CliRunner()


def _result(config: RunConfig, metrics: dict) -> RunResult:
    e = np.arange(1, 11, dtype=np.float32)
    curves = {"epoch": e, **dict.fromkeys(("train_f", "train_df", "val_f", "val_df"), 1 / e)}
    preds = {"f": np.zeros(401, np.float32), "df": np.zeros(401, np.float32)}
    return RunResult(config=config, status="ok", metrics=metrics, curves=curves, predictions=preds)


@pytest.fixture
def synthetic_store(tmp_path):
    """Seed-protocol runs whose val metrics are published * (seed + 1) / 10, seeds 0..19, so the
    published value sits at a known place: 10th of 20 -> percentile 47.5."""
    path = tmp_path / "synthetic" / "runs.sqlite"
    with Store(path, create=True) as store:
        for act in ("relu", "tanh"):
            for seed in range(20):
                m = dict.fromkeys(METRICS, 1.0)
                for (a, q, metric), v in PUBLISHED.items():
                    if a == act:
                        m[f"val_{q}_{metric}"] = v * (seed + 1) / 10
                store.write(_result(RunConfig(act, seed=seed), m))
        store.write(_result(RunConfig("tanh", seed=0, width=32), dict.fromkeys(METRICS, 1.0)))  # not the protocol
    return path


def test_reproduction_table_on_controlled_values(synthetic_store, tmp_path):
    result = runner.invoke(app, ["report", str(synthetic_store.parent), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "out" / "tables" / "reproduction.csv")
    assert len(table) == 8 and set(table.verdict) == {"inside"}
    assert (tmp_path / "out" / "figures" / "reproduction.svg").stat().st_size > 10_000
    assert "![reproduction](figures/reproduction.svg)" in (tmp_path / "out" / "report.md").read_text()
    assert list(table.columns[:4]) == ["activation", "quantity", "metric", "published"]
    assert (table.n == 20).all()
    np.testing.assert_allclose(table.percentile, 47.5)
    np.testing.assert_allclose(table["median"], table.published * 1.05)  # (10 + 11) / 2 / 10
    np.testing.assert_allclose(table.p95, table.published * 19.05 / 10)  # linear interpolation at rank 18.05
    # One run per activation, not four events: seeds 0-8 lie below the published run on all four
    # of its numbers ((seed + 1) / 10 < 1), seeds 10-19 above on all four.
    text = report_text(tmp_path / "out" / "report.md")
    assert (
        "relu: taken jointly, the published run is not beyond all 20 of our seeds: worse than 9 of them on "
        "every one of its 4 numbers, better than 10 on every one." in text
    )


def test_reproduction_verdicts_below_and_above(tmp_path):
    path = tmp_path / "s" / "runs.sqlite"
    with Store(path, create=True) as store:
        for seed in range(10):
            m = dict.fromkeys(METRICS, 1.0)
            m["val_f_mse"] = 1.0  # far above published relu f mse -> published is below our range
            m["val_df_max"] = 1e-6  # far below published -> published is above
            store.write(_result(RunConfig("relu", seed=seed), m))
    assert runner.invoke(app, ["report", str(path.parent)]).exit_code == 0
    table = pd.read_csv(path.parent / "tables" / "reproduction.csv").set_index(["quantity", "metric"])
    assert table.loc[("f", "mse"), "verdict"] == "below" and table.loc[("f", "mse"), "percentile"] == 0
    assert table.loc[("df", "max"), "verdict"] == "above" and table.loc[("df", "max"), "percentile"] == 100
    # A published run beyond every seed on all its numbers is one event, with the probability of one.
    with Store(path) as store:
        for seed in range(10):
            tiny = dict.fromkeys(METRICS, 1e-12)
            store.write(_result(RunConfig("tanh", seed=seed), tiny))
    assert runner.invoke(app, ["report", str(path.parent)]).exit_code == 0
    text = report_text(path.parent / "report.md")
    assert "tanh: the published run lies above all 10 of our seeds on every one of its 4 numbers." in text
    assert (
        "A run of our distribution does so on one number with probability 1/11 (0.091), and on all 4 together at "
        "most that: one event, not 4." in text
    )


@pytest.fixture(scope="module")
def smoke_store(tmp_path_factory):
    d = tmp_path_factory.mktemp("smoke")
    result = runner.invoke(app, ["sweep", str(ROOT / "studies" / "smoke.toml"), "--results-dir", str(d), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    return d


def test_report_on_smoke_end_to_end_and_byte_for_byte(smoke_store, tmp_path):
    result = runner.invoke(app, ["report", "smoke", "--results-dir", str(smoke_store)])
    assert result.exit_code == 0, result.output
    out = smoke_store / "smoke"
    for rel in [
        "tables/runs.csv",
        "tables/summary.csv",
        "tables/summary.tex",
        "tables/comparisons.csv",
        "figures/fits.svg",
        "figures/fits.pdf",
        "figures/loss_curves.svg",
        "figures/distributions.svg",
    ]:
        assert (out / rel).stat().st_size > 500, rel
    assert (out / "report.md").read_text().startswith("# runge-bench report: smoke\n")
    for rel in ("tables/summary.md", "tables/comparisons.md"):  # Markdown tables, a row per line
        lines = (out / rel).read_text().splitlines()
        assert lines[0].startswith("| ") and set(lines[1]) <= set("| -") and len(lines) > 2, rel
    runs = pd.read_csv(out / "tables" / "runs.csv")
    assert len(runs) == 16 and {
        "run_id",
        "status",
        "activation",
        "width",
        "seed",
        "batch_size",
        *METRICS,
        "wall_s",
    } <= set(runs.columns)
    assert set(runs.batch_size) == {"full"}
    summary = pd.read_csv(out / "tables" / "summary.csv")
    assert len(summary) == 2 * len(METRICS) and (summary.n_ok == 8).all()
    comp = pd.read_csv(out / "tables" / "comparisons.csv")
    assert (comp.a == "relu").all() and (comp.n_pairs == 8).all() and comp.p_wilcoxon.notna().all()
    text = report_text(out / "report.md")
    assert "## Findings" in text and "![" in text and "Wilcoxon on log ratios p = " in text
    raw = (out / "report.md").read_text()
    assert raw.index("## At a glance") < raw.index("## Study") < raw.index("## Findings")
    assert "**Question.** Does the code still reproduce its committed results" in text
    assert max(len(line) for line in raw.splitlines() if not line.startswith("|")) <= 120  # prose is wrapped
    # the figures sit in their sections, not in a list at the end
    assert raw.index("![fits](figures/fits.svg)") > raw.index("## Summary over seeds")
    assert "## Figures" not in raw
    assert "this report's baselines and statistics computed with: numpy" in text
    assert "\\toprule" in (out / "tables" / "summary.tex").read_text()
    assert not (out / "tables" / "reproduction.csv").exists()  # smoke is not the seed protocol
    # Same store -> same files, byte for byte.
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    assert runner.invoke(app, ["report", str(out)]).exit_code == 0
    for sub in ["", "tables", "figures"]:
        names = [
            p.name
            for p in (out / sub).iterdir()
            if p.is_file() and p.suffix != ".sqlite" and not p.name.startswith("runs.sqlite")
        ]
        match, mismatch, errors = filecmp.cmpfiles(out / sub, copy / sub, names, shallow=False)
        assert not mismatch and not errors, (sub, mismatch)


def test_report_with_a_study_file_ignores_runs_outside_its_plan(smoke_store, write_study):
    study = write_study(
        'name = "smoke"\n[fixed]\nwidth = 16\nepochs = 400\nn_points = 200\n'
        '[grid]\nactivation = ["relu", "tanh"]\nseed = [0]\n'
    )
    result = runner.invoke(
        app, ["report", str(study), "--results-dir", str(smoke_store), "--out", str(smoke_store / "planned")]
    )
    assert result.exit_code == 0, result.output
    assert "14 stored runs are not in the current plan" in (smoke_store / "planned" / "report.md").read_text()
    assert len(pd.read_csv(smoke_store / "planned" / "tables" / "runs.csv")) == 2


def test_report_errors_are_one_line_exit_2(tmp_path):
    missing = runner.invoke(app, ["report", "nope", "--results-dir", str(tmp_path)])
    assert missing.exit_code == 2
    assert (
        missing.stderr.strip()
        == f"error: {tmp_path / 'nope' / 'runs.sqlite'}: no results store here (run `runge-bench sweep` on the study first)"
    )
    empty = tmp_path / "empty" / "runs.sqlite"
    Store(empty, create=True).close()
    result = runner.invoke(app, ["report", "empty", "--results-dir", str(tmp_path)])
    assert result.exit_code == 2 and result.stderr.strip() == f"error: {empty}: the store holds no runs to report"


def _sweep_and_report(study, results, name: str):
    """Sweep a study file on one worker and report it; the report's directory."""
    assert runner.invoke(app, ["sweep", str(study), "--results-dir", str(results), "-j", "1"]).exit_code == 0
    result = runner.invoke(app, ["report", str(study), "--results-dir", str(results)])
    assert result.exit_code == 0, result.output
    return results / name


def test_multi_axis_study_gets_compact_tables_and_every_figure(write_study, tmp_path):
    study = write_study(
        'name = "multi"\n[fixed]\nepochs = 8\nn_points = 60\n[grid]\n'
        'activation = ["relu", "tanh", "silu"]\nwidth = [4, 8, 32]\nderiv_weight = [0.0, 1.0]\n'
        "seed = [0, 1]\n"
    )
    out = _sweep_and_report(study, tmp_path, "multi")
    for name in [
        "fits",
        "loss_curves",
        "distributions",
        "by_width",
        "by_deriv_weight",
        "tradeoff",
        "heatmap_width",
        "heatmap_width_weight",
        "ranking",
    ]:
        assert (out / "figures" / f"{name}.svg").stat().st_size > 10_000, name
    text = (out / "report.md").read_text()
    assert "| activation | width | deriv_weight=0.0 | deriv_weight=1.0 |" in text  # the compact summary
    assert "| a | b | metric | cells | a lower | b lower | neither |" in text
    assert "## Baselines" in text and "cubic Hermite spline" in text
    ranking = pd.read_csv(out / "tables" / "ranking.csv")
    assert set(ranking.activation) == {"relu", "tanh", "silu"} and (ranking.n_blocks == 6).all()
    assert len(pd.read_csv(out / "tables" / "summary.csv")) == 3 * 3 * 2 * 8
    assert set(pd.read_csv(out / "tables" / "baselines.csv").seed) == {0, 1}


def test_targets_and_regimes_get_their_tables_figures_and_findings(write_study, tmp_path):
    """A study over targets and [[case]] regimes: baselines per target, the floor table and figure,
    the refinement table, fits per target, rankings per cell and whether they hold."""
    study = write_study(
        'name = "precision-mini"\n[fixed]\nwidth = 8\nepochs = 20\nn_points = 80\n[grid]\n'
        'activation = ["relu", "tanh", "silu"]\ntarget = ["runge", "abs"]\nseed = [0, 1, 2]\n'
        '[[case]]\ndtype = "float32"\n'
        '[[case]]\ndtype = "float64"\noptimizer = "adam+lm"\nlm_iters = 3\n'
    )
    out = _sweep_and_report(study, tmp_path, "precision-mini")
    for name in ["floor_gap", "fits_by_target", "fits", "ranking"]:
        assert (out / "figures" / f"{name}.svg").stat().st_size > 10_000, name
    text = (out / "report.md").read_text()
    for heading in [
        "## The gap to the classical floor",
        "## Refinement after Adam",
        "### Does the ranking hold?",
        "### Rankings within each cell",
        "### The gap to the classical floor, per regime",
    ]:
        assert heading in text, heading
    assert (
        "- varies **optimizer**" in text and "lm_iters" not in text.split("## Findings")[1].split("## Reproduction")[0]
    )
    baselines = pd.read_csv(out / "tables" / "baselines.csv")
    assert set(baselines.target) == {"runge", "abs"} and len(baselines) == 2 * 3 * 5  # targets x seeds x baselines
    floor = pd.read_csv(out / "tables" / "floor.csv")
    abs_floor = floor[(floor.target == "abs") & (floor.metric == "grid_df_max")]
    assert (abs_floor["median"] >= 0.5).all()  # a continuous f' cannot follow sign(x) across 0
    refinement = pd.read_csv(out / "tables" / "refinement.csv")
    assert set(refinement.optimizer) == {"adam+lm"} and (refinement.refine_iters == 3).all()
    assert (refinement.median_iterations_run <= 3).all() and len(refinement) == 3 * 2
    rankings = pd.read_csv(out / "tables" / "cell_rankings.csv")
    assert len(rankings) == 2 * 2 * 2 * 3 and (rankings.n_blocks == 3).all()  # 4 cells x 2 metrics x 3 activations


def _files(d):
    return sorted(str(p.relative_to(d)) for p in d.rglob("*") if p.is_file())


def test_a_report_owns_its_tables_and_figures(smoke_store, synthetic_store, tmp_path):
    """A report written over an earlier one of another shape (here the seed-protocol store, with
    its reproduction table and figure) leaves exactly the files a fresh report has: nothing
    stale survives, and no staging directory is left behind."""
    shared, fresh = tmp_path / "shared", tmp_path / "fresh"
    assert runner.invoke(app, ["report", str(synthetic_store.parent), "--out", str(shared)]).exit_code == 0
    assert (shared / "tables" / "reproduction.csv").exists()
    (shared / "figures" / "mine.png").write_bytes(b"not the report's")
    smoke = str(smoke_store / "smoke")
    assert runner.invoke(app, ["report", smoke, "--out", str(shared)]).exit_code == 0
    assert runner.invoke(app, ["report", smoke, "--out", str(fresh)]).exit_code == 0
    assert _files(shared) == _files(fresh) and "tables/reproduction.csv" not in _files(shared)
    assert [p.name for p in shared.iterdir()] and not [p for p in shared.iterdir() if p.name.startswith(".report-")]
    assert (shared / "report.md").read_text() == (fresh / "report.md").read_text()


def test_baselines_are_fitted_per_split_and_paired_with_it(write_study, tmp_path):
    """A study that varies n_points: each cell's networks are paired, seed by seed, with the
    baselines fitted to their own split, not the reference cell's."""
    from runge_bench.analysis.baselines import baseline_runs

    study = write_study(
        'name = "np"\n[fixed]\nwidth = 4\nepochs = 3\n[grid]\nactivation = ["relu", "tanh"]\n'
        "n_points = [40, 80]\nseed = [0, 1, 2]\n"
    )
    assert runner.invoke(app, ["sweep", str(study), "--results-dir", str(tmp_path), "--jobs", "1"]).exit_code == 0
    assert runner.invoke(app, ["report", "np", "--results-dir", str(tmp_path)]).exit_code == 0
    tables_dir = tmp_path / "np" / "tables"
    fitted = pd.read_csv(tables_dir / "baselines.csv")
    assert list(fitted.columns[:3]) == ["target", "n_points", "baseline"] and set(fitted.n_points) == {40, 80}
    for n in (40, 80):
        own = baseline_runs([0, 1, 2], n_points=n).set_index(["baseline", "seed"])
        mine = fitted[fitted.n_points == n].set_index(["baseline", "seed"])
        np.testing.assert_allclose(mine.loc[own.index, "grid_f_max"], own.grid_f_max, rtol=1e-9)
    summary = pd.read_csv(tables_dir / "baselines_summary.csv")
    floor = pd.read_csv(tables_dir / "floor.csv")
    runs = pd.read_csv(tables_dir / "runs.csv")
    for n in (40, 80):
        rows = floor[(floor.n_points == n) & (floor.metric == "grid_f_max")]
        best = summary[(summary.n_points == n) & (summary.metric == "grid_f_max")]["median"].min()
        np.testing.assert_allclose(rows.baseline_median, best)
        # The per-seed ratio to the spline is to the spline of the same split.
        tanh = runs[(runs.n_points == n) & (runs.activation == "tanh")].set_index("seed").grid_f_max
        spline = fitted[(fitted.n_points == n) & (fitted.baseline == "cubic spline")].set_index("seed").grid_f_max
        ratio = float(np.exp(np.median(np.log(tanh / spline.loc[tanh.index]))))
        np.testing.assert_allclose(rows[rows.activation == "tanh"].spline_median_ratio, ratio, rtol=1e-9)


def test_a_store_that_is_not_a_full_grid_reports(write_study, tmp_path):
    """[[case]] tables that vary two keys together (and so any store holding part of a grid): the
    reference cell is one that exists, and the report says which."""
    study = write_study(
        'name = "cases"\n[fixed]\nn_points = 40\n[grid]\nactivation = ["relu", "tanh", "silu"]\nseed = [0, 1, 2]\n'
        "[[case]]\nwidth = 8\nepochs = 10\n[[case]]\nwidth = 16\nepochs = 5\n"
    )
    assert runner.invoke(app, ["sweep", str(study), "--results-dir", str(tmp_path), "--jobs", "1"]).exit_code == 0
    result = runner.invoke(app, ["report", "cases", "--results-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "cases" / "report.md").read_text()
    assert "- reference cell (the per-cell figures): width=8, epochs=10" in text
    assert (tmp_path / "cases" / "figures" / "fits.svg").exists()
    # An interrupted sweep leaves part of a grid: it reports too.
    with Store(tmp_path / "cases" / "runs.sqlite") as store:
        runs = store.runs()
    keep = runs[~((runs.width == 8) & (runs.activation == "relu"))].run_id
    part = tmp_path / "part" / "runs.sqlite"
    part.parent.mkdir()
    shutil.copy(tmp_path / "cases" / "runs.sqlite", part)
    import sqlite3

    with sqlite3.connect(part) as db:
        db.execute(f"DELETE FROM runs WHERE run_id NOT IN ({', '.join('?' * len(keep))})", list(keep))
    db.close()
    result = runner.invoke(app, ["report", str(part.parent)])
    assert result.exit_code == 0, result.output


def test_an_activation_without_ok_runs_is_named_and_left_out_of_the_tests(tmp_path):
    path = tmp_path / "div" / "runs.sqlite"
    with Store(path, create=True) as store:
        for i, act in enumerate(("relu", "tanh", "silu", "softplus")):
            for seed in range(6):
                config = RunConfig(act, seed=seed, width=8, epochs=10)
                if act == "softplus":
                    store.write(RunResult(config=config, status="diverged", diverged_epoch=3))
                else:
                    store.write(_result(config, dict.fromkeys(METRICS, 10.0**-i * (1 + 0.01 * seed))))
    result = runner.invoke(app, ["report", str(path.parent)])
    assert result.exit_code == 0, result.output
    text = (path.parent / "report.md").read_text()
    assert "softplus has no ok run (6 diverged): it is left out of the comparisons and rankings" in text
    ranking = pd.read_csv(path.parent / "tables" / "ranking.csv")
    assert set(ranking.activation) == {"relu", "tanh", "silu"}
    result = runner.invoke(app, ["compare", str(path.parent), str(path.parent), "--out", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output


def test_a_study_of_degenerate_cases_reports(write_study, tmp_path):
    """One factor at a time, at its extremes: tiny data, one unit, a learning rate that diverges,
    batches of one. Each case is its own cell; none of them exists in a product with the others."""
    study = write_study(
        'name = "odd"\n[fixed]\nepochs = 4\nwidth = 4\nn_points = 30\n[grid]\nactivation = ["relu", "tanh", "silu"]\n'
        "seed = [0, 1, 2]\n[[case]]\nlr = 0.001\n[[case]]\nlr = 1e6\n[[case]]\nbatch_size = 1\n"
    )
    assert runner.invoke(app, ["sweep", str(study), "--results-dir", str(tmp_path), "--jobs", "1"]).exit_code == 0
    three = write_study(
        'name = "three"\n[fixed]\nepochs = 4\n[grid]\nactivation = ["relu", "tanh"]\nseed = [0, 1, 2]\n'
        "[[case]]\nn_points = 3\nwidth = 1\n[[case]]\nn_points = 30\nwidth = 4\n",
        name="three.toml",
    )
    assert runner.invoke(app, ["sweep", str(three), "--results-dir", str(tmp_path), "--jobs", "1"]).exit_code == 0
    for name in ("odd", "three"):
        result = runner.invoke(app, ["report", name, "--results-dir", str(tmp_path)])
        assert result.exit_code == 0, (name, result.output)
        assert (tmp_path / name / "report.md").read_text().startswith(f"# runge-bench report: {name}")


def test_a_report_does_not_depend_on_the_order_of_its_runs(tmp_path, monkeypatch):
    """The same runs in another order (as another store, another SQLite or pandas version might
    hand them over): every table and report.md byte for byte the same."""
    import dataclasses

    from runge_bench.analysis import study as study_module
    from runge_bench.outputs.report import build_report
    from runge_bench.runs.loading import resolve

    source = resolve(str(ROOT / "results" / "seed-replication"), ROOT / "results")
    build_report(source, tmp_path / "sorted")
    real = study_module.read_store

    def shuffled(src, arrays_for):
        contents = real(src, arrays_for)
        runs = contents.runs.sample(frac=1.0, random_state=7).reset_index(drop=True)
        arrays = dict(reversed(list(contents.arrays.items())))
        return dataclasses.replace(contents, runs=runs, arrays=arrays)

    monkeypatch.setattr(study_module, "read_store", shuffled)
    build_report(source, tmp_path / "shuffled")
    for name in ["report.md", *sorted(p.name for p in (tmp_path / "sorted" / "tables").iterdir())]:
        rel = name if name == "report.md" else f"tables/{name}"
        assert (tmp_path / "shuffled" / rel).read_bytes() == (tmp_path / "sorted" / rel).read_bytes(), rel
