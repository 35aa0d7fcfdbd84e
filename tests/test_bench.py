"""The benchmark's arithmetic and table (the timings themselves are measured by `runge-bench bench`
in CI, never asserted in tests: the machines are shared)."""

from runge_bench.runs.bench import FLOOR, Measurement, format_table


def test_ratios_are_throughput_relative_to_the_reference_of_the_same_case():
    ms = [
        Measurement("full", "reference", runs=4, epochs=100, wall_s=2.0),  # 200 model-epochs/s
        Measurement("full", "batched", runs=32, epochs=100, wall_s=4.0),  # 800: 4x
        Measurement("full", FLOOR, runs=32, epochs=100, wall_s=1.0),  # 3200: 16x
        Measurement("b32", "reference", runs=2, epochs=10, wall_s=1.0),  # 20
        Measurement("b32", "batched", runs=64, epochs=10, wall_s=2.0),
    ]  # 320: 16x
    rows = [
        line.split(" | ")
        for line in format_table(ms, jobs=2).splitlines()
        if line.startswith("| full") or line.startswith("| b32")
    ]
    assert [(r[1], r[6]) for r in rows] == [
        ("reference", "1.0x"),
        ("batched", "4.0x"),
        (FLOOR, "16.0x"),
        ("reference", "1.0x"),
        ("batched", "16.0x"),
    ]
    assert [r[5] for r in rows][:2] == ["10.00", "2.50"]  # ms per model-epoch per core, 2 cores
    assert "the most an engine" in format_table(ms, jobs=2)
    assert "the most an engine" not in format_table(ms[3:], jobs=2)


def test_repeated_rounds_take_each_ratio_within_its_round():
    # Round 0: reference 200/s, batched 800/s (4x); round 1: the machine is slower for both,
    # reference 100/s, batched 600/s (6x). Ratios within rounds: 4x and 6x, median 5x; a ratio
    # across rounds (800/100 = 8x) would be wrong.
    ms = [
        Measurement("full", "reference", runs=4, epochs=100, wall_s=2.0, round=0),
        Measurement("full", "batched", runs=32, epochs=100, wall_s=4.0, round=0),
        Measurement("full", "reference", runs=4, epochs=100, wall_s=4.0, round=1),
        Measurement("full", "batched", runs=32, epochs=100, wall_s=32 * 100 / 600, round=1),
    ]
    table = format_table(ms, jobs=1)
    rows = {r[1]: r for r in (line.split(" | ") for line in table.splitlines() if line.startswith("| full"))}
    assert list(rows) == ["reference", "batched"]  # one row per engine, not per round
    assert rows["batched"][6] == "5.0x (4.0-6.0)"
    assert rows["reference"][6] == "1.0x"
    assert rows["reference"][3] == "3.0" and rows["batched"][4] == "700"  # medians over rounds
    assert "2 rounds" in table
    assert "rounds" not in format_table(ms[:2], jobs=1)


def test_fail_below_flags_a_fast_path_that_is_off_and_nothing_else():
    from runge_bench.runs.bench import USUAL_RATIOS, regressions

    case = "full batch (800 points)"
    usual = USUAL_RATIOS[(case, "batched+native")]

    def table(native_ratio: float) -> list[Measurement]:
        return [
            Measurement(case, "reference", runs=1, epochs=100, wall_s=1.0),  # 100 model-epochs/s
            Measurement(case, "batched+native", runs=1, epochs=100, wall_s=1.0 / native_ratio),
            Measurement(case, "batched+compile", runs=1, epochs=100, wall_s=1.0),
        ]  # 1x: not gated

    assert regressions(table(0.8 * usual), 0.3) == []  # a 20% drift passes
    (line,) = regressions(table(1.0), 0.3)  # the batched engine no faster than the reference
    assert line.startswith(f"{case}, batched+native: 1.0x the reference, below 0.3 x its usual")
