"""A study's results computed once (analysis.study), rendered many ways (outputs/).

The report is a rendering of api.results: the same tables, read from one pass over the store, and
nothing written by computing them.
"""

import pandas as pd
import pytest

from runge_bench import api
from runge_bench.analysis.study import StudyResults
from runge_bench.outputs.report import build_report
from runge_bench.runs import store as store_module
from runge_bench.runs.loading import resolve

from .helpers import ROOT, assert_same_csv

RESULTS = ROOT / "results"


def _listing(d):
    return {p.relative_to(d): p.stat().st_mtime_ns for p in d.rglob("*")}


@pytest.mark.slow
def test_a_notebook_gets_the_reports_comparisons_table(tmp_path):
    """api.results("ablation") holds the comparisons table the committed report wrote, at the
    precision it prints (the baselines' last bits move with the CPU's BLAS kernels)."""
    before = _listing(RESULTS / "ablation")
    r = api.results("ablation", RESULTS)
    assert isinstance(r, StudyResults) and r.name == "ablation"
    assert _listing(RESULTS / "ablation") == before, "computing the results wrote to the results directory"
    r.tables.comparisons.to_csv(tmp_path / "comparisons.csv", index=False)
    assert len(r.tables.comparisons) == len(pd.read_csv(RESULTS / "ablation" / "tables" / "comparisons.csv")) > 100
    assert_same_csv(tmp_path / "comparisons.csv", RESULTS / "ablation" / "tables" / "comparisons.csv")
    r.tables.summary.to_csv(tmp_path / "summary.csv", index=False)
    assert_same_csv(tmp_path / "summary.csv", RESULTS / "ablation" / "tables" / "summary.csv")
    assert r.findings["Across cells"] and len(r.glance) <= 5 and r.glance_rule


def test_results_hold_what_the_report_shows():
    r = api.results("smoke", RESULTS)
    assert r.order == ["relu", "tanh"] and len(r.runs) == 16
    assert set(r.fits.members) == {"relu", "tanh"}  # the reference cell's fits, per activation
    assert list(r.data_profiles.activation.unique()) == ["relu", "tanh"]
    assert r.zoo is None and r.tuned is None  # kinds that do not apply are None, not empty
    # "At a glance": the headline pair on f′ and f, by the rule it states
    assert r.glance_rule == (
        "relu vs tanh on f′ MSE (dense grid) (the primary metric) and f MSE (dense grid) in the reference cell"
    )
    assert [claim.split(":")[0] for claim, _ in r.glance] == [
        "Paired by seed, f′ MSE (dense grid)",
        "Paired by seed, f MSE (dense grid)",
    ]


def test_a_report_opens_its_store_once(tmp_path, monkeypatch):
    opened = []
    real = store_module.Store.__init__

    def counting(self, path, **kwargs):
        opened.append(path)
        real(self, path, **kwargs)

    monkeypatch.setattr(store_module.Store, "__init__", counting)
    build_report(resolve(str(RESULTS / "seed-replication"), RESULTS), tmp_path, draw=False)
    assert len(opened) == 1, opened
    assert (tmp_path / "report.md").exists()


def test_the_rendered_report_is_the_results(tmp_path):
    """Every table file is the results object's table, and report.md states its findings."""
    build_report(resolve(str(RESULTS / "smoke"), RESULTS), tmp_path, draw=False)
    r = api.results("smoke", RESULTS)
    for name, table in (("summary", r.tables.summary), ("comparisons", r.tables.comparisons)):
        table.to_csv(tmp_path / f"{name}.expected.csv", index=False)
        assert (tmp_path / "tables" / f"{name}.csv").read_bytes() == (tmp_path / f"{name}.expected.csv").read_bytes()
    text = (tmp_path / "report.md").read_text()
    assert "## At a glance" in text and r.glance_rule.split(";")[0] in " ".join(text.split())
