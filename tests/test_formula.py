"""Targets as formulas: parsed, never executed; derived exactly; checked on the grid; stored canonically."""

import re
import time

import numpy as np
import pytest

from runge_bench.engine.batched import train_batched
from runge_bench.engine.reference import train_reference
from runge_bench.problem import formula
from runge_bench.problem.config import RunConfig
from runge_bench.problem.errors import UserError
from runge_bench.problem.targets import check_target, get_target
from runge_bench.runs.study import load_study

HOSTILE = [
    ("__import__('os').system('touch /tmp/pwned')", "cannot call attribute access"),
    ("x.__class__", "attribute access is not allowed"),
    ("(lambda: 0)()", "cannot call a lambda"),
    ("[x for x in ()]", "a comprehension is not allowed"),
    ("(" * 100_000 + "x" + ")" * 100_000, "at most 500 characters"),
    ("(" * 60 + "x" + ")" * 60, "nested more than 40 deep"),
    ("9**9**9", "an exponent must be a number"),
    ("x**(10**10)", "an exponent must be a number"),
    ("x**1000", "the exponent 1000 is larger than 64"),
    ("'abc'", "str 'abc' is not a number"),
    ("x[0]", "a subscript is not allowed"),
    ("open('f')", "cannot call 'open'"),
    ("exp(x, 2)", "exp takes one argument"),
    ("y + 1", "unknown name 'y'"),
    ("1e400", "larger than 1e+06"),
    ("x if x else 1", "a conditional is not allowed"),
    ("x +* 2", "not a formula"),
    ("x % 2", "operator Mod is not allowed"),
]


@pytest.mark.parametrize("text,message", HOSTILE)
def test_hostile_formulas_are_refused_quickly_and_never_run(text, message, tmp_path):
    start = time.perf_counter()
    with pytest.raises(formula.FormulaError, match=re.escape(message)):
        formula.parse(text)
    assert time.perf_counter() - start < 1.0
    assert not (tmp_path / "pwned").exists()


def test_the_derivative_is_exact_and_the_canonical_form_reads_back():
    f, df = formula.compiled(formula.canonical("sin(6*x) * exp(-4*x**2)"))
    x = np.linspace(-1, 1, 101)
    np.testing.assert_allclose(f(x), np.sin(6 * x) * np.exp(-4 * x**2), rtol=1e-14, atol=1e-15)
    expected = (6 * np.cos(6 * x) - 8 * x * np.sin(6 * x)) * np.exp(-4 * x**2)  # by hand
    np.testing.assert_allclose(df(x), expected, rtol=1e-12, atol=1e-14)
    for text in ["abs(x)", "x**0.5 + pi*E", "erf(3*x)/2", "-x**-2+1", "sqrt(abs(x) + 1)", "2"]:
        c = formula.canonical(text)
        assert formula.canonical(c) == c
    assert formula.canonical("exp(-4*x**2)*sin(6*x)") == formula.canonical("sin(6*x) * exp(-4 * x**2)")
    assert get_target("abs(x)").df(np.array([-0.5, 0.0, 0.5])).tolist() == [-1.0, 0.0, 1.0]
    assert get_target("2").f(np.zeros(3)).tolist() == [2.0, 2.0, 2.0]  # a constant still gives an array


@pytest.mark.parametrize(
    "text,why",
    [
        ("1/x", "f(x) is not finite at x = 0"),
        ("sqrt(x)", "f(x) is not finite at x = -1"),
        ("log(x + 1)", "not finite at x = -1"),
    ],
)
def test_a_formula_must_be_finite_on_the_grid(text, why):
    assert why in check_target(text)


def _study(tmp_path, target: str):
    path = tmp_path / "f.toml"
    path.write_text(f'name = "f"\n[fixed]\nactivation = "tanh"\ntarget = "{target}"\n[grid]\nseed = [0, 1]\n')
    return load_study(path)


def test_study_files_take_formulas_canonically_and_refuse_bad_ones_naming_the_field(tmp_path):
    a = _study(tmp_path, "sin(6*x) * exp(-4*x**2)")
    b = _study(tmp_path, "exp(-4*x**2)*sin(6*x)")
    assert a.configs[0].target == "exp(-4*x**2)*sin(6*x)" and [c.run_id for c in a.configs] == [
        c.run_id for c in b.configs
    ]
    assert _study(tmp_path, "runge").configs[0].run_id == RunConfig("tanh", seed=0).run_id  # names keep their ids
    with pytest.raises(UserError, match=r"fixed\.target: .*f\(x\) is not finite at x = 0"):
        _study(tmp_path, "1/x")
    with pytest.raises(UserError, match=r"fixed\.target: .*cannot call 'open'"):
        _study(tmp_path, "open(x)")


def test_a_formula_target_trains_alike_in_both_engines():
    c = RunConfig("tanh", seed=3, width=8, n_points=100, epochs=20, target=formula.canonical("sin(6*x)*exp(-4*x**2)"))
    ref, batched = train_reference(c), train_batched([c])[0]
    assert ref.status == batched.status == "ok"
    for k in ref.metrics:
        assert batched.metrics[k] == pytest.approx(ref.metrics[k], rel=1e-4), k


def test_a_formula_activation_has_exact_derivatives_and_trains_in_both_engines():
    import torch

    from runge_bench.problem.activations import get_activation

    name = formula.canonical("z * tanh(log(1 + exp(z)))", "z")  # Mish, written out
    act = get_activation(name)
    z = torch.linspace(-8, 8, 801, dtype=torch.float64, requires_grad=True)
    value = act.module()(z)
    (first,) = torch.autograd.grad(value.sum(), z, create_graph=True)
    (second,) = torch.autograd.grad(first.sum(), z)
    a, s, s2 = act.derivatives(z.detach())
    torch.testing.assert_close(a, value.detach(), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(s, first.detach(), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(s2, second, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(a, get_activation("mish").derivatives(z.detach())[0], rtol=1e-10, atol=1e-12)
    c = RunConfig(name, seed=1, width=8, n_points=100, epochs=20)
    ref, batched = train_reference(c), train_batched([c])[0]
    assert batched.engine == "batched" and ref.status == batched.status == "ok"
    for k in ref.metrics:
        assert batched.metrics[k] == pytest.approx(ref.metrics[k], rel=1e-4), k


def test_study_files_take_activation_formulas_and_refuse_bad_ones(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text('name = "a"\n[grid]\nactivation = ["tanh", "z*tanh(log(1+exp(z)))"]\nseed = [0]\n')
    study = load_study(path)
    assert [c.activation for c in study.configs] == ["tanh", "z*tanh(log(exp(z) + 1))"]
    path.write_text('name = "a"\n[fixed]\nactivation = "1/z"\n')
    with pytest.raises(UserError, match=r"fixed\.activation: .*sigma\(z\) is not finite at z = 0"):
        load_study(path)
    path.write_text('name = "a"\n[fixed]\nactivation = "z.__class__"\n')
    with pytest.raises(UserError, match=r"fixed\.activation: .*attribute access is not allowed"):
        load_study(path)


def test_training_registered_problems_never_imports_sympy():
    """A worker that trains the registered targets and activations does not pay sympy's import
    (tens of MB per process, which the memory estimate does not count)."""
    import subprocess
    import sys

    code = (
        "import sys; from runge_bench.engine.batched import train_batched; from runge_bench.runs import workers; "
        "from runge_bench.runs.study import load_study; from runge_bench.problem.config import RunConfig; "
        "train_batched([RunConfig('tanh', width=4, n_points=20, epochs=2)]); "
        "assert 'sympy' not in sys.modules, 'sympy imported'"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
