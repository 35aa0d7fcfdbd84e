"""Performance profiles on hand-made runs whose profile is known."""

import numpy as np
import pandas as pd

from runge_bench.analysis import profiles
from runge_bench.problem.config import RunConfig
from runge_bench.problem.vocabulary import METRICS
from runge_bench.runs.loading import prepare


def runs(errors: dict, status: dict | None = None) -> pd.DataFrame:
    """errors[(activation, width, seed)] -> every metric's value."""
    rows = []
    for (act, width, seed), e in errors.items():
        c = RunConfig(act, seed=seed, width=width)
        s = (status or {}).get((act, width, seed), "ok")
        rows.append(
            {"run_id": c.run_id, "status": s, **c.to_dict(), **dict.fromkeys(METRICS, e if s == "ok" else np.nan)}
        )
    return prepare(pd.DataFrame(rows))


def test_profile_of_four_problems_by_hand():
    # 2 cells x 2 seeds. relu: best on 2 problems, 4x behind on one, diverged on one; tanh: best on 2,
    # 2x behind on the other 2.
    errors = {
        ("relu", 16, 0): 1.0, ("tanh", 16, 0): 2.0,
        ("relu", 16, 1): 1.0, ("tanh", 16, 1): 2.0,
        ("relu", 64, 0): 4.0, ("tanh", 64, 0): 1.0,
        ("relu", 64, 1): 9.0, ("tanh", 64, 1): 3.0,
    }  # fmt: skip
    df = runs(errors, status={("relu", 64, 1): "diverged"})
    ratios = profiles.performance_ratios(df, "grid_f_mse", ["relu", "tanh"])
    assert len(ratios) == 4 and np.isinf(ratios.relu).sum() == 1
    p = profiles.profile(ratios, np.array([1.0, 2.0, 3.9, 4.0, 1e9]))
    share = {(r.activation, r.tau): r.share for r in p.itertuples()}
    assert [share["relu", t] for t in (1.0, 2.0, 3.9, 4.0, 1e9)] == [0.5, 0.5, 0.5, 0.75, 0.75]  # never the 4th
    assert [share["tanh", t] for t in (1.0, 2.0, 3.9, 4.0, 1e9)] == [0.5, 1.0, 1.0, 1.0, 1.0]


def test_a_problem_no_activation_solved_is_left_out_and_a_missing_run_never_counts():
    errors = {
        ("relu", 16, 0): 1.0,
        ("tanh", 16, 0): 1.0,
        ("relu", 16, 1): 2.0,
        ("tanh", 64, 0): 5.0,
        ("relu", 64, 0): 5.0,
    }
    df = runs(errors, status={("relu", 16, 0): "failed", ("tanh", 16, 0): "diverged"})
    ratios = profiles.performance_ratios(df, "grid_f_mse", ["relu", "tanh"])
    assert len(ratios) == 2  # (16, seed 0): nobody ok; (16, seed 1): relu alone; (64, 0): a tie
    assert np.isinf(ratios.loc[(16, 1), "tanh"]) and ratios.loc[(16, 1), "relu"] == 1.0
    assert (ratios.loc[(64, 0)] == 1.0).all()  # a tie: both best


def test_data_profile_by_hand():
    # Run a falls 10x by epoch 3 and 100x by epoch 5; run b falls 10x by epoch 4, then diverges.
    curves = {
        "a": (np.array([1.0, 2, 3, 4, 5]), np.array([1.0, 0.5, 0.1, 0.05, 0.01])),
        "b": (np.array([1.0, 2, 3, 4]), np.array([2.0, 1.0, 0.5, 0.2])),
        "c": (np.array([1.0, 2]), np.array([1.0, np.nan])),
    }
    table = profiles.data_profiles(curves, {"a": "tanh", "b": "tanh", "c": "relu"}, (1, 2), np.array([2, 3, 4, 5]))
    got = {(r.activation, r.k, r.epoch): r.share for r in table.itertuples()}
    assert [got["tanh", 1, e] for e in (2, 3, 4, 5)] == [0.0, 0.5, 1.0, 1.0]
    assert [got["tanh", 2, e] for e in (2, 3, 4, 5)] == [0.0, 0.0, 0.0, 0.5]
    assert [got["relu", 1, e] for e in (2, 3, 4, 5)] == [0.0] * 4  # diverged: never
