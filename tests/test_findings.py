"""Findings are generated from tables and never claim more than they show."""

import numpy as np
import pandas as pd

from runge_bench.analysis import findings, tables
from runge_bench.problem.vocabulary import METRICS

from .helpers import jitter, synthetic_runs


def test_a_tie_is_never_called_a_win():
    row = pd.Series(
        {
            "a": "relu",
            "b": "tanh",
            "metric": "val_f_mse",
            "n_pairs": 2,
            "a_wins": 1,
            "ties": 0,
            "median_ratio": 1.0,
            "ratio": 1.0,
            "ratio_lo": np.nan,
            "ratio_hi": np.nan,
            "share_a_lower": 0.5,
            "share_lo": np.nan,
            "share_hi": np.nan,
            "favours": "",
            "p_wilcoxon": np.nan,
            "p_holm": np.nan,
            "p_bh": np.nan,
            "p_by": np.nan,
            "note": "n=2 pairs: no test",
        }
    )
    text = flat(findings.pair_sentence(row))
    assert "no winner (a tie)" in text and "significantly" not in text and "95% CI" not in text


def test_a_trend_is_checked_at_every_level_of_the_other_axes():
    # The derivative loss (0 -> 1) triples relu's error at width 16 and divides it by 3 at width 64;
    # tanh's error halves at both widths.
    def error(act, width, lam, seed):
        if act == "relu":
            factor = (3.0 if width == 16 else 1 / 3) if lam == 1.0 else 1.0
        else:
            factor = 0.5 if lam == 1.0 else 1.0
        return 1e-3 * factor * jitter(seed) * (1 + 0.1 * np.sin(seed + width + lam))

    df = synthetic_runs(error)
    cell = tables.reference_cell(df)
    assert cell == {"width": 64, "deriv_weight": 1.0}
    effects = tables.axis_effects_table(df, cell, ["grid_f_mse"])
    lines = [flat(f) for f in findings.along_axes(effects, ["grid_f_mse"])]
    relu = next(s for s in lines if s.startswith("relu, deriv_weight 0 → 1"))
    assert "error higher at deriv_weight=1 in 1, lower in 1, neither in 0. higher: width=16 lower: width=64" in relu
    assert "with Benjamini-Hochberg over the report instead, higher in 1, lower in 1." in relu
    tanh = next(s for s in lines if s.startswith("tanh, deriv_weight 0 → 1"))
    assert "error higher at deriv_weight=1 in 0, lower in 2" in tanh
    # The step is tested paired by seed: 8 pairs, all one way, exact p = 2/2^8, Holm over 2 cells.
    row = effects[(effects.activation == "tanh") & (effects.axis == "deriv_weight") & (effects.width == 16)].iloc[0]
    assert row.n_pairs == 8 and row.favours == "to" and row.p_holm == 2 * 2 / 2**8


def test_across_cells_names_where_an_advantage_fails():
    # tanh is 10x lower than relu everywhere but at width 16 with no derivative loss, where relu is.
    def error(act, width, lam, seed):
        tanh_wins = not (width == 16 and lam == 0.0)
        low = (act == "tanh") == tanh_wins
        return (1e-4 if low else 1e-3) * jitter(seed) * (1.5 if act == "relu" else 1.0)

    df = synthetic_runs(error)
    comparisons = tables.comparisons_table(df)
    (finding,) = findings.across_cells(comparisons, ["width", "deriv_weight"], ["grid_f_mse"], df)
    line = flat(finding)
    assert line.startswith("relu vs tanh, f MSE (dense grid), over 4 cells (width x deriv_weight):")
    assert "relu significantly lower in 1, tanh in 3, neither in 0." in finding[0]
    assert "relu lower: width=16, deriv_weight=0.0" in finding[1]
    assert (
        "tanh lower: width=16, deriv_weight=1.0; width=64, deriv_weight=0.0; width=64, deriv_weight=1.0" in finding[1]
    )
    assert "with Benjamini-Hochberg over the report instead, relu in 1, tanh in 3." in line
    # Across the cells with the seeds as units: per seed, the mean log ratio over the 4 cells is
    # (3 log 15 + log 0.15) / 4, a ratio of 4.74 in every seed; 8 seeds all one way: p = 2 / 2^8.
    assert "with the seeds as units: ratio relu/tanh 4.74 (95% CI 4.74-4.74), Wilcoxon over 8 seeds p = 0.00781" in line


