"""`runge-bench compare`: verdicts checked by hand, on stores built to be equal, noisy or broken."""

import shutil
import sqlite3

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from runge_bench.analysis import stats
from runge_bench.analysis.compare import distributions, equivalence
from runge_bench.cli import app
from runge_bench.outputs.markdown import unwrap_markdown
from runge_bench.problem.config import RunConfig, RunResult
from runge_bench.problem.vocabulary import METRICS
from runge_bench.runs.store import Store

from .helpers import ROOT

runner = CliRunner()
SMOKE = ROOT / "results" / "smoke"


def test_equivalence_verdicts_by_hand():
    a = np.linspace(1.0, 2.0, 8)
    # Every run 1.5x (a little more, a little less): all 8 log ratios below +log 2 and above
    # -log 2: both one-sided tests of TOST give the exact 1/2^8.
    e = equivalence(a, a * np.linspace(1.4, 1.6, 8), 2.0, seed=0)
    assert e.verdict == "equivalent" and e.p_equivalent == pytest.approx(1 / 256) and e.over_2x == 0
    # Every run ~3x: all 8 above +log 2: the shift beyond the margin, exact p 2 * 1/2^8.
    e = equivalence(a, a * np.linspace(2.8, 3.2, 8), 2.0, seed=0)
    assert e.verdict == "different" and e.p_different == pytest.approx(2 / 256) and e.over_2x == 1
    assert 2.8 < e.median_ratio < 3.2 and e.ratio_ci[0] >= 2.8
    # Half 3x higher, half 3x lower: neither within nor beyond the margin.
    e = equivalence(a, a * np.array([3, 1 / 3] * 4) * np.linspace(1, 1.1, 8), 2.0, seed=0)
    assert e.verdict == "inconclusive" and e.over_2x == 1
    # Four runs cannot reject anything at 0.05 (1/2^4 > 0.05).
    e = equivalence(a[:4], a[:4], 2.0, seed=0)
    assert e.verdict == "inconclusive" and np.isnan(e.p_equivalent)
    # Identical runs are equivalent.
    assert equivalence(a, a.copy(), 2.0, seed=0).verdict == "equivalent"


def _copy_store(tmp_path, name: str):
    d = tmp_path / name / "smoke"
    d.mkdir(parents=True)
    shutil.copy(SMOKE / "runs.sqlite", d / "runs.sqlite")
    return d


def _scale(store_dir, factor, where: str = "1") -> None:
    """Multiply every metric of the runs matching `where` by factor (an array per run, or a number)."""
    db = sqlite3.connect(store_dir / "runs.sqlite")
    ids = [r[0] for r in db.execute(f"SELECT run_id FROM runs WHERE {where} ORDER BY run_id")]
    factors = np.broadcast_to(np.asarray(factor, float), (len(ids),))
    for rid, f in zip(ids, factors):
        db.execute(
            f"UPDATE runs SET {', '.join(f'{m} = {m} * ?' for m in METRICS)} WHERE run_id = ?",
            [float(f)] * len(METRICS) + [rid],
        )
    db.commit()
    db.close()


def _compare(a, b, tmp_path, *args):
    return runner.invoke(app, ["compare", str(a), str(b), "--out", str(tmp_path / "out"), *args])


