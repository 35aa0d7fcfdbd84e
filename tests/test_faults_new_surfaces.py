"""Faults on the newer surfaces (formulas, Python targets, the index, --tune) and the files every
command writes: each class of what an adversarial round broke, with its replay."""

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from runge_bench.analysis import stats
from runge_bench.cli import app
from runge_bench.problem import callables, formula
from runge_bench.problem.errors import UserError
from runge_bench.runs.study import load_study

from .helpers import ROOT

runner = CliRunner()
SMOKE = ROOT / "results" / "smoke"
TINY = 'name = "{name}"\n[fixed]\nwidth = 8\nepochs = 20\nn_points = 50\n{extra}\n[grid]\nseed = [0, 1]\n'


def _invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def _one_line_error(result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.output  # progress lines may come before
    assert "Traceback" not in result.output
    for w in words:
        assert w in errors[0], (w, errors[0])


# ------------------------------------------------------------------ 1. symbolic links


@pytest.fixture
def victim(tmp_path):
    """A file outside the results directory that a link planted there points to."""
    path = tmp_path / "victim.txt"
    path.write_text("mine\n")
    return path


def _copy_smoke(tmp_path) -> Path:
    d = tmp_path / "results" / "smoke"
    d.mkdir(parents=True)
    (d / "runs.sqlite").write_bytes((SMOKE / "runs.sqlite").read_bytes())
    return d


@pytest.mark.parametrize("planted", [".runge-bench.lock", "report.md", "tables", "figures"])
def test_a_report_writes_through_no_planted_link(tmp_path, victim, planted):
    d = _copy_smoke(tmp_path)
    (d / planted).symlink_to(victim)
    result = _invoke("report", d)
    if planted == "report.md":  # replaced whole: the link goes, what it pointed to stays
        assert result.exit_code == 0, result.output
        assert not (d / planted).is_symlink()
    else:  # the lock is opened, not replaced; a directory that is a link to a file: refused
        _one_line_error(result, "symbolic link" if planted.startswith(".") else "not a directory")
    assert victim.read_text() == "mine\n"


def test_an_output_directory_that_is_a_link_is_refused(tmp_path):
    d = _copy_smoke(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "out").symlink_to(elsewhere)
    _one_line_error(_invoke("report", d, "--out", tmp_path / "out"), "symbolic link")
    _one_line_error(_invoke("compare", d, d, "--out", tmp_path / "out"), "symbolic link")
    _one_line_error(_invoke("show", d, "--where", "activation=tanh", "--out", tmp_path / "out"), "symbolic link")
    assert list(elsewhere.iterdir()) == []


def test_the_index_writes_through_no_planted_link(tmp_path, victim):
    results = tmp_path / "results"
    (results / "smoke").mkdir(parents=True)
    (results / "smoke" / "report.md").write_text((SMOKE / "report.md").read_text())
    (results / ".README.md.tmp").symlink_to(victim)  # the name an earlier version wrote through
    (results / "README.md").symlink_to(victim)
    result = _invoke("index", results)
    assert result.exit_code == 0, result.output
    assert victim.read_text() == "mine\n"
    assert not (results / "README.md").is_symlink() and "smoke" in (results / "README.md").read_text()
    (results / "README.md").unlink()
    os.rename(results, tmp_path / "real")
    results.symlink_to(tmp_path / "real")
    _one_line_error(_invoke("index", results), "symbolic link")


@pytest.mark.parametrize("planted", ["runs.sqlite", "runs.sqlite-wal", "runs.sqlite-shm"])
def test_a_sweep_opens_no_store_through_a_link(write_study, tmp_path, victim, planted):
    study = write_study(TINY.format(name="linked", extra='activation = "tanh"'))
    d = tmp_path / "results" / "linked"
    d.mkdir(parents=True)
    (d / planted).symlink_to(victim)
    _one_line_error(_invoke("sweep", study, "--results-dir", tmp_path / "results", "--jobs", "1"), "symbolic link")
    assert victim.read_text() == "mine\n"


def test_a_killed_reports_staging_directory_is_removed_by_the_next(tmp_path):
    d = _copy_smoke(tmp_path)
    stale, fresh = d / ".staging-killed", d / ".staging-running"
    stale.mkdir()
    fresh.mkdir()
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    assert _invoke("report", d).exit_code == 0
    assert not stale.exists() and fresh.exists()  # a running command's is left alone


# ------------------------------------------------------------------ 2, 5, 8. Python targets

MODULE = """
import torch

def clean(x):
    return torch.cos(3 * x)

def mut(x):
    x.data.abs_()
    return torch.cos(3 * x)
"""


@pytest.fixture
def module(python_module):
    return python_module(MODULE, "faulty")


def _study_file(tmp_path, name, target, activation="tanh"):
    path = tmp_path / f"{name}.toml"
    path.write_text(TINY.format(name=name, extra=f'activation = "{activation}"\ntarget = "{target}"'))
    return path


def test_a_target_that_changes_its_input_is_refused_and_never_moves_the_data(module, tmp_path):
    with pytest.raises(UserError, match=r"fixed\.target: .*changed its input in place"):
        load_study(_study_file(tmp_path, "m", f"{module}:mut"))
    _, f, df = callables.load(f"{module}:clean")
    x = np.linspace(-1, 1, 11)
    kept = x.copy()
    f(x), df(x)
    np.testing.assert_array_equal(x, kept)


def test_a_module_that_exits_on_import_is_one_line(tmp_path, monkeypatch):
    (tmp_path / "exits_on_import.py").write_text("import sys\nsys.exit(3)\n")
    monkeypatch.chdir(tmp_path)
    try:
        result = _invoke("sweep", _study_file(tmp_path, "e", "exits_on_import:f"), "--dry-run")
        _one_line_error(result, "fixed.target", "SystemExit")
    finally:
        sys.modules.pop("exits_on_import", None)


def test_the_memory_a_module_takes_on_import_is_counted_in_the_plan(tmp_path, monkeypatch):
    (tmp_path / "big_module.py").write_text(
        "import numpy as np, torch\nBIG = np.ones(40_000_000)\n\ndef f(x):\n    return torch.sin(x)\n"
    )
    monkeypatch.chdir(tmp_path)
    try:
        from runge_bench.runs.resources import BASE_BYTES, task_bytes

        configs = load_study(_study_file(tmp_path, "b", "big_module:f")).configs
        assert callables.import_bytes(configs[0].target) > 250e6  # 320 MB of ones
        assert task_bytes(configs[:1], "batched") > BASE_BYTES + 250e6
    finally:
        sys.modules.pop("big_module", None)
        callables.IMPORT_BYTES.pop("big_module", None)


def test_a_report_after_the_module_changed_leaves_its_runs_out_saying_why(module, tmp_path):
    results = tmp_path / "results"
    study = _study_file(tmp_path, "p", f"{module}:clean")
    assert _invoke("sweep", study, "--results-dir", results, "--jobs", "1").exit_code == 0
    (tmp_path / f"{module}.py").write_text(MODULE + "\n# edited\n")
    sys.modules.pop(module, None)
    callables.load.cache_clear()
    # every run fitted the old file: one line, naming both digests and what to do
    _one_line_error(_invoke("report", "p", "--results-dir", results), "has changed", "--retry-failed")
    assert _invoke("sweep", study, "--results-dir", results, "--jobs", "1").exit_code == 0  # the new code
    result = _invoke("report", "p", "--results-dir", results)
    assert result.exit_code == 0, result.output
    text = (results / "p" / "report.md").read_text()
    assert "2 runs fitted" in text and "left out" in text


# ------------------------------------------------------------------ 3, 4. formulas


def test_a_huge_constant_is_refused_before_it_is_computed(monkeypatch):
    import math

    import sympy

    exact = sympy.Integer.__pow__

    def guarded(self, other):  # an exact power past 1e400 is what took 23 minutes: never computed
        if self != 0 and float(other) * math.log10(abs(float(self))) > 400:
            raise AssertionError(f"{self}**{other} was computed before the formula was refused")
        return exact(self, other)

    monkeypatch.setattr(sympy.Integer, "__pow__", guarded)
    for text in ("((((10**64)**64)**64)**64)**64*x", "(10**64)**64*x", "(1e6**64)**64*x"):
        with pytest.raises(formula.FormulaError, match="beyond float64's range"):
            formula.canonical(text)
    assert formula.canonical("(2**64)**4*x")  # within float64: kept


@pytest.mark.parametrize(
    "activation",
    ["erf(z)", "z*(1+erf(z/sqrt(2)))/2", "0.5*z*(1+tanh(sqrt(2/pi)*(z+0.044715*z**3)))", "log(2)*tanh(z)", "exp(2)*z"],
)
def test_formula_activations_with_functions_of_constants_train(write_study, tmp_path, activation):
    study = write_study(TINY.format(name="act", extra=f'activation = "{activation}"'))
    result = _invoke("sweep", study, "--results-dir", tmp_path, "--jobs", "1")
    assert result.exit_code == 0 and "2 ok" in result.output, result.output


# ------------------------------------------------------------------ 6. report --tune


@pytest.fixture(scope="module")
def tuned_store(tmp_path_factory):
    d = tmp_path_factory.mktemp("tuned")
    (d / "t.toml").write_text(
        'name = "t"\n[fixed]\nepochs = 30\nn_points = 50\n'
        '[grid]\nactivation = ["relu", "tanh"]\nlr = [1e-3, 1e-2]\nwidth = [8, 16]\nderiv_weight = [0.0, 1.0]\n'
        "seed = [0, 1, 2, 3]\n"
    )
    assert _invoke("sweep", d / "t.toml", "--results-dir", d, "--jobs", "1").exit_code == 0
    return d


def test_tuning_deriv_weight_or_an_axis_twice_is_refused(tuned_store):
    _one_line_error(_invoke("report", "t", "--results-dir", tuned_store, "--tune", "deriv_weight"), "--tune", "depends")
    _one_line_error(_invoke("report", "t", "--results-dir", tuned_store, "--tune", "lr,lr"), "--tune", "twice")


def test_tuned_findings_name_their_cell(tuned_store):
    from runge_bench import api

    r = api.results("t", tuned_store, tune=["lr"])
    claims = [c for c, _ in r.tuned.findings]
    assert claims and all(c.startswith("Tuned (width=") for c in claims), claims
    glance = [c for c, _ in r.glance if c.startswith("Tuned")]
    assert len(glance) == len(set(glance)), glance  # never the same sentence twice


# ------------------------------------------------------------------ 7. the index on damaged reports


def test_the_index_skips_what_it_cannot_read_saying_so(tmp_path):
    results = tmp_path / "results"
    good = results / "good"
    good.mkdir(parents=True)
    (good / "report.md").write_text((SMOKE / "report.md").read_text())
    for name in ("binary", "dir", "fifo", "zero", "badimage"):
        (results / name).mkdir()
    (results / "binary" / "report.md").write_bytes(b"## At a glance\n\xff\xfe\n")
    (results / "dir" / "report.md").mkdir()
    os.mkfifo(results / "fifo" / "report.md")
    (results / "zero" / "report.md").symlink_to("/dev/zero")
    (results / "badimage" / "report.md").write_text("# r\n\n## At a glance\n\n![no link here\n")
    result = _invoke("index", results)
    assert result.exit_code == 0, result.output
    for name, why in (("binary", "not UTF-8"), ("dir", "a directory"), ("fifo", "not a regular"), ("zero", "not a")):
        assert any(
            line.startswith("skipped") and f"/{name}/" in line and why in line for line in result.output.splitlines()
        ), name
    page = (results / "README.md").read_text()
    assert "[good](good/report.md)" in page and "[badimage](badimage/report.md)" in page


# ------------------------------------------------------------------ 9, 10. many seeds; LaTeX names


def test_a_study_of_1024_seeds_plans():
    assert 0 < stats.min_wilcoxon_p(1024) < 1e-300 and stats.min_wilcoxon_p(5000) == 0.0
    assert "1024 seeds" in stats.reach(1024)
    d = np.random.default_rng(0).normal(0.1, 1, size=1100)
    est, lo, hi, coverage = stats.hodges_lehmann(d)  # the normal approximation past 400 pairs
    assert lo < est < hi and abs(coverage - 0.95) < 0.01


def test_a_cli_dry_run_of_1024_seeds(write_study, tmp_path):
    study = write_study('name = "many"\n[fixed]\nactivation = "tanh"\n[grid]\nseed = { start = 0, stop = 1024 }\n')
    result = _invoke("sweep", study, "--results-dir", tmp_path, "--dry-run")
    assert result.exit_code == 0 and "1024 seeds" in result.output, result.output


def test_per_cell_latex_tables_escape_every_name():
    import pandas as pd

    from runge_bench.outputs import latex

    table = pd.DataFrame(
        {"target": ["my_mod:f_1@abc"], "lm_iters": [3], "tanh_median": [1e-3], "tanh_lo": [5e-4], "tanh_hi": [2e-3]}
    ).assign(best="tanh", best_significant=False)
    tex = latex.cell_tex(table, ["tanh"], "grid_f_mse", "s")
    assert r"my\_mod:f\_1@abc" in tex and r"lm\_iters" in tex
    assert "my_mod" not in tex.replace(r"my\_mod", "")


# ------------------------------------------------------------------ minor, and what a newcomer trips on


def test_a_huge_value_is_shortened_in_its_one_line_error(write_study, tmp_path):
    study = write_study('name = "long"\n[fixed]\nactivation = "' + "z+" * 50000 + 'z"\n[grid]\nseed = [0]\n')
    result = _invoke("sweep", study, "--results-dir", tmp_path, "--dry-run")
    _one_line_error(result, "fixed.activation", "characters)...")
    assert len(result.output) < 1000


def test_user_text_is_printed_as_written(write_study, tmp_path):
    study = write_study('name = "emoji"\n[fixed]\nactivation = ":ok: z"\n[grid]\nseed = [0]\n')
    result = _invoke("sweep", study, "--results-dir", tmp_path, "--dry-run")
    assert ":ok:" in result.output and "🆗" not in result.output


def test_show_says_when_its_selection_spans_several_cells(tmp_path):
    result = _invoke("show", ROOT / "results" / "ablation", "--where", "width=16", "--out", tmp_path / "s")
    assert result.exit_code == 0, result.output
    text = (tmp_path / "s" / "show.md").read_text()
    assert "spans 4 cells (deriv_weight: 0.0, 0.1, 1.0, 10.0)" in text
    assert "| relu | 0 | 10 |" in text  # per cell: 10 seeds each, not 40 pooled


def test_two_activations_with_few_seeds_lead_with_their_pair():
    """The example study of a user's activation (two activations, four seeds): "At a glance"
    answers its question with the pair's effect sizes, saying the seeds cannot reject."""
    import pandas as pd

    from runge_bench.analysis import glance
    from runge_bench.analysis.tables import comparisons_table

    from .helpers import jitter, synthetic_runs

    df = synthetic_runs(lambda act, w, lam, seed: (2.0 if act == "relu" else 1.0) * jitter(seed))
    df = df[(df.seed < 4) & (df.width == 16) & (df.deriv_weight == 1.0)].reset_index(drop=True)
    comparisons = comparisons_table(df, ["relu", "tanh"])
    found = {"": [("runs", [])]}
    picked, rule = glance.select(df, pd.DataFrame(), comparisons, {}, ["relu", "tanh"], found, [[]], False)
    assert [c.split(":")[0] for c, _ in picked] == [
        "Paired by seed, f′ MSE (dense grid)",
        "Paired by seed, f MSE (dense grid)",
    ]
    assert "4 seeds cannot reject" in rule and "one activation" not in rule


def test_no_activation_is_drawn_in_the_baselines_grey():
    import seaborn as sns

    from runge_bench.outputs.plots import GREY, PALETTE

    grey = {tuple(sns.color_palette(name, 10)[GREY]) for name in ("colorblind", "dark")}
    names = ["relu", "tanh", "silu", "softplus", "gelu", "elu", "mish", "leaky_relu", "sin"]
    names += [f"z*tanh({k}*z)" for k in range(40)]  # formula activations: colours by digest
    assert not {tuple(PALETTE[n]) for n in names} & grey


@pytest.mark.parametrize(
    "text,says",
    [
        ("1/0*x", "infinite or undefined as written"),
        ("x*0/0", "infinite or undefined as written"),
        ("((x**64)**64)**64", "powers of powers"),
    ],
)
def test_formula_errors_name_what_the_user_wrote(text, says):
    """Not sympy's names ("zoo", "nan") or an exponent the user never wrote (262144)."""
    with pytest.raises(formula.FormulaError) as e:
        formula.canonical(text)
    assert says in str(e.value) and not {"zoo", "nan", "262144"} & set(str(e.value).replace(",", " ").split())


def test_draw_bounds_whose_width_overflows_are_refused(write_study, tmp_path):
    study = write_study(
        'name = "wide"\n[fixed]\nactivation = "tanh"\n[grid]\nnoise = { uniform = [-1e308, 1e308], n = 3, seed = 0 }\n'
    )
    _one_line_error(_invoke("sweep", study, "--results-dir", tmp_path, "--dry-run"), "grid.noise", "finite")
