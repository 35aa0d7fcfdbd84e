"""The committed reports are what the code makes of the committed stores, on this machine too.

Every number in results/ (and so in the README's quotes of it) must regenerate from its store.
Statistics read stored values only and are deterministic; the baselines are recomputed from the
data, and another CPU's BLAS kernels move their last bits (the Chebyshev fits' errors by up to
2.5e-5 relative between OpenBLAS's Haswell and SkylakeX kernels): so numbers are compared at the
precision the reports print them, 3 significant figures, allowing the printed last digit to flip
(a relative 5e-3), in report.md and in every CSV alike. tests/test_baselines.py checks that the
baselines' chosen degrees and printed digits survive such a perturbation.
"""

import pytest

from runge_bench.analysis.compare import compare
from runge_bench.outputs.comparison import write_comparison
from runge_bench.outputs.markdown import unwrap_markdown
from runge_bench.outputs.report import build_report
from runge_bench.runs.loading import resolve

from .helpers import ROOT, assert_same_csv, assert_same_text

TUNED = {"tuning": ["lr"]}  # the committed reports made with --tune (.ci/regenerate)


@pytest.mark.slow
@pytest.mark.parametrize(
    "study",
    [
        "smoke",
        "seed-replication",
        "ablation",
        "precision",
        "targets",
        "fidelity",
        "fidelity-torch",
        "fidelity-float64",
        "fidelity-float64-torch",
        "fidelity-silu",
        "fidelity-silu-torch",
        "tuning",
        "sensitivity",
        "activations",
        "frontier",
        "seed-replication-confirm",
        "ablation-confirm",
        "sensitivity-confirm",
        "activations-confirm",
        "tuning-confirm",
    ],
)
def test_committed_report_regenerates(study, tmp_path):
    committed = ROOT / "results" / study
    # report.md and the tables are compared; figures are not (rendering is the slowest part)
    build_report(resolve(str(committed), ROOT / "results"), tmp_path, tune=TUNED.get(study), draw=False)
    assert_same_text((tmp_path / "report.md").read_text(), (committed / "report.md").read_text(), study)
    for csv in sorted((committed / "tables").glob("*.csv")):
        assert_same_csv(tmp_path / "tables" / csv.name, csv)
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == sorted(
        p.name for p in (committed / "tables").iterdir()
    )
    for line in (committed / "report.md").read_text().splitlines():  # every figure it shows is there
        if line.startswith("!["):
            assert (committed / line[line.index("](") + 2 : -1]).exists(), line


@pytest.mark.slow
@pytest.mark.parametrize("a,b", [("ablation", "ablation-native"), ("fidelity-silu-torch", "fidelity-silu")])
def test_committed_comparison_regenerates(a, b, tmp_path):
    """The engines' comparisons as committed: the ablation's native re-run, and the tails of SiLU's
    hardest cell over 200 seeds (the native kernels against the torch kernels)."""
    results = ROOT / "results"
    c = compare(resolve(a, results), resolve(str(results / b), results))
    write_comparison(c, tmp_path)
    committed = results / b / "compare"
    new = (tmp_path / "compare.md").read_text().replace(str(results / b), f"results/{b}")
    new = new.replace(str(results / a), f"results/{a}")
    assert_same_text(new, (committed / "compare.md").read_text(), "compare.md")
    for name in ("compare.csv", "compare_conclusions.csv"):
        assert_same_csv(tmp_path / name, committed / name)


def test_the_results_index_is_current_and_quotes_the_reports():
    """results/README.md is what `runge-bench index results/` makes of the committed reports, and
    every finding it shows is a finding of its report's "At a glance", word for word."""
    from runge_bench.outputs.index import index_text, read_glance

    results = ROOT / "results"
    text, skipped = index_text(results)
    assert not skipped and (results / "README.md").read_text() == text, "run: runge-bench index results/"
    page = "\n".join(unwrap_markdown((results / "README.md").read_text()))
    for report in sorted(results.glob("*/report.md")):
        glance = read_glance(report)
        assert glance.question and glance.figure and glance.findings, report
        for claim, details in glance.findings:
            assert f"- {claim}" in page and all(f"  - {d}" in page for d in details), (report, claim)
        assert (report.parent / glance.figure[1]).exists(), report


def test_no_line_of_a_committed_report_is_over_200_characters():
    """Reports, comparisons and the index read at a glance (tables/*.md are wide by design)."""
    pages = [*(ROOT / "results").glob("*/report.md"), *(ROOT / "results").glob("*/compare*/compare.md")]
    for path in sorted([ROOT / "results" / "README.md", *pages]):
        long = [line for line in path.read_text().splitlines() if len(line) > 200]
        assert not long, f"{path}: {len(long)} lines over 200 characters, e.g. {long[0][:100]}"


@pytest.mark.slow
@pytest.mark.parametrize("study", ["seed-replication", "ablation", "sensitivity", "activations", "tuning"])
def test_the_committed_confirmations_regenerate(study, tmp_path):
    """results/<study>-confirm/confirm.md is what `runge-bench confirm` makes of the two committed
    stores (nothing is trained: every fresh run is stored)."""
    from runge_bench.analysis.hypotheses import confirmation
    from runge_bench.outputs.confirmation import write_confirmation
    from runge_bench.runs.confirm import confirmation_plan
    from runge_bench.runs.loading import Source

    original, plan = confirmation_plan(ROOT / "studies" / f"{study}.toml", ROOT / "results")
    assert not plan.todo, "a fresh run of the confirmation is not stored"
    fresh = Source(plan.store_path, plan.study.name, plan.study)
    table, engines = confirmation(original, fresh)
    path = write_confirmation(table, engines, original, fresh, tmp_path)
    committed = ROOT / "results" / f"{study}-confirm" / "confirm.md"
    new = path.read_text().replace(f"{ROOT}/", "")  # the stores' paths as the committed run named them
    assert_same_text(new, committed.read_text(), str(committed))
