"""Formulas in one variable, read without ever executing them.

A formula (a study's `target = "sin(6*x) * exp(-4*x**2)"`) is parsed by Python's `ast` into a tree
whose every node is checked against a whitelist: numbers, the variable, pi and E, + - * / **, unary
minus and plus, and calls of the elementary functions in FUNCTIONS. Anything else (another name,
attribute access, a call of anything else, a lambda, a comprehension, a string, a subscript) is a
FormulaError naming what was found. Bounds keep a hostile formula from taking time or memory before
it is refused: its length, its nesting (checked before Python parses it), its node count, the size
of a literal, and an exponent, which must be a literal number of at most MAX_EXPONENT in size
(`9**9**9` and `x**(10**10)` are refused, not expanded; write exp(a*log(x)) for other powers).

The checked tree becomes a sympy expression (sympy differentiates it exactly; it is never built by
sympify, which evaluates strings); `str` of that expression is the formula's canonical form, the one
a run stores and its id hashes, so that the same function written the same way is the same run.
"""

from __future__ import annotations

import ast
import functools
import math
from collections.abc import Callable

import numpy as np

# sympy is imported where a formula is read (a tenth of a second and tens of MB that a worker
# training registered targets and activations never needs).

MAX_CHARS = 500
MAX_DEPTH = 40  # nested parentheses and calls
MAX_NODES = 300
MAX_LITERAL = 1e6
MAX_EXPONENT = 64

FUNCTIONS = ("sin", "cos", "tan", "exp", "log", "sqrt", "abs", "tanh", "sinh", "cosh", "atan", "erf")
CONSTANTS = ("pi", "E")


def _sympy_names(sp) -> tuple[dict, dict]:
    """FUNCTIONS and CONSTANTS as sympy's objects."""
    functions = {name: getattr(sp, "Abs" if name == "abs" else name) for name in FUNCTIONS}
    return functions, {"pi": sp.pi, "E": sp.E}


_OPERATORS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_WHAT = {  # how a refused node is named in the error
    ast.Attribute: "attribute access",
    ast.Lambda: "a lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a comprehension",
    ast.Subscript: "a subscript",
    ast.List: "a list",
    ast.Tuple: "a tuple",
    ast.Dict: "a dict",
    ast.Compare: "a comparison",
    ast.BoolOp: "a boolean operator",
    ast.IfExp: "a conditional",
    ast.NamedExpr: "an assignment",
    ast.Starred: "a starred argument",
    ast.JoinedStr: "a string",
    ast.Await: "await",
}


class FormulaError(ValueError):
    """A formula that is refused; the message says why, in one line."""


def _depth(text: str) -> int:
    depth = deepest = 0
    for ch in text:
        if ch in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in ")]}":
            depth -= 1
    return deepest


def parse(text: str, variable: str = "x"):
    """The sympy expression of a formula in `variable` (a real symbol), checked node by node."""
    import sympy as sp

    if not isinstance(text, str):
        raise FormulaError(f"a formula is a string, got {text!r}")
    if len(text) > MAX_CHARS:
        raise FormulaError(f"a formula is at most {MAX_CHARS} characters, got {len(text)}")
    if _depth(text) > MAX_DEPTH:
        raise FormulaError(f"nested more than {MAX_DEPTH} deep")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        raise FormulaError(f"not a formula ({type(e).__name__}: {getattr(e, 'msg', e)})") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise FormulaError(f"more than {MAX_NODES} parts: write a shorter formula")
    expr = _convert(tree.body, sp.Symbol(variable, real=True), variable, sp, *_sympy_names(sp))
    if expr.has(sp.zoo, sp.nan, sp.oo, -sp.oo):  # sympy's names for these: "zoo", "nan", "oo"
        raise FormulaError("it is infinite or undefined as written (a division by zero, log(0), 0/0)")
    return expr


