"""Declared hypotheses and the primary metric: checked at plan time, recorded with the time they were
declared, tested in one family, confirmatory only when declared before their runs, and re-tested on
fresh seeds by `runge-bench confirm`."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from runge_bench.analysis.hypotheses import confirmation_table, hypotheses_table
from runge_bench.cli import app
from runge_bench.problem.errors import UserError
from runge_bench.problem.hypothesis import Hypothesis
from runge_bench.runs.store import Store
from runge_bench.runs.study import load_study

from .helpers import jitter, report_text, synthetic_runs

runner = CliRunner()

STUDY = """
name = "h"
{primary}
[fixed]
width = 8
epochs = 20
n_points = 50
[grid]
activation = ["relu", "tanh"]
deriv_weight = [0.0, 1.0]
seed = {{ start = 0, stop = 6 }}
{hypotheses}
"""
TANH_BELOW = '[[hypothesis]]\nbetter = "tanh"\nworse = "relu"\nwhere = { deriv_weight = 1.0 }\n'


def _file(write_study, hypotheses: str = "", primary: str = "", name: str = "study.toml"):
    return write_study(STUDY.format(hypotheses=hypotheses, primary=primary), name)


@pytest.mark.parametrize(
    "table,field,says",
    [
        ('better = "sin"\nworse = "relu"', "hypothesis[0].better", "an activation the study trains"),
        ('better = "tanh"\nworse = "tanh"', "hypothesis[0].worse", "the same activation"),
        ('better = "tanh"\nworse = "relu"\nmetric = "loss"', "hypothesis[0].metric", "must be one of"),
        ('better = "tanh"\nworse = "relu"\nwhere = { seed = 1 }', "hypothesis[0].where.seed", "fixes cells"),
        ('better = "tanh"\nworse = "relu"\nwhere = { width = 64 }', "hypothesis[0].where", "no cell"),
        ('better = "tanh"\nworse = "relu"\nwhere = { deriv_weight = "x" }', "where.deriv_weight", "not a value"),
        ('better = "tanh"\nworse = "relu"\nbeter = 1', "hypothesis[0].beter", "unknown key"),
        (
            'better = "tanh"\nworse = "relu"\nbetter_at = { deriv_weight = 1.0 }',
            "hypothesis[0].worse_at",
            "set the same fields",
        ),
        (
            'better = "tanh"\nworse = "relu"\nbetter_at = { deriv_weight = 1.0 }\nworse_at = { deriv_weight = 5.0 }',
            "hypothesis[0].worse_at",
            "no run of the plan has relu there",
        ),
    ],
)
def test_a_bad_hypothesis_is_one_line_naming_its_field(write_study, table, field, says):
    with pytest.raises(UserError) as e:
        load_study(_file(write_study, "[[hypothesis]]\n" + table))
    assert field in str(e.value) and says in str(e.value)


def test_a_bad_primary_metric_is_refused(write_study):
    with pytest.raises(UserError, match="primary: must be one of"):
        load_study(_file(write_study, primary='primary = "val_loss"'))
    assert load_study(_file(write_study)).primary == "grid_df_mse"  # the default


def _sweep(study, results):
    result = runner.invoke(app, ["sweep", str(study), "--results-dir", str(results), "--jobs", "1"])
    assert result.exit_code == 0, result.output


def test_declared_before_training_is_confirmatory_and_after_is_exploratory(write_study, tmp_path):
    results = tmp_path / "results"
    _sweep(_file(write_study, TANH_BELOW), results)  # declared, then trained
    later = '[[hypothesis]]\nbetter = "relu"\nworse = "tanh"\nmetric = "grid_f_mse"\n'
    _sweep(_file(write_study, TANH_BELOW + later), results)  # nothing left to train: declared after its runs
    with Store(results / "h" / "runs.sqlite") as store:
        primary, recorded = store.hypotheses()
    assert primary == "grid_df_mse" and len(recorded) == 2 and all(h["declared_at"] for h in recorded)
    assert runner.invoke(app, ["report", "h", "--results-dir", str(results)]).exit_code == 0
    table = pd.read_csv(results / "h" / "tables" / "hypotheses.csv")
    assert table.status.tolist() == ["confirmatory", "exploratory"]
    text = report_text(results / "h" / "report.md")
    assert "- Confirmatory: tanh below relu on f′ MSE (dense grid) (deriv_weight=1.0):" in text
    assert "- Exploratory: relu below tanh on f MSE (dense grid) (every cell):" in text
    assert "after its first run was trained" in text
    assert "## Findings\n\nExploratory: chosen and tested after the data" in text
    assert "- primary metric: f′ MSE (dense grid)" in text


def test_the_primary_metric_leads_at_a_glance(write_study, tmp_path):
    from runge_bench import api

    _sweep(_file(write_study, primary='primary = "grid_f_mse"'), tmp_path)
    r = api.results("h", tmp_path)
    assert r.primary == "grid_f_mse"
    assert "on f MSE (dense grid) (the primary metric) and f′ MSE (dense grid)" in r.glance_rule


def _frame(factor) -> pd.DataFrame:
    """Synthetic runs: tanh's error = factor(seed) x relu's, every metric, every cell."""
    return synthetic_runs(lambda act, w, lam, seed: (factor(seed) if act == "tanh" else 1.0) * jitter(seed))


def test_a_finding_that_does_not_replicate_on_fresh_seeds_is_said_so():
    h = Hypothesis("tanh", "relu", "grid_df_mse", (("width", 16),))
    declared = ((h, None),)  # never declared before the runs: exploratory
    original = hypotheses_table(_frame(lambda s: 0.1 * (1 + 0.05 * s)), declared, {})
    assert original.status.tolist() == ["exploratory"] and original.verdict.tolist() == ["supported"]
    same = hypotheses_table(_frame(lambda s: 0.1 * (1 + 0.03 * s)), declared, {})
    gone = hypotheses_table(_frame(lambda s: 1.0 + 0.02 * (s - 3.5)), declared, {})  # no effect on fresh seeds
    reversed_ = hypotheses_table(_frame(lambda s: 3.0 * (1 + 0.02 * s)), declared, {})
    assert confirmation_table(original, same).confirmation.tolist() == ["replicated"]
    assert confirmation_table(original, gone).confirmation.tolist() == ["not replicated"]
    assert confirmation_table(original, reversed_).confirmation.tolist() == ["not replicated"]
    assert np.isclose(original.ratio.iloc[0], 0.1 * 1.175, rtol=0.05)


def test_confirm_trains_fresh_seeds_in_a_store_of_their_own(write_study, tmp_path):
    results = tmp_path / "results"
    study = _file(write_study, TANH_BELOW)
    _sweep(study, results)
    result = runner.invoke(app, ["confirm", str(study), "--results-dir", str(results), "--jobs", "1", "--seeds", "6"])
    assert result.exit_code == 0, result.output
    with Store(results / "h-confirm" / "runs.sqlite") as store:
        fresh = store.runs()
        _, recorded = store.hypotheses()
    assert sorted(fresh.seed.unique()) == list(range(6, 12))  # after every stored seed
    assert set(fresh.deriv_weight) == {1.0} and len(fresh) == 12  # only the cells the hypothesis names
    assert len(recorded) == 1
    text = report_text(results / "h-confirm" / "confirm.md")
    assert "tanh below relu on f′ MSE (dense grid) (deriv_weight=1.0):" in text
    assert any(w in result.output for w in ("replicated", "inconclusive"))
    # run again: the same fresh seeds, nothing to train
    again = runner.invoke(app, ["confirm", str(study), "--results-dir", str(results), "--jobs", "1", "--seeds", "6"])
    assert again.exit_code == 0 and "training" not in again.output


def test_confirm_needs_declared_hypotheses_and_a_store(write_study, tmp_path):
    study = _file(write_study)
    result = runner.invoke(app, ["confirm", str(study), "--results-dir", str(tmp_path)])
    assert result.exit_code == 2 and "declares no [[hypothesis]]" in result.output
    study = _file(write_study, TANH_BELOW)
    result = runner.invoke(app, ["confirm", str(study), "--results-dir", str(tmp_path)])
    assert result.exit_code == 2 and "sweep the study first" in result.output


def test_each_side_at_its_own_setting_pairs_by_seed_across_them():
    """A tuned comparison: tanh at deriv_weight 1 against relu at deriv_weight 0 (standing for each
    one's own best rate), paired by seed across the two settings, and averaged over widths."""

    def error(act, width, lam, seed):
        if act == "tanh":
            return (0.01 if lam == 1.0 else 5.0) * jitter(seed)  # tanh is good at its own setting only
        return (1.0 if lam == 0.0 else 100.0) * jitter(seed)

    df = synthetic_runs(error)
    own = Hypothesis("tanh", "relu", "grid_df_mse", (), (("deriv_weight", 1.0),), (("deriv_weight", 0.0),))
    shared = Hypothesis("tanh", "relu", "grid_df_mse", (("deriv_weight", 0.0),))
    table = hypotheses_table(df, ((own, None), (shared, None)), {})
    assert own.text() == "tanh (deriv_weight=1.0) below relu (deriv_weight=0.0) on f′ MSE (dense grid) (every cell)"
    assert table.cells.tolist() == [2, 2] and table.seeds.tolist() == [8, 8]  # two widths each
    assert table.ratio.iloc[0] == pytest.approx(0.01) and table.verdict.iloc[0] == "supported"
    assert table.ratio.iloc[1] == pytest.approx(5.0) and table.verdict.iloc[1] == "contradicted"
    assert Hypothesis.from_dict(own.to_dict()) == own and "better_at" not in shared.to_dict()
