"""Targets written as Python ("module:function"): imported, f' by autograd, pinned to the source
file's digest, checked at plan time, and importable by every kind of worker."""

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from runge_bench.engine.batched import train_batched
from runge_bench.engine.reference import train_reference
from runge_bench.problem import callables
from runge_bench.problem.errors import UserError
from runge_bench.problem.targets import get_target
from runge_bench.runs.study import load_study

MODULE = """
import torch

def bump(x):
    return torch.tanh(8 * (x + 0.5)) - torch.tanh(8 * (x - 0.5))

def centred(x):
    return x - x.mean()

def pole(x):
    return 1 / x

def listy(x):
    return [1.0]

def raises(x):
    raise RuntimeError("boom")

def constant(x):
    return torch.ones_like(x)
"""


@pytest.fixture
def user_module(python_module):
    """A module `usertarget_<n>.py` with MODULE's functions, beside the tests' study files."""
    return python_module(MODULE, "usertarget")


def _bump(x):
    return np.tanh(8 * (x + 0.5)) - np.tanh(8 * (x - 0.5))


def _bump_derivative(x):
    return 8 / np.cosh(8 * (x + 0.5)) ** 2 - 8 / np.cosh(8 * (x - 0.5)) ** 2


def test_f_and_its_autograd_derivative_match_the_function_written_by_hand(user_module):
    t = get_target(f"{user_module}:bump")
    x = np.linspace(-1, 1, 201)
    np.testing.assert_allclose(t.f(x), _bump(x), rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(t.df(x), _bump_derivative(x), rtol=1e-12, atol=1e-12)
    assert get_target(f"{user_module}:constant").df(x).tolist() == [0.0] * len(x)
    spec = callables.pinned(f"{user_module}:bump")
    assert spec.startswith(f"{user_module}:bump@") and len(spec.rsplit("@")[1]) == callables.DIGEST_CHARS
    assert get_target(spec).name == spec


def _study(tmp_path: Path, target: str):
    path = tmp_path / "s.toml"
    path.write_text(f'name = "s"\n[fixed]\nactivation = "tanh"\ntarget = "{target}"\n[grid]\nseed = [0, 1]\n')
    return load_study(path)


def test_a_study_pins_the_function_to_its_file_and_an_edit_makes_new_runs(user_module, tmp_path):
    before = _study(tmp_path, f"{user_module}:bump").configs
    assert before[0].target == callables.pinned(f"{user_module}:bump")
    assert _study(tmp_path, before[0].target).configs == before  # the pinned spec reads back
    (tmp_path / f"{user_module}.py").write_text(MODULE + "\n# edited\n")
    sys.modules.pop(user_module, None)
    callables.load.cache_clear()
    after = _study(tmp_path, f"{user_module}:bump").configs
    assert after[0].target != before[0].target and after[0].run_id != before[0].run_id
    with pytest.raises(UserError, match=r"fixed\.target: .*has changed since these runs were made"):
        _study(tmp_path, before[0].target)
    with pytest.raises(KeyError, match="has changed since these runs were made"):
        get_target(before[0].target)  # what a worker or a report with the other file says


@pytest.mark.parametrize(
    "function,message",
    [
        ("nosuchfunction", "has no function 'nosuchfunction'"),
        ("centred", "is not elementwise"),
        ("pole", "f(x) is not finite at x = 0"),
        ("listy", "returned a list, not a torch tensor"),
        ("raises", "raised RuntimeError: boom"),
    ],
)
def test_unusable_functions_are_refused_at_plan_time_naming_the_field(user_module, tmp_path, function, message):
    with pytest.raises(UserError) as e:
        _study(tmp_path, f"{user_module}:{function}")
    assert "fixed.target" in str(e.value) and message in str(e.value)


def test_a_missing_module_is_one_line_naming_the_field(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=r"fixed\.target: cannot import 'no_such_module_here': ModuleNotFoundError"):
        _study(tmp_path, "no_such_module_here:f")


def test_a_python_target_trains_alike_in_both_engines(user_module, tmp_path):
    c = _study(tmp_path, f"{user_module}:bump").configs[0]
    c = dataclasses.replace(c, width=8, n_points=100, epochs=20)
    ref, batched = train_reference(c), train_batched([c])[0]
    assert ref.status == batched.status == "ok"
    for k in ref.metrics:
        assert batched.metrics[k] == pytest.approx(ref.metrics[k], rel=1e-4), k


def test_the_installed_command_finds_a_module_beside_the_study_in_its_workers(user_module, tmp_path):
    """The console script's own directory, not the current one, heads its sys.path; the module is
    found in the current directory by the planning process and by two worker processes."""
    script = Path(sys.executable).parent / "runge-bench"
    if not script.exists():
        pytest.skip("the runge-bench console script is not installed beside this Python")
    (tmp_path / "s.toml").write_text(
        textwrap.dedent(f"""
        name = "s"
        [fixed]
        width = 8
        epochs = 10
        n_points = 60
        target = "{user_module}:bump"
        [grid]
        activation = ["tanh", "relu"]
        """)
    )
    done = subprocess.run(
        [str(script), "sweep", "s.toml", "--results-dir", "r", "--jobs", "2", "--engine", "reference"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and "2 ok, 0 diverged, 0 failed" in done.stdout, done.stdout + done.stderr
    done = subprocess.run(
        [str(script), "report", "s", "--results-dir", "r"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert f"{user_module}:bump@" in (tmp_path / "r" / "s" / "report.md").read_text()


@pytest.mark.slow
def test_dask_workers_import_the_users_module(user_module, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    from runge_bench.runs.plan import make_plan
    from runge_bench.runs.sweep import run_sweep

    study = _study(tmp_path, f"{user_module}:bump")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        summary = run_sweep(make_plan(study, tmp_path / "r"), backend="dask", scheduler=cluster.scheduler_address)
    assert summary.counts == {"ok": 2}