def test_float_noise_passes_and_a_broken_engine_fails(tmp_path):
    """The CI gate (.ci/run) compares a fresh smoke sweep with the committed one at margin 1.5 with
    --fail-on different. Noise above what engines show (measured: the reference, torch-kernel and
    native engines agree to ~3e-5 on the median run of this study) must pass; an engine 3x off on
    one activation must fail."""
    noisy = _copy_store(tmp_path, "noisy")
    _scale(noisy, np.exp(np.random.default_rng(0).normal(0, 0.05, 16)))  # ~5% per run
    result = _compare(SMOKE, noisy, tmp_path, "--margin", "1.5", "--fail-on", "different")
    assert result.exit_code == 0, result.output
    assert ", 0 different" in result.output
    cells = pd.read_csv(tmp_path / "out" / "compare.csv")
    # Run by run the noise is within the margin, and so is each cell's median: never different.
    assert set(cells.paired) == {"equivalent"} and "different" not in set(cells.unpaired)

    broken = _copy_store(tmp_path, "broken")
    _scale(broken, 3.0, "json_extract(config, '$.activation') = 'tanh'")
    result = _compare(SMOKE, broken, tmp_path, "--margin", "1.5", "--fail-on", "different")
    assert result.exit_code == 1, result.output
    assert ", 8 different" in result.output
    cells = pd.read_csv(tmp_path / "out" / "compare.csv")
    assert set(cells[cells.verdict == "different"].activation) == {"tanh"}
    assert set(cells[cells.activation == "tanh"].paired) == {"different"}
    np.testing.assert_allclose(cells[cells.activation == "tanh"].median_ratio_b_a, 3.0)
    # Without --fail-on the same comparison reports and exits 0.
    assert _compare(SMOKE, broken, tmp_path).exit_code == 0


def test_unmatched_and_changed_runs_are_listed_never_dropped(tmp_path):
    other = _copy_store(tmp_path, "other")
    db = sqlite3.connect(other / "runs.sqlite")
    gone = db.execute("SELECT run_id FROM runs ORDER BY run_id LIMIT 1").fetchone()[0]
    db.execute("DELETE FROM runs WHERE run_id = ?", (gone,))
    changed = db.execute("SELECT run_id FROM runs ORDER BY run_id LIMIT 1").fetchone()[0]
    db.execute("UPDATE runs SET status = 'diverged' WHERE run_id = ?", (changed,))
    db.commit()
    db.close()
    with Store(other / "runs.sqlite") as store:  # a run of a config A never trained
        config = RunConfig("tanh", seed=99, width=16, epochs=100, n_points=200)
        store.write(RunResult(config=config, status="ok", metrics=dict.fromkeys(METRICS, 1.0)))
    result = _compare(SMOKE, other, tmp_path, "--fail-on", "different")
    assert result.exit_code == 1, result.output  # a run that stopped being ok is a regression
    assert "only in A: 1; only in B: 1; status changed: 1" in result.output
    text = "\n".join(unwrap_markdown((tmp_path / "out" / "compare.md").read_text()))
    assert gone in text and changed in text and config.run_id in text


def test_a_store_compared_with_itself_is_equivalent_everywhere(tmp_path):
    # 8 runs a cell: no tail share can be shown within ±0.1 (the default tail margin), so a store
    # is only inconclusive against itself there; at ±0.3, which 8 runs can show, equivalent.
    result = _compare(SMOKE, SMOKE, tmp_path, "--fail-on", "not-equivalent", "--tail-margin", "0.3")
    assert result.exit_code == 0, result.output
    assert "16 equivalent" in result.output and "0 changed" in result.output
    result = _compare(SMOKE, SMOKE, tmp_path, "--fail-on", "not-equivalent")
    assert result.exit_code == 1, result.output
    assert "0 equivalent, 16 inconclusive, 0 different" in result.output


def test_tails_a_fisher_test_does_not_tell_apart_are_not_equivalent():
    """Equivalence of the tails needs their difference bounded by the tail margin: 5 of 40 runs in
    the tail against 9 of 40 is not rejected by Fisher's test (p ~ 0.38), and it is inconclusive,
    not equivalent; 0 of 200 against 0 of 200 is equivalent at the default margin."""
    rng = np.random.default_rng(0)
    base = np.exp(rng.normal(0, 0.1, 40))
    a, b = base.copy(), base * np.exp(rng.normal(0, 0.01, 40))
    a[:5] *= 1e3
    b[10:19] *= 1e3
    u = distributions(a, b, 2.0, seed=0)
    assert u.tail_a == 5 and u.tail_b == 9 and u.p_tail > 0.05
    assert u.tail_diff_ci[0] < 0 < 0.1 < u.tail_diff_ci[1]
    assert u.verdict == "inconclusive"
    clean = np.exp(rng.normal(0, 0.1, 200))
    u = distributions(clean, clean * 1.01, 2.0, seed=0)
    assert u.tail_a == u.tail_b == 0 and u.verdict == "equivalent"
    assert distributions(clean, clean * 1.01, 2.0, seed=0, tail_margin=0.01).verdict == "inconclusive"


