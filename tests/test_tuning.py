"""Tuned comparisons: disjoint selection and evaluation seeds, the right choice, the expected best."""

import numpy as np
import pandas as pd
import pytest

from runge_bench.analysis import tables, tuning
from runge_bench.problem.config import RunConfig
from runge_bench.problem.errors import UserError
from runge_bench.problem.vocabulary import METRICS
from runge_bench.runs.loading import prepare

from .helpers import jitter

LRS = (1e-4, 1e-3, 1e-2)
BEST = {"relu": 1e-2, "tanh": 1e-4}  # each activation's own best rate


def runs(error=None, seeds: int = 10) -> pd.DataFrame:
    """relu best at lr 1e-2, tanh at 1e-4; at its own best tanh is 10x below relu's best."""

    def default(act, lr, seed):
        base = 1e-3 if act == "relu" else 1e-4
        return base * (1.0 if lr == BEST[act] else 50.0) * jitter(seed)

    error = error or default
    rows = []
    for act in ("relu", "tanh"):
        for lr in LRS:
            for seed in range(seeds):
                c = RunConfig(act, seed=seed, lr=lr)
                rows.append(
                    {"run_id": c.run_id, "status": "ok", **c.to_dict(), **dict.fromkeys(METRICS, error(act, lr, seed))}
                )
    return prepare(pd.DataFrame(rows))


def test_each_activation_gets_its_own_best_setting_chosen_on_the_selection_seeds():
    df = runs()
    assert tuning.split_seeds(df.seed) == ([0, 1, 2, 3, 4], [5, 6, 7, 8, 9])
    settings = tuning.settings_table(df, ["lr"])
    chosen = dict(zip(settings[settings.chosen].activation, settings[settings.chosen].lr))
    assert chosen == BEST
    compared = tables.comparisons_table(tuning.tuned_runs(df, ["lr"], settings), ["relu", "tanh"])
    row = compared[compared.metric == "grid_f_mse"].iloc[0]
    assert row.n_pairs == 5 and row.ratio == pytest.approx(10.0) and row.favours == "b"


def test_no_evaluation_seed_influences_a_selection():
    """Make the evaluation seeds say the opposite (tanh best at 1e-2): the choice stays, because
    only seeds 0-4 select; the comparison sees the evaluation seeds' numbers."""
    df = runs()

    def flipped(act, lr, seed):
        if seed >= 5:  # the evaluation half
            return (1e-6 if lr == 1e-2 else 1.0) * jitter(seed)
        return (1e-3 if act == "relu" else 1e-4) * (1.0 if lr == BEST[act] else 50.0) * jitter(seed)

    other = runs(flipped)
    a, b = tuning.settings_table(df, ["lr"]), tuning.settings_table(other, ["lr"])
    pd.testing.assert_frame_equal(a, b)  # scores and choices identical
    evaluated = tuning.tuned_runs(other, ["lr"], b)
    assert set(evaluated.seed) == {5, 6, 7, 8, 9}
    assert (
        evaluated.grid_f_mse[evaluated.activation == "tanh"] == 1.0 * np.array([jitter(s) for s in range(5, 10)])
    ).all()


def test_a_diverged_setting_scores_infinite():
    df = runs()
    df.loc[(df.activation == "relu") & (df.lr == 1e-2) & (df.seed < 3), "status"] = "diverged"
    settings = tuning.settings_table(df, ["lr"])
    assert settings[(settings.activation == "relu") & (settings.lr == 1e-2)].score.iloc[0] == np.inf
    assert settings[settings.chosen & (settings.activation == "relu")].lr.iloc[0] != 1e-2


def test_expected_best_by_hand():
    # Scores 1, 2, 3: the best of 1 averages 2; of 2 (without replacement), P(min=1) = 2/3, P(min=2) = 1/3.
    assert tuning.expected_best(np.array([3.0, 1.0, 2.0]), 1) == pytest.approx((2.0, np.sqrt(2 / 3)))
    mean, sd = tuning.expected_best(np.array([3.0, 1.0, 2.0]), 2)
    assert mean == pytest.approx(4 / 3) and sd == pytest.approx(np.sqrt(2 / 3 + 4 / 3 - 16 / 9))
    assert tuning.expected_best(np.array([3.0, 1.0, 2.0]), 3) == (1.0, 0.0)
    assert tuning.expected_best(np.array([1.0, np.inf]), 2) == (1.0, 0.0)  # the infinite one can no longer be best
    assert tuning.expected_best(np.array([1.0, np.inf]), 1)[0] == np.inf


