"""The performance log kept as data (docs/benchmarks.toml): it reads, docs/benchmarks.md's table is
made from it, `bench --log` appends what it measured, and a broken log is refused in one line
naming the file and the field, without losing what the file held."""

from __future__ import annotations

import datetime

import pytest
from typer.testing import CliRunner

from runge_bench.cli import app
from runge_bench.outputs.benchlog import Entry, append_entry, log_table, read_log, refresh_markdown, with_table
from runge_bench.problem.errors import UserError
from runge_bench.runs import bench

from .helpers import ROOT

LOG, TABLE = ROOT / "docs" / "benchmarks.toml", ROOT / "docs" / "benchmarks.md"


def test_the_committed_log_reads_and_its_table_is_current():
    entries = read_log(LOG)
    assert len(entries) >= 30 and all(isinstance(e.date, datetime.date) for e in entries)
    assert [e.date for e in entries] == sorted(e.date for e in entries)  # oldest first
    assert sum(bool(e.ratios) for e in entries) >= 5
    text = TABLE.read_text()
    assert with_table(text, entries, TABLE) == text, (
        "docs/benchmarks.md's table is not docs/benchmarks.toml's: "
        "python3 -m runge_bench.outputs.benchlog docs/benchmarks.toml docs/benchmarks.md"
    )


def test_an_entry_reads_back_as_appended(tmp_path):
    log = tmp_path / "log.toml"
    first = Entry(datetime.date(2026, 12, 5), "m | 2 cores", 'say "x"', "3.3x", "0.1.0", "bench --quick", {"a: b": 3.3})
    second = Entry(datetime.date(2026, 12, 6), "m", "sweep", "12 s")
    append_entry(log, first)
    append_entry(log, second)
    assert read_log(log) == [first, second]
    table = log_table(read_log(log))
    assert r"m \| 2 cores" in table and table.count("\n") == 3  # a | in a field does not split the row


def test_the_markdown_table_is_rewritten_between_its_markers(tmp_path):
    log, md = tmp_path / "log.toml", tmp_path / "log.md"
    append_entry(log, Entry(datetime.date(2026, 12, 5), "m", "c", "r"))
    md.write_text("# Log\n\nprose\n\n<!-- the log: x -->\n")
    with pytest.raises(UserError, match="needs the log's two markers"):
        refresh_markdown(log, md)
    md.write_text(TABLE.read_text().replace(log_table(read_log(LOG)), "stale"))
    assert refresh_markdown(log, md) and "| 2026-12-05 | m | c | r |" in md.read_text()
    assert not refresh_markdown(log, md)  # current: untouched


@pytest.mark.parametrize(
    "text, message",
    [
        ('[[measurement]]\ndate = 2026-12-05\nmachine = "m"\ncommand = "c"\n', "measurement[0].result: is missing"),
        ('[[measurement]]\ndate = "yesterday"\nmachine = "m"\ncommand = "c"\nresult = "r"\n', "measurement[0].date"),
        (
            '[[measurement]]\ndate = 2026-12-05\nmachine = "m"\ncommand = "c"\nresult = "r"\nbenchmark = "b"\n'
            'ratios = { "x" = -1 }\n',
            "measurement[0].ratios.x: must be a positive number",
        ),
        (
            '[[measurement]]\ndate = 2026-12-05\nmachine = "m"\ncommand = "c"\nresult = "r"\nratios = { "x" = 2 }\n',
            "measurement[0].benchmark: ratios need a benchmark",
        ),
        ('[[measurement]]\ndate = 2026-12-05\nmachine = "m"\ncommand = "c"\nresult = "r"\nspeed = 1\n', ".speed:"),
        ("[[measurement]\n", "is not valid TOML"),
    ],
)
def test_a_broken_log_is_refused_and_not_extended(tmp_path, text, message):
    log = tmp_path / "log.toml"
    log.write_text(text)
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")) as e:
        read_log(log)
    assert str(e.value).startswith(str(log))
    with pytest.raises(UserError):
        append_entry(log, Entry(datetime.date(2026, 12, 5), "m", "c", "r"))
    assert log.read_text() == text


def test_bench_log_appends_what_it_measured(tmp_path, monkeypatch):
    """`bench --log` (the measurements faked: a bench takes minutes) appends one entry with each
    engine's ratio over the reference as a number, and says so."""

    def fake(**kw):
        m = bench.Measurement
        return [
            m("full batch (800 points)", "reference", 4, 50, 2.0),
            m("full batch (800 points)", "batched+native", 32, 50, 4.0),
            m("batch size 32", "reference", 2, 5, 1.0),
            m("batch size 32", "batched", 128, 5, 2.0),
        ]

    monkeypatch.setattr(bench, "run_bench", fake)
    log = tmp_path / "benchmarks.toml"
    out = CliRunner().invoke(app, ["bench", "--quick", "--jobs", "1", "--log", str(log)])
    assert out.exit_code == 0, out.output
    (entry,) = read_log(log)
    assert entry.benchmark == "bench --quick" and entry.date == datetime.date.today()
    assert entry.ratios == {"full batch: native": 4.0, "batch size 32: torch kernels": 32.0}
    assert "full batch: native 4.0x; batch size 32: torch kernels 32.0x" in entry.result and entry.machine.endswith(
        ", 1 core"
    )
    assert f"appended to {log}" in out.output


def test_bench_refine_log_keeps_the_time_ratio_per_width(tmp_path, monkeypatch):
    rows = [{"width": 32, "lm_s": 0.1, "gn_s": 0.05}, {"width": 64, "lm_s": 0.5, "gn_s": 0.1}]
    monkeypatch.setattr(bench, "measure_refine", lambda widths: rows)
    monkeypatch.setattr(bench, "format_refine", lambda rows: "(the table)")
    log = tmp_path / "benchmarks.toml"
    out = CliRunner().invoke(app, ["bench", "--refine", "--quick", "--log", str(log)])
    assert out.exit_code == 0, out.output
    (entry,) = read_log(log)
    assert entry.benchmark == "bench --refine --quick" and entry.ratios == {"width 32": 2.0, "width 64": 5.0}
    assert "Gauss-Newton" in entry.result


def test_bench_log_refuses_launch_and_a_broken_log_before_measuring(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "run_bench", lambda **kw: pytest.fail("measured despite a bad --log"))
    broken = tmp_path / "log.toml"
    broken.write_text("[[measurement]\n")
    out = CliRunner().invoke(app, ["bench", "--quick", "--log", str(broken)])
    assert out.exit_code == 2 and "is not valid TOML" in out.output and broken.read_text() == "[[measurement]\n"
    launch = CliRunner().invoke(app, ["bench", "--launch", "--device", "cpu", "--log", str(tmp_path / "x.toml")])
    assert launch.exit_code == 2 and "--log" in launch.output