def _number(node: ast.AST) -> float | int | None:
    """A literal number (or the negation of one), else None."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _number(node.operand)
        return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return node.value
    return None


def _convert(node: ast.AST, symbol, variable: str, sp, functions: dict, constants: dict):
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise FormulaError(f"{type(v).__name__} {v!r} is not a number")
        if not np.isfinite(v) or abs(v) > MAX_LITERAL:
            raise FormulaError(f"the number {v!r} is larger than {MAX_LITERAL:g}")
        return sp.Integer(v) if isinstance(v, int) else sp.Float(v)
    if isinstance(node, ast.Name):
        if node.id == variable:
            return symbol
        if node.id in constants:
            return constants[node.id]
        raise FormulaError(f"unknown name {node.id!r} (the variable is {variable}; constants: pi, E)")
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _convert(node.operand, symbol, variable, sp, functions, constants)
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left = _convert(node.left, symbol, variable, sp, functions, constants)
        if isinstance(node.op, ast.Pow):
            p = _number(node.right)
            if p is None:
                raise FormulaError("an exponent must be a number (for other powers write exp(a*log(x)))")
            if abs(p) > MAX_EXPONENT:
                raise FormulaError(f"the exponent {p!r} is larger than {MAX_EXPONENT}")
            _check_power(left, p)
            power = left ** _convert(node.right, symbol, variable, sp, functions, constants)
            if power.is_Pow and power.exp.is_number and abs(float(power.exp)) > MAX_EXPONENT:
                raise FormulaError(f"powers of powers multiply to an exponent above {MAX_EXPONENT}: write one power")
            return power
        right = _convert(node.right, symbol, variable, sp, functions, constants)
        return {ast.Add: sp.Add, ast.Mult: sp.Mul}.get(type(node.op), _binary(node.op))(left, right)
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in functions:
            called = repr(name) if name else _WHAT.get(type(node.func), type(node.func).__name__)
            raise FormulaError(f"cannot call {called} (functions: {', '.join(FUNCTIONS)})")
        if node.keywords or len(node.args) != 1:
            raise FormulaError(f"{name} takes one argument")
        return functions[name](_convert(node.args[0], symbol, variable, sp, functions, constants))
    if isinstance(node, ast.BinOp):
        raise FormulaError(f"operator {type(node.op).__name__} is not allowed (allowed: + - * / **)")
    raise FormulaError(f"{_WHAT.get(type(node), type(node).__name__)} is not allowed in a formula")


MAX_MAGNITUDE = 300  # decades: a constant power beyond 1e300 (or below 1e-300) is refused, never computed


def _check_power(base, p: float) -> None:
    """A constant raised to a power is computed exactly by sympy: refuse it, before it is
    computed, when its size is beyond float64's (`((10**64)**64)**64` would take minutes and
    gigabytes, and could only be infinite in training)."""
    if not base.is_number or base.is_zero:
        return
    try:
        decades = abs(p) * math.log10(abs(complex(base.evalf(20))))
    except (OverflowError, ValueError, TypeError):
        decades = math.inf
    if not decades <= MAX_MAGNITUDE:
        raise FormulaError(
            f"a constant raised to {p!r} is beyond float64's range (about 1e{MAX_MAGNITUDE}): write a smaller one"
        )


def _binary(op: ast.operator) -> Callable:
    if isinstance(op, ast.Sub):
        return lambda a, b: a - b
    return lambda a, b: a / b


@functools.cache
def _printer():
    """sympy's printing in this module's names, so that a canonical form parses back to itself."""
    from sympy.printing.str import StrPrinter

    class Printer(StrPrinter):
        def _print_Abs(self, expr):
            return f"abs({self._print(expr.args[0])})"

    return Printer()


def canonical(text: str, variable: str = "x") -> str:
    """The formula's canonical form: sympy's printing of its expression (args in sympy's order),
    in names this parser reads back: canonical(canonical(t)) == canonical(t)."""
    return _printer().doprint(parse(text, variable))


def is_rational(text: str, variable: str = "x") -> bool:
    """Whether the formula is a ratio of polynomials in `variable` (sympy decides)."""
    expr = parse(text, variable)
    return bool(expr.is_rational_function(*expr.free_symbols))


@functools.lru_cache(maxsize=256)
def compiled(text: str, variable: str = "x", order: int = 1) -> tuple[Callable[[np.ndarray], np.ndarray], ...]:
    """numpy functions (float64 arrays in and out) of the formula and its derivatives up to
    `order`, derived exactly by sympy."""
    import sympy as sp

    expr = parse(text, variable)
    symbol = next(iter(expr.free_symbols), sp.Symbol(variable, real=True))
    out = []
    for k in range(order + 1):
        e = sp.diff(expr, symbol, k) if k else expr
        fn = sp.lambdify(symbol, e, modules=[{"erf": _erf}, "numpy"])
        out.append(_array_valued(fn))
    return tuple(out)


def _erf(x):
    from scipy.special import erf

    return erf(x)


def _array_valued(fn: Callable) -> Callable[[np.ndarray], np.ndarray]:
    def call(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        with np.errstate(all="ignore"):
            y = fn(x)
        return np.broadcast_to(np.asarray(y, dtype=np.float64), x.shape).copy()

    return call


def _torch_functions() -> dict:
    """sympy's names -> torch functions, for lambdify (DiracDelta, the derivative of a jump, is 0
    almost everywhere, as ReLU's sigma'' is taken to be)."""
    import torch

    def on_numbers_too(fn: Callable) -> Callable:
        # sympy keeps a function of a constant exact (sqrt(2), erf's 2/sqrt(pi)): lambdify then
        # calls it on a Python number, which torch's functions refuse; a number gives a float64 number
        return lambda a: (
            fn(a) if isinstance(a, torch.Tensor) else fn(torch.tensor(float(a), dtype=torch.float64)).item()
        )

    names = {
        "sin": torch.sin,
        "cos": torch.cos,
        "tan": torch.tan,
        "exp": torch.exp,
        "log": torch.log,
        "sqrt": torch.sqrt,
        "Abs": torch.abs,
        "tanh": torch.tanh,
        "sinh": torch.sinh,
        "cosh": torch.cosh,
        "atan": torch.atan,
        "erf": torch.erf,
        "sign": torch.sign,
    }
    return {
        **{name: on_numbers_too(fn) for name, fn in names.items()},
        "DiracDelta": torch.zeros_like,
        "pi": math.pi,
        "E": math.e,
    }


@functools.lru_cache(maxsize=64)
def torch_derivatives(text: str, variable: str = "z") -> tuple[Callable, ...]:
    """torch functions (tensor in, tensor of its dtype and shape out) of the formula and its first
    and second derivatives, derived exactly by sympy."""
    import sympy as sp
    import torch

    expr = parse(text, variable)
    symbol = next(iter(expr.free_symbols), sp.Symbol(variable, real=True))
    out = []
    for k in range(3):
        e = sp.diff(expr, symbol, k) if k else expr
        # sign as a function call (the plain code printer writes a Python conditional, not elementwise)
        e = e.replace(sp.sign, sp.Function("sgn"))
        fn = sp.lambdify(symbol, e, modules=[{**_torch_functions(), "sgn": torch.sign}])

        def call(z, fn=fn):
            y = fn(z)
            return y if isinstance(y, torch.Tensor) and y.shape == z.shape else torch.full_like(z, float(y)) + 0 * z

        out.append(call)
    return tuple(out)
