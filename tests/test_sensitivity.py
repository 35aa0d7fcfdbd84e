"""One factor at a time: the steps, the order changes and the derivative loss's effect, on
hand-made runs whose answers are known."""

import re

import pandas as pd

from runge_bench.analysis import sensitivity, tables
from runge_bench.problem.config import RunConfig
from runge_bench.problem.vocabulary import METRICS
from runge_bench.runs.loading import prepare

from .helpers import jitter

# The reference (lr 1e-3, 1000 points, lambda 1), lr moved alone, and 1000 / 50 points at lambda 0.
CASES = [
    dict(deriv_weight=1.0),
    dict(lr=1e-2, deriv_weight=1.0),
    dict(lr=1e-4, deriv_weight=1.0),
    dict(deriv_weight=0.0),
    dict(n_points=50, deriv_weight=0.0),
    dict(n_points=50, deriv_weight=1.0),
]


def error(act: str, case: dict, seed: int) -> float:
    """tanh 100x below relu, except at lr 1e-2 where relu is 10x below tanh (a reversal) and at lr
    1e-4 where they are equal but for the seed (inconclusive); lambda 1 halves both errors at 50
    points and doubles them at 1000."""
    e = 1e-2 if act == "relu" else 1e-4
    if case.get("lr") == 1e-2:
        e = 1e-4 if act == "relu" else 1e-3
    if case.get("lr") == 1e-4:
        e = 1e-3 * (1.0 + 0.02 * ((seed * 7 + (act == "tanh") * 3) % 5 - 2))
    if case["deriv_weight"] == 1.0:
        e *= 0.5 if case.get("n_points") == 50 else 2.0
    return e * jitter(seed)


def runs() -> pd.DataFrame:
    rows = []
    for case in CASES:
        for act in ("relu", "tanh"):
            for seed in range(8):
                c = RunConfig(act, seed=seed, **case)
                rows.append(
                    {
                        "run_id": c.run_id,
                        "status": "ok",
                        **c.to_dict(),
                        **dict.fromkeys(METRICS, error(act, case, seed)),
                    }
                )
    return prepare(pd.DataFrame(rows))


def test_only_a_one_factor_design_gets_the_section():
    from .helpers import synthetic_runs

    assert sensitivity.one_at_a_time(runs())  # 6 of the 3 x 3 x 2 combinations
    assert not sensitivity.one_at_a_time(synthetic_runs(lambda act, width, lam, seed: 1.0))  # a full grid


def test_steps_pair_each_cell_with_the_one_it_moves_away_from():
    df = runs()
    ref = tables.reference_cell(df)
    assert ref == {"lr": 1e-3, "n_points": 1000, "deriv_weight": 1.0}
    steps = sensitivity.factor_steps(df, ref)
    got = {(s.factor, s.level, s.context, tuple(sorted(s.parent.items()))) for s in steps.itertuples()}
    assert got == {
        ("lr", 1e-2, "", (("deriv_weight", 1.0), ("lr", 1e-3), ("n_points", 1000))),
        ("lr", 1e-4, "", (("deriv_weight", 1.0), ("lr", 1e-3), ("n_points", 1000))),
        ("deriv_weight", 0.0, "", (("deriv_weight", 1.0), ("lr", 1e-3), ("n_points", 1000))),
        # 50 points at lambda 0 moves away from 1000 points at lambda 0, its context kept
        ("n_points", 50, "deriv_weight=0.0", (("deriv_weight", 0.0), ("lr", 1e-3), ("n_points", 1000))),
        ("n_points", 50, "", (("deriv_weight", 1.0), ("lr", 1e-3), ("n_points", 1000))),
    }


def test_order_changes_are_classified_and_stated():
    df = runs()
    ref = tables.reference_cell(df)
    steps = sensitivity.factor_steps(df, ref)
    order = sensitivity.order_table(tables.comparisons_table(df), steps, ["grid_f_mse"])
    by = {(r.factor, r.level): r for r in order.itertuples()}
    assert by["lr", 1e-2].change == "reversed" and by["lr", 1e-2].verdict == "relu lower"
    assert by["lr", 1e-2].verdict_from == "tanh lower"
    assert by["lr", 1e-4].change == "lost" and by["lr", 1e-4].verdict == "inconclusive"
    assert by["deriv_weight", 0.0].change == "kept"
    assert abs(by["lr", 1e-2].ratio - 0.1) < 1e-9  # relu / tanh = 1e-4 / 1e-3, every seed alike
    said = sensitivity.findings(order, pd.DataFrame(), ("relu", "tanh"))
    lines = [" ".join([c, *d]) for c, d in said]
    lr = next(s for s in lines if s.startswith("lr at"))
    assert "of 2 verdicts (pair x metric x level), kept 0, reversed 1, lost 1, gained 0, inconclusive in both 0." in lr
    assert any(d.startswith("Reversed: relu vs tanh, f MSE (dense grid), lr=0.01") for _, ds in said for d in ds)
    lead = next(s for s in lines if s.startswith("tanh's lead over relu"))
    assert "below 10x in 2 of 5 cells off the reference" in lead and "not significant or reversed in 2" in lead
    surely, maybe = map(int, re.search(r"by their 95% CIs, (\d+) to (\d+)", lead).groups())
    assert surely <= 2 <= maybe  # the count the point estimates give lies in the range the intervals allow
    assert "The 5 cells are" in lead and "changes of the protocol" in lead


def test_the_derivative_loss_is_measured_where_both_lambdas_exist():
    df = runs()
    lam = sensitivity.lambda_table(df, ["grid_f_mse"], tables.reference_cell(df))
    at = {(r.factor, r.activation): r for r in lam.itertuples()}
    assert set(at) == {("", "relu"), ("", "tanh"), ("n_points", "relu"), ("n_points", "tanh")}
    assert abs(at["n_points", "tanh"].ratio - 0.5) < 1e-9 and at["n_points", "tanh"].helps == "yes"
    assert abs(at["", "relu"].ratio - 2.0) < 1e-9 and at["", "relu"].helps == "no: worse"
    lines = [" ".join([c, *d]) for c, d in sensitivity.findings(pd.DataFrame(), lam, None)]
    line = next(s for s in lines if s.startswith("The derivative loss by n_points, f MSE (dense grid)"))
    assert "tanh 50: 0.5 (0.5-0.5): helps significantly at 50." in line and "relu 50: 0.5 (0.5-0.5)" in line
    assert "helps at every level for relu, tanh; hurts somewhere for none." in line
    # at 1000 points (the reference's own pair, no factor) lambda 1 doubles both errors: not a factor line
    assert not any(s.startswith("The derivative loss by ,") for s in lines)


def test_where_the_derivative_loss_hurts_it_is_said():
    lam = pd.DataFrame(
        [
            dict(factor="noise", level=0.01, activation="relu", metric="grid_f_mse", ratio=1.2, ratio_lo=0.9,
                 ratio_hi=1.6, helps="inconclusive"),
            dict(factor="noise", level=0.1, activation="relu", metric="grid_f_mse", ratio=2.0, ratio_lo=1.5,
                 ratio_hi=3.0, helps="no: worse"),
        ]
    )  # fmt: skip
    ((claim, details),) = sensitivity.findings(pd.DataFrame(), lam, None)
    assert (
        "relu 0.01: 1.2 (0.9-1.6), 0.1: 2 (1.5-3): helps significantly nowhere, hurts significantly at 0.1." in details
    )
    assert claim.endswith("helps at every level for none; hurts somewhere for relu.")
