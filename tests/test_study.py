import re

import pytest
from typer.testing import CliRunner

from runge_bench.cli import app
from runge_bench.problem.config import RunConfig
from runge_bench.problem.errors import UserError
from runge_bench.runs.study import load_study

from .helpers import ROOT, report_text

runner = CliRunner()

GOOD_HEAD = 'name = "s"\n'

# (file text, text the one-line error must contain)
BAD_STUDIES = [
    ('name = "s"\n[grid\nactivation=["relu"]', "malformed TOML"),
    (
        'name = "s"\n[fixed]\nactivation = "swoosh"',
        "fixed.activation: unknown activation 'swoosh' (valid: elu, gelu, leaky_relu, mish, relu, silu, sin, softplus, "
        "tanh) nor a usable formula in z: unknown name 'swoosh'",
    ),
    ('name = "s"\n[grid]\nactivation = ["relu", "swish"]', "grid.activation: unknown activation 'swish'"),
    ('name = "s"\n[fixed]\nactivation = "relu"\nwidht = 3', "fixed.widht: unknown key"),
    ('name = "s"\n[fixed]\nactivation = "relu"\nwidth = "64"', "fixed.width: must be an integer"),
    ('name = "s"\n[fixed]\nactivation = "relu"\nwidth = 64.0', "fixed.width: must be an integer"),
    ('name = "s"\n[fixed]\nactivation = "relu"\nwidth = true', "fixed.width: must be an integer"),
    ('name = "s"\n[fixed]\nactivation = "relu"\nwidth = 0', "fixed.width: must be between 1 and 4096, got 0"),
    ('name = "s"\n[fixed]\nactivation = "relu"\nwidth = 1000000000', "fixed.width: must be between 1 and 4096"),
    ('name = "s"\n[fixed]\nactivation = "relu"\nepochs = 0', "fixed.epochs: must be between 1"),
    ('name = "s"\n[fixed]\nactivation = "relu"\nlr = 0', "fixed.lr: must be in (0, 1e+06], got 0"),
    ('name = "s"\n[fixed]\nactivation = "relu"\nlr = -0.1', "fixed.lr: must be in (0, 1e+06]"),
    ('name = "s"\n[fixed]\nactivation = "relu"\nval_fraction = 1.0', "fixed.val_fraction: must be in (0, 1)"),
    ('name = "s"\n[fixed]\nactivation = "relu"\nval_fraction = 0', "fixed.val_fraction: must be in (0, 1)"),
    ('name = "s"\n[fixed]\nactivation = "relu"\nnoise = -0.1', "fixed.noise: must be in [0, 10], got -0.1"),
    ('name = "s"\n[grid]\nactivation = ["relu"]\nnoise = [0, 0.1, 20]', "grid.noise: must be in [0, 10], got 20"),
    ('name = "s"\n[fixed]\nactivation = "relu"\nnoise = "some"', "fixed.noise: must be a number"),
    ('name = "s"\n[fixed]\nactivation = "relu"\ncheckpoint = "best"', "fixed.checkpoint: unknown checkpoint 'best'"),
    (
        'name = "s"\n[fixed]\nactivation = "relu"\ncheckpoint = "best_val"\noptimizer = "adam+lm"\nlm_iters = 5',
        "checkpoint: checkpoint 'best_val' with optimizer 'adam+lm'",
    ),
    ('name = "s"\n[fixed]\nactivation = "relu"\ndtype = "float16"', "fixed.dtype: unknown dtype 'float16'"),
    (
        'name = "s"\n[fixed]\nactivation = "relu"\nbatch_size = 0',
        'fixed.batch_size: must be a positive integer or "full"',
    ),
    (
        'name = "s"\n[fixed]\nactivation = "relu"\nbatch_size = 5000',
        "batch_size: batch_size 5000 exceeds the 800 training points",
    ),
    ('name = "s"\n[grid]\nactivation = []', "grid.activation: empty list"),
    ('name = "s"\n[grid]\nactivation = "relu"', "grid.activation: [grid] takes a list"),
    ('name = "s"\n[fixed]\nactivation = ["relu"]', "fixed.activation: [fixed] takes a single value"),
    (
        'name = "s"\n[fixed]\nactivation = "relu"\n[grid]\nactivation = ["tanh"]',
        "activation: set in both [fixed] and [grid]",
    ),
    ('name = "s"\n[grid]\nactivation = ["relu", "relu"]', "grid.activation: repeats a value"),
    ('name = "s"\n[fixed]\nwidth = 8', "activation: required"),
    ('[fixed]\nactivation = "relu"', "name: required"),
    ('name = "has space"\n[fixed]\nactivation = "relu"', "name: must be 1-64 letters"),
    ('name = "abc\\n"\n[fixed]\nactivation = "relu"', "name: must be 1-64 letters"),  # no newline in a directory name
    (
        'name = "s"\n[fixed]\nactivation = "relu"\n[grid]\nseed = { start = -9223372036854775808, stop = 9223372036854775807 }',
        "grid.seed: range -9223372036854775808..9223372036854775807 step 1 is empty or too long",
    ),  # no OverflowError
    ('name = "s"\n[grid]\nactivation = ["relu"]\nderiv_weight = [0.0, -0.0]', "grid.deriv_weight: repeats a value"),
    ('name = "s"\nseeds = [1]\n[fixed]\nactivation = "relu"', "seeds: unknown top-level key"),
    ('name = "s"\nfixed = 3', "fixed: must be a table"),
    ('name = "s"\n[fixed]\nactivation = "relu"\n[grid]\nseed = { start = 0 }', "grid.seed: a range is"),
    (
        'name = "s"\n[fixed]\nactivation = "relu"\n[grid]\nseed = { start = 0, stop = 1.5 }',
        "grid.seed: range stop must be an integer",
    ),
    ('name = "s"\n[fixed]\nactivation = "relu"\n[grid]\nseed = { stop = 0 }', "grid.seed: empty list"),
    (
        'name = "s"\n[fixed]\nactivation = "relu"\n[grid]\nseed = { stop = 1000 }\nwidth = { stop = 1000, start = 1 }',
        "grid: the grid has 999000 runs",
    ),
    (
        'name = "s"\n[fixed]\nactivation = "relu"\nn_points = 3\nval_fraction = 0.1',
        "val_fraction: n_points=3 with val_fraction=0.1 leaves an empty split",
    ),
    (
        'name = "s"\n[fixed]\nactivation = "relu"\ntarget = "cos"',
        "fixed.target: unknown target 'cos' (valid: runge, runge5, runge100, sin4pi, abs)",
    ),
    (
        'name = "s"\n[fixed]\nactivation = "relu"\noptimizer = "sgd"',
        "fixed.optimizer: unknown optimizer 'sgd' (valid: adam, adam+lbfgs, adam+lm, adam+gn)",
    ),
    (
        'name = "s"\n[fixed]\nactivation = "relu"\noptimizer = "adam+lm"',
        "lm_iters: optimizer 'adam+lm' needs lm_iters >= 1",
    ),
    (
        'name = "s"\n[fixed]\nactivation = "relu"\n[[case]]\noptimizer = "adam+lbfgs"',
        "case[0].lbfgs_iters: optimizer 'adam+lbfgs' needs lbfgs_iters >= 1",
    ),
    (
        'name = "s"\n[fixed]\nactivation = "relu"\n[[case]]\nactivation = "tanh"',
        "case[0].activation: set in a case and in [fixed] or [grid]",
    ),
    ('name = "s"\n[fixed]\nactivation = "relu"\n[[case]]\nwdth = 3', "case[0].wdth: unknown key"),
    ('name = "s"\n[fixed]\nactivation = "relu"\n[[case]]\nwidth = [3, 4]', "case[0].width: a case takes single values"),
    ('name = "s"\n[fixed]\nactivation = "relu"\n[[case]]\n[[case]]\nwidth = 3', "case[0]: an empty case"),
    (
        'name = "s"\n[fixed]\nactivation = "relu"\n[[case]]\nwidth = 3\n[[case]]\nwidth = 3',
        "case[1]: two runs of the plan are the same run",
    ),
    (
        'name = "s"\n[fixed]\nactivation = "relu"\n[grid]\nlbfgs_iters = [1, 2]',
        "grid: two runs of the plan are the same run",
    ),
    ('name = "s"\ncase = 3\n[fixed]\nactivation = "relu"', "case: cases are tables"),
    (
        'name = "s"\nkernels = "fast"\n[fixed]\nactivation = "relu"',
        "kernels: must be one of auto, native, torch, got 'fast'",
    ),
]