def test_share_difference_interval_matches_newcombe():
    """Newcombe (Stat. Med. 1998, table II, method 10) at 95%: 56/70 - 48/80 and 9/10 - 3/10."""
    lo, hi = stats.share_difference_ci(48, 80, 56, 70, level=0.95)
    assert (round(lo, 4), round(hi, 4)) == (0.0524, 0.3339)
    lo, hi = stats.share_difference_ci(3, 10, 9, 10, level=0.95)
    assert (round(lo, 4), round(hi, 4)) == (0.1705, 0.809)


def test_compare_on_a_range_of_seeds(tmp_path):
    result = _compare(SMOKE, SMOKE, tmp_path, "--seeds", "2:6")
    assert result.exit_code == 0, result.output
    assert "matched runs: 8;" in result.output
    assert "only seeds 2-5" in (tmp_path / "out" / "compare.md").read_text()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--margin", "1"], "--margin: must be a finite factor above 1"),
        (["--tail-margin", "1.5"], "--tail-margin: must be a share between 0 and 1"),
        (["--seeds", "9:3"], "--seeds: must be START:STOP"),
        (["--fail-on", "sometimes"], "--fail-on"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path, capsys, argv, message):
    from runge_bench.cli import run

    code = run(["compare", str(SMOKE), str(SMOKE), "--out", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("engine_args", [["--engine", "reference"], ["--kernels", "torch"]])
def test_other_engines_reproduce_the_committed_smoke_store(tmp_path, engine_args):
    """What CI relies on: engines that differ only in summation order (as machines do) land on the
    committed reference store's errors up to float noise, far inside the gate's margin of 1.5."""
    result = runner.invoke(
        app,
        ["sweep", str(ROOT / "studies" / "smoke.toml"), "--results-dir", str(tmp_path), "--jobs", "1", *engine_args],
    )
    assert result.exit_code == 0, result.output
    # Tails at ±0.3: what 8 runs a cell can show (at the default ±0.1 they are inconclusive).
    result = _compare(
        SMOKE, tmp_path / "smoke", tmp_path, "--margin", "1.5", "--tail-margin", "0.3", "--fail-on", "not-equivalent"
    )
    assert result.exit_code == 0, result.output
    assert (pd.read_csv(tmp_path / "out" / "compare.csv").n_matched == 8).all()
    with Store(SMOKE / "runs.sqlite") as a, Store(tmp_path / "smoke" / "runs.sqlite") as b:
        runs = a.runs().merge(b.runs(), on="run_id", suffixes=("_a", "_b"))
    assert len(runs) == 16
    log_ratios = np.log(
        runs[[f"{m}_b" for m in METRICS]].to_numpy(float) / runs[[f"{m}_a" for m in METRICS]].to_numpy(float)
    )
    # Measured on this project's machines: the median run within 3e-5, Tanh's runs within 2e-4,
    # two ReLU runs 4% and 9% apart (a kink that lands elsewhere). Asserted with room for other
    # CPUs, and still far inside the gate's margin (log 1.5 = 0.41).
    assert np.median(np.abs(log_ratios)) < 1e-3 and np.abs(log_ratios).max() < 0.25


def test_the_smoke_networks_learn_enough_for_the_gate_to_see_a_broken_engine():
    """An engine that stopped learning must not land within the gate's 1.5x of the reference."""
    with Store(SMOKE / "runs.sqlite") as store:
        runs = store.runs()
        arrays = store.arrays(list(runs.run_id))
    for act, floor in (("tanh", 50.0), ("relu", 5.0)):
        ids = runs[runs.activation == act].run_id
        falls = [arrays[i][0]["val_df"][0] / arrays[i][0]["val_df"][-1] for i in ids]
        assert np.median(falls) > floor, act  # validation f' MSE, first epoch over last


def test_a_shifted_tail_is_listed_first_and_never_called_equivalent(tmp_path):
    """Half the runs of one cell 100-1000x worse, all one way (as the ablation's SiLU, width 256,
    lambda 0.1 under the native kernels): the pairs are chaotic, the paired median hardly moves,
    but the cell's distribution did: it heads the largest shifts and is not equivalent."""
    shifted = _copy_store(tmp_path, "shifted")
    db = sqlite3.connect(shifted / "runs.sqlite")
    tanh = [
        r[0]
        for r in db.execute(
            "SELECT run_id FROM runs WHERE json_extract(config, '$.activation') = 'tanh' ORDER BY run_id"
        )
    ]
    db.close()
    for rid, factor in zip(tanh[:4], (100.0, 300.0, 600.0, 1000.0)):
        _scale(shifted, factor, f"run_id = '{rid}'")
    result = _compare(SMOKE, shifted, tmp_path)
    assert result.exit_code == 0, result.output
    cells = pd.read_csv(tmp_path / "out" / "compare.csv")
    tanh_cells = cells[cells.activation == "tanh"]
    assert (
        "equivalent" not in set(tanh_cells.verdict)
        and (tanh_cells.tail_b == 4).all()
        and (tanh_cells.tail_a == 0).all()
    )
    # 8 runs per side, none of A's in the tail: Fisher rejects 0 of 8 against 4 or more of 8
    # (p = 0.077 for 4, 0.026 for 5): found 80% of the time once B's share is 0.7 (P(Bin(8, 0.7) >= 5)
    # = 0.806; at 0.695, 0.797).
    assert (tanh_cells.tail_detectable_b == 0.7).all()
    text = "\n".join(unwrap_markdown((tmp_path / "out" / "compare.md").read_text()))
    top = text.split("## The 10 largest shifts of a cell's median", 1)[1].split("## Verdicts", 1)[0]
    rows = [line for line in top.splitlines() if line.startswith("| tanh")]
    assert len(rows) == 8  # all eight of tanh's metrics head the list, above every relu cell
    assert text.index("largest shifts") < text.index("## Verdicts")
    tails = text.split("## Tails of f MSE (dense grid), cell by cell", 1)[1].split("## Verdicts", 1)[0]
    line = next(x for x in tails.splitlines() if x.startswith("- activation=tanh"))
    assert "0 of 8 runs in A (0.00) and 4 of 8 in B (0.50)" in line and "a share of 0.70 or more in B" in line


def test_the_same_plan_in_another_dtype_is_matched_with_ignore(tmp_path):
    """float64 runs have other ids than float32 ones; --ignore dtype matches them run by run."""
    result = runner.invoke(
        app,
        ["sweep", str(ROOT / "studies" / "smoke.toml"), "--results-dir", str(tmp_path), "--set", "dtype=float64",
         "--name", "smoke64"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    plain = _compare(SMOKE, tmp_path / "smoke64", tmp_path)
    assert plain.exit_code == 2 and "no run is stored in both with status ok" in plain.output
    matched = _compare(SMOKE, tmp_path / "smoke64", tmp_path, "--ignore", "dtype")
    assert matched.exit_code == 0, matched.output
    assert "matched runs: 16; only in A: 0; only in B: 0" in matched.output
    text = "\n".join(unwrap_markdown((tmp_path / "out" / "compare.md").read_text()))
    assert "runs matched by config but dtype (the stores differ in it)" in text
    cells = pd.read_csv(tmp_path / "out" / "compare.csv")
    assert set(cells.n_matched) == {8} and "dtype" not in cells.columns
    bad = _compare(SMOKE, tmp_path / "smoke64", tmp_path, "--ignore", "seed")
    assert bad.exit_code == 2 and "--ignore" in bad.output and "activation and seed cannot" in bad.output