def test_tables_do_not_depend_on_the_order_of_their_rows():
    """Which activation is a pair's a, and the rows' order, come from the registry (or the order
    passed), never from the order the runs arrive in."""
    import pandas as pd

    def error(act, width, lam, seed):
        return {"relu": 1e-3, "tanh": 1e-4}[act] * jitter(seed) * (2.0 if width == 16 else 1.0)

    df = synthetic_runs(error)
    silu = df[df.activation == "tanh"].assign(activation="silu")
    silu[list(METRICS)] *= 3.0
    df = pd.concat([df, silu], ignore_index=True)
    shuffled = df.sample(frac=1.0, random_state=1).sort_values("activation", ascending=False, kind="stable")
    assert list(dict.fromkeys(shuffled.activation)) == ["tanh", "silu", "relu"]  # not the registry's order
    for table in (tables.comparisons_table, tables.ranking_table):
        pd.testing.assert_frame_equal(table(shuffled), table(df))
    comparisons = tables.comparisons_table(shuffled)
    assert set(zip(comparisons.a, comparisons.b)) == {("relu", "tanh"), ("relu", "silu"), ("tanh", "silu")}
    mine = tables.comparisons_table(df, order=["silu", "tanh", "relu"])  # an order passed is the order used
    assert set(zip(mine.a, mine.b)) == {("silu", "tanh"), ("silu", "relu"), ("tanh", "relu")}


def test_a_ranking_separates_pairs_by_their_own_tests_not_by_the_critical_difference():
    """relu 10x above tanh in every seed and cell; silu beside tanh, above it in some seeds and below
    in others: tanh and silu are not separated, whatever their mean ranks and the CD say."""
    import pandas as pd

    def error(act, width, lam, seed):
        return (1e-3 if act == "relu" else 1e-4) * jitter(seed)

    df = synthetic_runs(error)
    silu = df[df.activation == "tanh"].assign(activation="silu")
    wobble = np.where(silu.seed % 2 == 0, 1.3, 0.8)  # four seeds each way
    for m in METRICS:
        silu[m] = silu[m] * wobble
    df = pd.concat([df, silu], ignore_index=True)
    ranking = tables.ranking_table(df)
    lower = dict(
        zip(ranking[ranking.metric == "grid_f_mse"].activation, ranking[ranking.metric == "grid_f_mse"].lower_than)
    )
    assert set(lower["tanh"].split()) == {"relu"} and set(lower["silu"].split()) == {"relu"} and lower["relu"] == ""
    acts, _, _, pairs = tables.separated_pairs(ranking, "grid_f_mse")
    assert acts[-1] == "relu" and {(a, b) for a, b, sep in pairs if not sep} in ({("tanh", "silu")}, {("silu", "tanh")})
    (finding,) = findings.rankings(ranking, ["grid_f_mse"])
    line = flat(finding)
    assert "Not separated, so in no order (inconclusive): " in line and "< relu" in line


def flat(finding: findings.Finding) -> str:
    """A finding's claim and details as one line, for substring checks."""
    claim, details = finding
    return " ".join([claim, *details])


def test_a_comparison_across_engines_is_marked():
    """relu trained by one engine and tanh by another: every relu-tanh row says so; one engine for
    both, no mark."""
    df = synthetic_runs(lambda act, width, lam, seed: (1e-3 if act == "relu" else 1e-4) * jitter(seed))
    same = tables.comparisons_table(df.assign(engine="batched+native"))
    assert not same.note.str.contains("engines differ").any()
    mixed = df.assign(engine=np.where(df.activation == "relu", "batched+native", "batched"))
    notes = tables.comparisons_table(mixed).note
    assert (notes == "engines differ: relu batched+native, tanh batched").all()
    assert tables.engines_of(mixed) == {"relu": "batched+native", "tanh": "batched"}