@pytest.mark.parametrize("text,message", BAD_STUDIES)
def test_bad_study_is_one_line_error_with_exit_2(write_study, tmp_path, text, message):
    path = write_study(text)
    result = runner.invoke(app, ["sweep", str(path), "--results-dir", str(tmp_path / "r"), "--dry-run"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {path}: ")
    assert message in lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "r").exists()


def test_missing_directory_and_non_utf8_files(tmp_path):
    (tmp_path / "bin.toml").write_bytes(b'name = "\xff\xfe"\n')
    cases = [
        (tmp_path / "nope.toml", "no such study file"),
        (tmp_path, "is not a file"),
        (tmp_path / "bin.toml", "not valid UTF-8"),
    ]
    for path, message in cases:
        result = runner.invoke(app, ["sweep", str(path), "--dry-run"])
        assert result.exit_code == 2
        assert result.stderr.strip() == f"error: {path}: {message}" or message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_grid_is_the_cartesian_product_in_file_order(write_study):
    study = load_study(
        write_study("""
        name = "p"
        description = "d"
        [fixed]
        width = 8
        deriv_weight = 1
        batch_size = "full"
        [grid]
        activation = ["relu", "tanh"]
        seed = { start = 0, stop = 6, step = 2 }
    """)
    )
    assert study.axes == {"activation": ("relu", "tanh"), "seed": (0, 2, 4)}
    assert [(c.activation, c.seed) for c in study.configs] == [
        ("relu", 0),
        ("relu", 2),
        ("relu", 4),
        ("tanh", 0),
        ("tanh", 2),
        ("tanh", 4),
    ]
    assert all(c.width == 8 and c.deriv_weight == 1.0 and c.batch_size is None for c in study.configs)


def test_shipped_studies_are_valid():
    smoke = load_study(ROOT / "studies" / "smoke.toml")
    assert {c.activation for c in smoke.configs} == {"relu", "tanh"} and len(smoke.configs) == 16
    assert {c.seed for c in smoke.configs} == set(range(8))  # enough pairs for compare's tests (CI)
    rep = load_study(ROOT / "studies" / "seed-replication.toml")
    assert len(rep.configs) == 40
    assert {c.seed for c in rep.configs} == set(range(20))
    assert all(c == RunConfig(c.activation, seed=c.seed) for c in rep.configs)  # the seed protocol


@pytest.mark.parametrize("path", sorted((ROOT / "studies").rglob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_study_file_reads(path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the Python-target example names its module from the repository root
    study = load_study(path)
    assert study.configs and study.name == path.stem


@pytest.mark.parametrize("example", sorted((ROOT / "studies" / "examples").glob("*.toml")), ids=lambda p: p.stem)
def test_the_examples_sweep_and_report_as_the_readme_shows(example, tmp_path, monkeypatch):
    """Shortened to 20 epochs; the README's example targets and activations appear in the report
    under the names the README says."""
    monkeypatch.chdir(ROOT)
    args = ["--results-dir", str(tmp_path), "--set", "epochs=20", "--name", example.stem, "--jobs", "1"]
    result = runner.invoke(app, ["sweep", str(example), *args])
    assert result.exit_code == 0, result.output
    from runge_bench.outputs.report import build_report
    from runge_bench.runs.loading import resolve

    build_report(resolve(example.stem, tmp_path), draw=False)  # the report's text (figures: test_report.py)
    report = report_text(tmp_path / example.stem / "report.md")
    expected = {
        "my-target": "exp(-4*x**2)*sin(6*x)",
        "my-activation": "z*tanh(log(exp(z) + 1))",
        "my-python-target": "studies.examples.my_target:hinge_bump@",
    }[example.stem]
    assert expected in report


def test_user_error_formats_path_and_field():
    assert str(UserError("bad", path="a.toml", field="grid.x")) == "a.toml: grid.x: bad"


def test_set_overrides_make_another_plan_under_another_name():
    smoke = load_study(ROOT / "studies" / "smoke.toml")
    quick = load_study(ROOT / "studies" / "smoke.toml", ["epochs=50", "seed=0:3", "activation=tanh,silu"])
    assert quick.name == "smoke-epochs.50-seed.0.3-activation.tanh.silu" and quick.name != smoke.name
    assert {c.epochs for c in quick.configs} == {50} and {c.seed for c in quick.configs} == {0, 1, 2}
    assert {c.activation for c in quick.configs} == {"tanh", "silu"} and len(quick.configs) == 6
    assert all(c.width == 16 for c in quick.configs)  # the file's other values stay
    assert "(with --set epochs=50 seed=0:3 activation=tanh,silu)" in quick.description
    named = load_study(ROOT / "studies" / "smoke.toml", ["epochs=50"], name="mine")
    assert named.name == "mine"
    many = ",".join(f"{w / 10:g}" for w in range(1, 21))  # a name past 64 characters: hashed instead
    long = load_study(ROOT / "studies" / "smoke.toml", [f"deriv_weight={many}"])
    assert long.name.startswith("smoke-set-") and len(long.name) == len("smoke-set-") + 8
    assert len(long.configs) == 2 * 8 * 20


@pytest.mark.parametrize(
    "item, message",
    [
        ("epochs", "--set: expected key=value"),
        ("epochs=abc", "fixed.epochs: must be an integer, got 'abc'"),
        ("wdth=4", "fixed.wdth: unknown key"),
        ("seed=0:abc", "grid.seed: range stop must be an integer"),
    ],
)
def test_bad_set_items_are_one_line_errors(item, message, tmp_path):
    result = runner.invoke(
        app, ["sweep", str(ROOT / "studies" / "smoke.toml"), "--set", item, "--dry-run", "--results-dir", str(tmp_path)]
    )
    assert result.exit_code == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_cases_multiply_the_grid(write_study):
    """[[case]] tables: each case's keys go together; the runs are the grid times the cases."""
    from runge_bench.runs.study import load_study

    path = write_study("""
        name = "regimes"
        [fixed]
        width = 8
        [grid]
        activation = ["relu", "tanh"]
        seed = [0, 1]
        [[case]]
        dtype = "float32"
        [[case]]
        dtype = "float64"
        optimizer = "adam+lm"
        lm_iters = 7
        """)
    s = load_study(path)
    assert len(s.configs) == 2 * 2 * 2 and len(s.cases) == 2
    lm = [c for c in s.configs if c.optimizer == "adam+lm"]
    assert len(lm) == 4 and all(c.dtype == "float64" and c.lm_iters == 7 for c in lm)
    assert {c.dtype for c in s.configs if c.optimizer == "adam"} == {"float32"}
    assert all(c.width == 8 for c in s.configs)


def _drawn(tmp_path, axis: str, key: str = "lr") -> tuple:
    path = tmp_path / "draw.toml"
    path.write_text(f'name = "d"\n[fixed]\nactivation = "tanh"\n[grid]\n{key} = {axis}\n')
    return load_study(path)


def test_random_axes_are_drawn_once_rounded_and_the_same_every_time(tmp_path):
    study = _drawn(tmp_path, "{ log_uniform = [1e-4, 1e-2], n = 16, seed = 0 }")
    lrs = study.axes["lr"]
    assert len(lrs) == 16 and len(set(lrs)) == 16 and all(1e-4 <= v <= 1e-2 for v in lrs)
    assert all(float(f"{v:.6g}") == v for v in lrs)  # 6 significant digits: no value hangs on an ulp
    assert [c.lr for c in study.configs] == list(lrs)  # the plan's runs, in the order drawn
    assert _drawn(tmp_path, "{ log_uniform = [1e-4, 1e-2], n = 16, seed = 0 }").axes == study.axes
    assert _drawn(tmp_path, "{ log_uniform = [1e-4, 1e-2], n = 16, seed = 1 }").axes != study.axes
    assert study.draws["lr"].startswith("16 log-uniform draws in [0.0001, 0.01], seed 0")
    # Log-uniform: as many draws below the geometric mean of the bounds as above, roughly.
    many = _drawn(tmp_path, "{ log_uniform = [1e-4, 1e-2], n = 200, seed = 3 }").axes["lr"]
    assert 0.4 < sum(v < 1e-3 for v in many) / len(many) < 0.6
    plain = _drawn(tmp_path, "{ uniform = [0, 2], n = 5, seed = 0 }", key="deriv_weight").axes["deriv_weight"]
    assert len(plain) == 5 and all(0 <= v <= 2 for v in plain)


@pytest.mark.parametrize(
    "axis,key,message",
    [
        ("{ log_uniform = [1e-4, 1e-2], n = 4 }", "lr", "n and seed required"),
        ("{ log_uniform = [0, 1e-2], n = 4, seed = 0 }", "lr", "0 < low < high"),
        ("{ uniform = [2, 1], n = 4, seed = 0 }", "lr", "low < high"),
        ("{ uniform = [1, 2], n = 0, seed = 0 }", "lr", "n must be an integer in [1, 10000]"),
        ("{ uniform = [16, 64], n = 4, seed = 0 }", "width", "random draws are for the float keys"),
        ("{ uniform = [1e-4, 2e-4], n = 9000, seed = 0 }", "lr", "two draws are equal at 6 significant digits"),
        ("{ log_uniform = [2e6, 1e7], n = 4, seed = 0 }", "lr", "must be in (0, 1e+06]"),
    ],
)
def test_bad_random_axes_are_one_line_naming_the_key(tmp_path, axis, key, message):
    with pytest.raises(UserError, match=re.escape(message)) as e:
        _drawn(tmp_path, axis, key)
    assert f"grid.{key}" in str(e.value)


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--kernels", "native"], "--kernels: contradicts the study: {path} sets kernels = 'torch'"),
        (
            ["--engine", "reference"],
            "--engine: the study asks for the batched engine's torch kernels: {path} sets kernels = 'torch'",
        ),
    ],
)
def test_a_study_that_pins_its_kernels_refuses_a_contradicting_flag(write_study, tmp_path, flags, message):
    path = write_study('name = "s"\nkernels = "torch"\n[fixed]\nactivation = "relu"\nepochs = 2\nn_points = 20')
    result = runner.invoke(app, ["sweep", str(path), "--results-dir", str(tmp_path / "r"), *flags])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [f"error: {message.format(path=path)}"]
    assert not (tmp_path / "r").exists()  # refused before the store is made


def test_a_study_that_pins_its_kernels_trains_with_them(write_study, tmp_path):
    """kernels = "torch" trains ReLU (which has native kernels) with the torch kernels, unasked;
    --kernels torch agrees with it."""
    from runge_bench.runs.store import Store

    path = write_study('name = "s"\nkernels = "torch"\n[fixed]\nactivation = "relu"\nepochs = 2\nn_points = 20')
    assert load_study(path).kernels == "torch"
    result = runner.invoke(app, ["sweep", str(path), "--results-dir", str(tmp_path), "--kernels", "torch"])
    assert result.exit_code == 0, result.output
    assert "engine: batched\n" in result.stdout
    with Store(tmp_path / "s" / "runs.sqlite") as store:
        assert set(store.runs().engine) == {"batched"}
