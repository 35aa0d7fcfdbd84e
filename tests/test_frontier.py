"""The precision frontier (analysis/frontier.py): thresholds reached by the fewest parameters, the
classical methods at their own number of coefficients, the gap to the best classical method
(floored on both sides), the goal, and the section of a real frontier study's report."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from runge_bench.analysis import frontier
from runge_bench.analysis.baselines import FLOATER_HORMANN, report_floor
from runge_bench.cli import app
from runge_bench.problem.config import RunConfig
from runge_bench.problem.vocabulary import METRICS
from runge_bench.runs.loading import prepare

from .helpers import jitter, report_text


def _runs(error, widths=(8, 32), methods=(("adam", 1), ("adam+gn", 1), ("adam+gn", 3)), seeds=range(10)):
    rows = []
    for width in widths:
        for optimizer, stages in methods:
            for seed in seeds:
                extra = dict(gn_iters=10) if optimizer == "adam+gn" else {}
                c = RunConfig(
                    "tanh", seed=seed, width=width, dtype="float64", optimizer=optimizer, stages=stages, **extra
                )
                e = error(width, optimizer, stages, seed)
                rows.append({"run_id": c.run_id, "status": "ok", **c.to_dict(), **dict.fromkeys(METRICS, e)})
    return prepare(pd.DataFrame(rows))


def test_cells_count_every_stage_and_failures_reach_nothing():
    df = _runs(lambda w, o, s, seed: 1e-3 * jitter(seed))
    df.loc[(df.stages == 3) & (df.width == 8) & (df.seed < 6), "status"] = "failed"
    cells = frontier.network_cells(df)
    three = cells[(cells.method == "3 stages of adam+gn(10)") & (cells.width == 8)].iloc[0]
    assert three.n_params == 3 * (8 + 8 + 8 * 8 + 8 + 8 + 1)
    assert (three.n, three.n_ok) == (10, 4)
    assert three.grid_f_max == np.inf  # 6 of 10 runs reached nothing: the median is a failure
    one = cells[(cells.method == "adam") & (cells.width == 8)].iloc[0]
    assert one.grid_f_max == pytest.approx(np.median([1e-3 * jitter(s) for s in range(10)]))


def test_fewest_parameters_per_threshold_with_the_floor():
    """Errors fall with width. A network's own errors count as they are; floored (as the classical
    fits' are), 1e-12 reaches 1e-10 but reads as the floor, and f′'s threshold 1e-8, below its
    floor 1e-7, is reached by none."""
    errors = {8: 5e-5, 32: 5e-7, 128: 1e-12}
    df = _runs(lambda w, o, s, seed: errors[w], widths=(8, 32, 128), methods=(("adam", 1),))
    cells = frontier.network_cells(df)
    params = dict(zip(cells.width, cells.n_params))
    own = frontier.fewest(cells, ["activation", "method"]).set_index("metric")
    assert own.loc["grid_f_max", "best"] == 1e-12 and own.loc["grid_df_max", "le_1e-08"] == params[128]
    row = frontier.fewest(cells, ["activation", "method"], floored=True).query("metric == 'grid_f_max'").iloc[0]
    assert row["le_0.0001"] == params[8]
    assert row["le_1e-06"] == params[32]
    assert row["le_1e-08"] == row["le_1e-10"] == params[128]
    assert row.best == 1e-10 and row.best_params == params[128]
    d = frontier.fewest(cells, ["activation", "method"], floored=True).query("metric == 'grid_df_max'").iloc[0]
    assert d.best == 1e-7 and np.isnan(d["le_1e-08"])  # f′'s floor is 1e-7: 1e-8 cannot be told from rounding


def test_classical_scan_finds_the_rational_runge_function():
    """AAA recovers 1/(1+25x²) with 3 support points (9 numbers) to the floor; Chebyshev least
    squares on 160 random points falls by an order and more over its degrees, then blows up where
    the degree nears the number of points (measured: 0.73 at degree 1, 0.026 at 36, 400 at 101)."""
    scan = frontier.classical_scan([0, 1], 200, 0.2, "runge", 0.0)
    aaa = scan[scan.method == frontier.AAA_SCAN]
    reached = aaa[aaa.grid_f_max <= 1e-10]
    assert reached.n_params.min() <= 12
    cheb = scan[(scan.method == frontier.CHEB_SCAN) & (scan.seed == 0)].set_index("n_params").grid_f_max
    assert cheb.min() < cheb.loc[2] / 20 and cheb.loc[102] > 100 * cheb.min()


def _gap_inputs(network, classical):
    df = _runs(lambda w, o, s, seed: network * jitter(seed), widths=(16,), methods=(("adam+gn", 3),)).assign(noise=0.0)
    baselines = pd.DataFrame(
        [
            # floored as the baselines' table is (baselines._floored)
            {"target": "runge", "noise": 0.0, "baseline": FLOATER_HORMANN, "seed": s}
            | {m: max(classical * jitter(9 - s), report_floor(m)) for m in METRICS}
            for s in range(10)
        ]
    )
    bsum = pd.DataFrame(
        [
            {
                "target": "runge",
                "noise": 0.0,
                "baseline": FLOATER_HORMANN,
                "metric": m,
                "median": classical,
                "n_params": 800,
            }
            for m in METRICS
        ]
    )
    cells = frontier.network_cells(df)
    return frontier.gap_table(df, cells, baselines, bsum)


def test_the_gap_is_a_paired_test_and_says_which_side_wins():
    gaps = _gap_inputs(network=1e-6, classical=1e-4)
    assert (gaps.favours == "network").all() and (gaps.p_holm < 0.05).all()
    assert gaps.ratio.iloc[0] == pytest.approx(1e-2, rel=0.05)
    (claim, details), *_ = frontier.gap_findings(gaps)
    assert claim.startswith("runge (rational), clean:") and claim.count("networks lower") == 2


def test_at_the_floor_neither_side_wins():
    """A network at 1e-13 and a rational fit at 1e-12: both are rounding; floored on
    both sides, the pairs tie and the finding is not a win."""
    gaps = _gap_inputs(network=1e-13, classical=1e-12)
    gaps = gaps[gaps.metric == "grid_f_max"]
    assert gaps.network_median.iloc[0] == 1e-10
    (claim, details), *_ = frontier.gap_findings(gaps)
    assert "inconclusive" in claim and "networks lower" not in claim
    assert "both at or below the rounding floor" in details[0]


def test_the_goal_is_met_by_the_smallest_cell_that_meets_it():
    errors = {8: (3e-8, 2e-6), 32: (5e-11, 4e-9), 128: (2e-11, 1e-9)}
    df = _runs(lambda w, o, s, seed: errors[w][0], widths=(8, 32, 128), methods=(("adam+gn", 3),))
    df["grid_df_max"] = [errors[w][1] for w in df.width]
    cells = frontier.network_cells(df)
    claim, details = frontier.goal_finding(cells)
    assert claim.startswith("The goal is met: tanh, 3 stages of adam+gn(10), width 32")
    assert any("width 128" in d for d in details)
    claim, _ = frontier.goal_finding(cells[cells.width == 8])
    assert (
        claim.startswith("The goal is not met: closest tanh, 3 stages of adam+gn(10), width 8")
        and "300x above" in claim
    )


TINY = """name = "tiny-frontier"
description = "tanh and silu, widths 4 and 8, Adam, Adam+Gauss-Newton and two stages; Runge clean, sin4pi noisy"
question = "How few parameters reach each precision?"
[fixed]
depth = 1
dtype = "float64"
epochs = 40
lr = 1e-2
n_points = 80
[grid]
seed = { start = 0, stop = 6 }
width = [4, 8]
[[case]]
activation = "tanh"
[[case]]
activation = "tanh"
optimizer = "adam+gn"
gn_iters = 8
[[case]]
activation = "silu"
optimizer = "adam+gn"
gn_iters = 8
stages = 2
[[case]]
target = "sin4pi"
noise = 0.01
activation = "tanh"
optimizer = "adam+gn"
gn_iters = 8
"""


@pytest.mark.slow
def test_a_frontier_study_reports_its_frontier(tmp_path, write_study):
    runner = CliRunner()
    study = write_study(TINY, "tiny-frontier.toml")
    swept = runner.invoke(app, ["sweep", str(study), "--results-dir", str(tmp_path), "--jobs", "1"])
    assert swept.exit_code == 0, swept.output
    reported = runner.invoke(app, ["report", "tiny-frontier", "--results-dir", str(tmp_path)])
    assert reported.exit_code == 0, reported.output
    out = tmp_path / "tiny-frontier"
    text = report_text(out / "report.md")
    assert "## The precision frontier" in text
    assert "The goal is not met: closest" in text
    assert "- sin4pi (not rational), noise 0.01:" in text
    for name in ("frontier_cells", "frontier", "frontier_classical", "frontier_gaps"):
        assert (out / "tables" / f"{name}.csv").is_file()
    assert (out / "figures" / "frontier_f.svg").is_file() and (out / "figures" / "frontier_df.svg").is_file()
    cells = pd.read_csv(out / "tables" / "frontier_cells.csv")
    assert set(cells.method) == {"adam", "adam+gn(8)", "2 stages of adam+gn(8)"}
    classical = pd.read_csv(out / "tables" / "frontier_classical.csv")
    # the study's own conditions only: no Floater-Hormann row for a (target, noise) it did not train
    assert set(zip(classical.target, classical.noise)) == {("runge", 0.0), ("sin4pi", 0.01)}


def test_the_goal_says_what_held_the_closest_cell_back():
    """The f residual's RMS at the training points against the grid's max error: close together,
    the optimiser stopped; far apart, the fit misses between the points."""
    df = _runs(lambda w, o, s, seed: 3e-9, widths=(8,), methods=(("adam+gn", 3),))
    df["grid_df_max"] = 2e-7
    for rms, verdict in ((1e-9, "the optimiser, not the sampling"), (1e-12, "the sampling, not the optimiser")):
        arrays = {rid: ({"train_f": np.array([1.0, rms**2])}, {}) for rid in df.run_id}
        claim, details = frontier.goal_finding(frontier.network_cells(df, arrays))
        assert claim.startswith("The goal is not met") and verdict in details[0]


def test_methods_that_differ_in_iterations_are_cells_of_their_own():
    df = _runs(lambda w, o, s, seed: 1e-6, widths=(8,), methods=(("adam+gn", 3),))
    more = df.assign(gn_iters=20, run_id=df.run_id + "x")
    cells = frontier.network_cells(pd.concat([df, more], ignore_index=True))
    assert sorted(cells.method) == ["3 stages of adam+gn(10)", "3 stages of adam+gn(20)"] and set(cells.n) == {10}
