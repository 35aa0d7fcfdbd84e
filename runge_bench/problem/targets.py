"""The targets: the functions a run fits (the Runge function and a family of others), each with
its exact derivative. "target" means this, and only this, across the package."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from . import callables
from .errors import UserError
from .formula import FormulaError, canonical, compiled, is_rational


def runge(x: np.ndarray) -> np.ndarray:
    """f(x) = 1 / (1 + 25 x^2)."""
    return 1.0 / (1.0 + 25.0 * x**2)


def runge_derivative(x: np.ndarray) -> np.ndarray:
    """f'(x) = -50 x / (1 + 25 x^2)^2."""
    return -50.0 * x / (1.0 + 25.0 * x**2) ** 2


def _runge_a(a: float) -> tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    return (lambda x: 1.0 / (1.0 + a * x**2)), (lambda x: -2.0 * a * x / (1.0 + a * x**2) ** 2)


@dataclass(frozen=True)
class Target:
    """A function on [-1, 1] with its exact derivative, numpy float64 -> float64 (written with
    operations that torch tensors share, so that tests can check the derivative by autograd).

    Attributes:
        name: the registry key used in study files (the `target` run parameter).
        doc: one line saying what it is, for reports.
        f, df: the function and its derivative.
        rational: whether f is a ratio of polynomials (AAA then recovers it exactly, to rounding);
            None where it is not known (a Python function).
    """

    name: str
    doc: str
    f: Callable[[np.ndarray], np.ndarray]
    df: Callable[[np.ndarray], np.ndarray]
    rational: bool | None = None  # a ratio of polynomials (a rational method can be exact); None: unknown


def _ns(x):
    """numpy for arrays, torch for tensors (imported only when a tensor is passed)."""
    if type(x).__module__.startswith("torch"):
        import torch

        return torch
    return np


def _sin4pi(x: np.ndarray) -> np.ndarray:
    return _ns(x).sin(4 * np.pi * x)


def _sin4pi_derivative(x: np.ndarray) -> np.ndarray:
    return 4 * np.pi * _ns(x).cos(4 * np.pi * x)


def _abs(x: np.ndarray) -> np.ndarray:
    return abs(x)


def _sign(x: np.ndarray) -> np.ndarray:
    return _ns(x).sign(x)


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("runge", "1/(1+25x²), the seed report's Runge function", runge, runge_derivative, True),
        Target("runge5", "1/(1+5x²), a gentler Runge bump", *_runge_a(5.0), True),
        Target("runge100", "1/(1+100x²), a sharper Runge bump", *_runge_a(100.0), True),
        Target("sin4pi", "sin(4πx), two periods: oscillatory", _sin4pi, _sin4pi_derivative, False),
        # The seed protocol's 1000 points (an even number, symmetric) never include x = 0, so
        # training never sees the step of f'; the dense grid (10,001 points) does, and scores f'(0)
        # against 0, the mean of the one-sided derivatives. Any continuous f' is >= 1 away from
        # sign(x) somewhere near 0, so f' max errors on this target are at least ~1 by construction.
        Target("abs", "|x|, a kink at 0: f' = sign(x), a step (f'(0) taken as 0)", _abs, _sign, False),
    )
}


def target_order(names: Iterable[str]) -> list[str]:
    """The distinct targets among `names`: the registered ones in registry order, then formulas
    in sorted order."""
    present = set(names)
    return [t for t in TARGETS if t in present] + sorted(present - set(TARGETS))


class TargetError(UserError, KeyError):
    """A target that cannot be had: a KeyError (as a registry lookup's) that the CLI prints as one
    line with exit status 2 (a UserError)."""

    def __str__(self) -> str:  # KeyError's would quote the message
        return str(self.args[0]) if self.args else ""


def get_target(name: str) -> Target:
    """A registered target by name, a formula in x (problem.formula; a run stores its canonical
    form) or a Python function "module:function@digest" (problem.callables); raises KeyError
    listing the valid names when it is none of these, or saying why the function cannot be used."""
    if name in TARGETS:
        return TARGETS[name]
    if callables.is_callable_spec(name):
        try:
            spec, f, df = callables.load(name)
        except callables.CallableError as e:
            raise TargetError(f"target {name!r}: {e}") from None
        return Target(spec, f"f = {spec} (Python; f' by autograd)", f, df)
    try:
        return formula_target(name)
    except FormulaError as e:
        raise KeyError(f"unknown target {name!r} (valid: {', '.join(TARGETS)}, or a formula in x: {e})") from None


@functools.lru_cache(maxsize=64)
def formula_target(text: str) -> Target:
    """The target f(x) = text, f' derived exactly (problem.formula)."""
    f, df = compiled(text, "x", 1)
    return Target(text, f"f(x) = {text}", f, df, is_rational(text))


def normalise_target(text: str) -> str:
    """The form a run stores and hashes: a registry name as is, a formula canonical, a Python
    function pinned to its source file's digest."""
    if text in TARGETS:
        return text
    if callables.is_callable_spec(text):
        return callables.pinned(text)
    return canonical(text)


def check_target(text: str) -> str | None:
    """Why `text` (not a registry name) cannot be a target, or None: a formula must parse, a
    Python function import and be elementwise; then f and f' must be finite on the dense grid of
    [-1, 1], and f' agree with a central difference of f there (a guard)."""
    from .data import dense_grid

    x = dense_grid()
    if callables.is_callable_spec(text):
        try:
            _, f, df = callables.load(text)
            why = callables.elementwise(f, x)
        except callables.CallableError as e:
            return str(e)
        except Exception as e:  # the user's function raised
            return f"{text} raised {type(e).__name__}: {e}"
        if why:
            return f"{text} {why}"
        try:
            return _check_on_grid(f, df, x)
        except Exception as e:  # the user's function raised
            return f"{text} raised {type(e).__name__}: {e}"
    try:
        f, df = compiled(canonical(text), "x", 1)
    except FormulaError as e:
        return str(e)
    return _check_on_grid(f, df, x)


def _check_on_grid(f, df, x: np.ndarray) -> str | None:
    for name, values in (("f", f(x)), ("f'", df(x))):
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            return f"{name}(x) is not finite at x = {x[bad[0]]:g}"
    h = 1e-6
    inner = x[1:-1]
    fd = (f(inner + h) - f(inner - h)) / (2 * h)
    exact = df(inner)
    # central difference: truncation ~h^2 f'''/6, rounding ~1e-16 |f| / h; the bound is far above both
    off = np.abs(fd - exact) > 1e-4 * (1.0 + np.abs(exact)) + 1e-9 * (1.0 + np.abs(f(inner))) / h
    if off.any():
        i = int(np.argmax(off))
        return f"f' from the formula ({exact[i]:.6g}) disagrees with f's central difference ({fd[i]:.6g}) at x = {inner[i]:g}"
    return None