def test_tuning_an_axis_the_study_does_not_vary_is_refused():
    df = runs()
    with pytest.raises(UserError, match="'width' is not an axis this study varies"):
        tuning.check_tuned(df, ["width"])


def test_repeated_splits_count_choices_and_findings_and_flag_edges():
    """The synthetic optimum is the same on every seed: every split chooses it, every split finds
    tanh 10x lower, and both choices sit at an end of the searched rates (flagged)."""
    df = runs(seeds=20)
    splits = tuning.splits_table(df, ["lr"], ["relu", "tanh"], n_splits=40)
    chosen = splits.choices.set_index("activation")
    assert splits.n == 40 and (chosen.share == 1.0).all() and chosen.lr.to_dict() == BEST
    assert chosen.edge.to_dict() == {"relu": "highest searched", "tanh": "lowest searched"}
    row = splits.holds[splits.holds.metric == "grid_df_mse"].iloc[0]
    assert (row.a, row.b, row.b_lower, row.a_lower, row.inconclusive) == ("relu", "tanh", 1.0, 0.0, 0.0)
    assert row.ratio == pytest.approx(10.0) and row.ratio_lo < 10.0 < row.ratio_hi
    # 10 seeds: 5 evaluate, and 5 pairs cannot reach p < 0.05: every split inconclusive
    few = tuning.splits_table(runs(), ["lr"], ["relu", "tanh"], n_splits=10).holds
    assert (few.inconclusive == 1.0).all()


def test_the_choice_follows_the_seeds_that_select():
    """Seeds 0-4 prefer relu at 1e-3, seeds 5-9 at 1e-2: a split chooses 1e-3 exactly when at least
    three of its five selection seeds are among 0-4 (the median of five), counted here split by split
    from the same draws."""

    def two_camps(act, lr, seed):
        best = (1e-3 if seed < 5 else 1e-2) if act == "relu" else BEST[act]
        return (1e-3 if act == "relu" else 1e-4) * (1.0 if lr == best else 50.0) * jitter(seed)

    splits = tuning.splits_table(runs(two_camps), ["lr"], ["relu", "tanh"], n_splits=200)
    relu = splits.choices[splits.choices.activation == "relu"].set_index("lr").share
    rng = np.random.default_rng(tuning.SPLIT_SEED)
    expected = np.mean([np.sum(rng.permutation(range(10))[:5] < 5) >= 3 for _ in range(200)])
    assert relu[1e-3] == pytest.approx(expected) and relu.sum() == pytest.approx(1.0)
    assert 0.35 < expected < 0.65  # the hypergeometric probability is 1/2


def test_pooled_interval_adds_the_splits_spread():
    """Chernozhukov et al.'s median rule by hand: estimates 0, 1, 2 (log scale) with standard errors
    1: the median 1, pooled se sqrt(median(1 + 1, 1 + 0, 1 + 1)) = sqrt(2)."""
    z = 1.959964
    tests = pd.DataFrame(
        {
            "split": [0, 1, 2],
            "metric": "grid_df_mse",
            "a": "relu",
            "b": "tanh",
            "ratio": np.exp([0.0, 1.0, 2.0]),
            "lo": np.exp(np.array([0.0, 1.0, 2.0]) - z),
            "hi": np.exp(np.array([0.0, 1.0, 2.0]) + z),
            "favours": ["", "b", "b"],
            "p_holm": [0.5, 0.01, 0.01],
        }
    )
    row = tuning._holds(tests, [], 3).iloc[0]
    assert row.ratio == pytest.approx(np.e)
    assert np.log(row.ratio_hi) - 1 == pytest.approx(z * np.sqrt(2))
    assert (row.b_lower, row.a_lower, row.inconclusive) == pytest.approx((2 / 3, 0.0, 1 / 3))
