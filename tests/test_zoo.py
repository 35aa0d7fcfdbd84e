"""Many activations against one (analysis.zoo): the many-to-one family, the ranks and the exact
smoothness test, on hand-made runs whose answers are known."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from runge_bench.analysis import stats, tables, zoo
from runge_bench.problem.activations import ACTIVATIONS, activation_order
from runge_bench.problem.config import RunConfig
from runge_bench.problem.vocabulary import METRICS
from runge_bench.runs.loading import prepare

from .helpers import jitter

ALL = list(ACTIVATIONS)  # nine: relu, leaky_relu and elu are the rough ones


def runs(error, seeds: int = 10) -> pd.DataFrame:
    rows = []
    for act in ALL:
        for width in (32, 64):
            for lam in (0.0, 1.0):
                for seed in range(seeds):
                    c = RunConfig(act, seed=seed, width=width, deriv_weight=lam)
                    e = error(act, width, lam, seed)
                    rows.append({"run_id": c.run_id, "status": "ok", **c.to_dict(), **dict.fromkeys(METRICS, e)})
    return prepare(pd.DataFrame(rows))


def by_smoothness(act, width, lam, seed):
    """Every smooth activation below every rough one, tanh lowest, gelu below tanh at width 64 only."""
    rank = ALL.index(act)
    e = 10.0 ** (rank if ACTIVATIONS[act].smoothness >= zoo.SMOOTH else rank + 10)
    if act == "tanh":
        e = 0.5
    if act == "gelu" and width == 64:
        e = 0.05
    return e * np.random.default_rng(rank * 1000 + seed).uniform(1.0, 1.1)  # no two log ratios tie


def test_the_many_to_one_family_pairs_each_challenger_with_the_incumbent_only():
    df = runs(by_smoothness)
    versus = tables.comparisons_table(df, activation_order(df.activation), against="tanh")
    assert set(versus.b) == {"tanh"} and set(versus.a) == set(ALL) - {"tanh"}
    one = versus[(versus.metric == "grid_df_mse") & (versus.width == 32) & (versus.deriv_weight == 0.0)]
    # Holm over 8 challengers: each p (the smallest two-sided p with 10 seeds, 2/1024) times 8 at most
    assert len(one) == 8 and one.p_holm.max() == pytest.approx(8 * stats.min_wilcoxon_p(10))
    assert (one.p_holm < stats.ALPHA).all()  # reachable; the 36 all-pairs family is not
    allpairs = tables.comparisons_table(df)
    assert (allpairs.p_holm >= stats.ALPHA).all()


def test_findings_say_who_beats_the_incumbent_where_and_the_smoothness_order():
    df = runs(by_smoothness)
    order = activation_order(df.activation)
    versus = zoo.versus_table(df, order, ["grid_df_mse"])
    summary = zoo.versus_summary(versus, ["grid_df_mse"], df)
    gelu = summary[summary.a == "gelu"].iloc[0]
    assert (gelu.a_better, gelu.b_better, gelu.cells) == (2, 2, 4)  # below tanh at width 64, above at 32
    ranks = zoo.ranks_table(df, ["grid_df_mse"], order)
    tanh = ranks[ranks.activation == "tanh"].iloc[0]
    assert (tanh.best_rank, tanh.worst_rank, tanh.of) == (1, 2, 9)
    smooth = zoo.smoothness_table(df, ["grid_df_mse"])
    assert list(smooth.deriv_weight) == [0.0, 1.0, "all"]
    # the three rough ones are the three worst in every block: the most extreme of 84 labelings
    assert smooth.p_exact.tolist() == pytest.approx([1 / 84] * 3)
    assert smooth.cells_separated.tolist() == [2, 2, 4] and (smooth.labelings == math.comb(9, 3)).all()
    text = zoo.findings(summary, ranks, smooth, tables.cell_axes(df), versus=versus)
    claims = [c for c, _ in text]
    assert (
        "f′ MSE (dense grid), cell by cell: below tanh somewhere: gelu (2 cells: width 64, deriv_weight 0; width 64, deriv_weight 1); tanh below:"
        in claims[1]
    )
    assert "f′ MSE (dense grid): sine (SIREN's initialisation) ranks 6-6 of 9 (median 6); tanh 1-2" in claims[2]
    assert "all cells: the smooth activations rank lower (better) than the rough ones" in claims[-1]
    assert "p = 0.0119, significant" in text[-1][1][-2]
    assert text[-1][1][-1].startswith("Descriptive of these activations")  # chosen, not sampled


def test_a_reversed_order_gives_the_largest_p_and_says_so():
    def reversed_(act, width, lam, seed):
        rank = ALL.index(act)
        return 10.0 ** (rank + (10 if ACTIVATIONS[act].smoothness < zoo.SMOOTH else 0)) ** -1 * jitter(seed)

    smooth = zoo.smoothness_table(runs(reversed_), ["grid_f_mse"])
    assert smooth.p_exact.tolist() == [1.0, 1.0, 1.0]
    text = zoo.findings(
        pd.DataFrame(columns=["a", "metric"]), pd.DataFrame(columns=["metric"]), smooth, [], "grid_f_mse"
    )
    assert "rank no lower than the rough ones" in text[0][0] and "not significant: inconclusive" in text[0][1][-2]


def test_the_exact_test_matches_enumeration_by_hand():
    """Errors 10^rank with the ranks below: p is the share of the 84 ways to pick three ranks
    whose sum is at least the rough ones' (relu, elu, leaky_relu), counted directly."""
    rank = dict(zip(ALL, [1, 2, 3, 4, 6, 8, 5, 7, 9]))
    df = runs(lambda act, w, lam, s: 10.0 ** rank[act] * jitter(s), seeds=3)
    row = zoo.smoothness_table(df, ["grid_f_mse"], by=None).iloc[0]
    rough = [rank[a] for a in ALL if ACTIVATIONS[a].smoothness < zoo.SMOOTH]
    assert sorted(rough) == [1, 7, 8]
    expected = sum(1 for c in itertools.combinations(range(1, 10), 3) if sum(c) >= sum(rough)) / 84
    assert row.mean_rank_rough == pytest.approx(np.mean(rough)) and row.p_exact == pytest.approx(expected)
    assert row.mean_rank_smooth == pytest.approx((45 - sum(rough)) / 6)
