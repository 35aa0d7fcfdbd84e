"""Targets written as Python: `target = "mypkg.mod:f"` imports f, a function of a float64 torch
tensor, elementwise, and takes f' from it by autograd.

Unlike a formula (problem.formula, never executed), this runs the user's code, in the process that
plans a study and in every worker that trains or reports its runs: an explicit choice, for what a
formula cannot say (piecewise definitions, special functions, a lookup in the user's own code).

Identity: a stored run must say which code it fitted, so the spec a run stores (and its id hashes)
carries the SHA-256 of the source file that defines f, cut to DIGEST_CHARS hex digits:
"mypkg.mod:f@3fa2c1d0e9b2". Editing that file makes new runs (a sweep trains them; the old ones
stay, under their ids); a worker or a report that imports a different file than the runs were
trained with refuses, naming both digests. Helpers f calls from other files are not hashed.

Imports look in the current directory first (as `python -m` and uvicorn do): a `mymod.py` beside
the study file works when the sweep is started from there. Local workers inherit the directory;
Dask workers on other machines need the module importable there (installed, or a shared
filesystem), and the digest check catches a different copy.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import inspect
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

DIGEST_CHARS = 12
SPEC = re.compile(
    rf"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*):(?P<name>[A-Za-z_]\w*)(?:@(?P<digest>[0-9a-f]{{{DIGEST_CHARS}}}))?$"
)


class CallableError(ValueError):
    """Why a "module:function" spec cannot be a target, in one line."""


def is_callable_spec(text: object) -> bool:
    """Whether `text` is written as "module:function" (optionally "@digest")."""
    return isinstance(text, str) and SPEC.match(text) is not None


IMPORT_BYTES: dict[str, float] = {}  # module -> the memory its first import took here (resident set growth)


def _rss() -> float:
    """This process's resident memory in bytes (Linux; 0 where it cannot be read)."""
    try:
        with open("/proc/self/statm") as f:
            return float(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0.0


def import_bytes(spec: str) -> float:
    """The memory importing spec's module took in this process (0 before it is imported here, or
    for a module imported before the suite looked)."""
    m = SPEC.match(spec)
    return IMPORT_BYTES.get(m["module"], 0.0) if m else 0.0


def _import(module: str, name: str) -> tuple[Callable, str]:
    """The function and its source file's digest."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    before, bytecode = _rss(), sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # no __pycache__ left beside the user's module (a dry run writes nothing)
    try:
        mod = importlib.import_module(module)
    except (Exception, SystemExit) as e:  # the user's module: anything it raises on import, sys.exit too
        raise CallableError(f"cannot import {module!r}: {type(e).__name__}: {e}") from None
    finally:
        sys.dont_write_bytecode = bytecode
    IMPORT_BYTES.setdefault(module, max(0.0, _rss() - before))
    fn = getattr(mod, name, None)
    if not callable(fn):
        raise CallableError(f"module {module!r} ({getattr(mod, '__file__', '?')}) has no function {name!r}")
    try:
        source = inspect.getsourcefile(fn) or mod.__file__
        data = Path(source).read_bytes()
    except (TypeError, OSError) as e:
        raise CallableError(f"{module}:{name} has no readable source file to fingerprint ({e})") from None
    return fn, hashlib.sha256(data).hexdigest()[:DIGEST_CHARS]


@functools.lru_cache(maxsize=32)
def load(spec: str) -> tuple[str, Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]:
    """The pinned spec ("module:function@digest"), f and f' on float64 arrays (or torch tensors,
    passed through to the user's function). A spec that carries a digest must match the file."""
    m = SPEC.match(spec)
    if m is None:
        raise CallableError(f'{spec!r} is not "module:function" (a dotted module path, a colon, a name)')
    fn, digest = _import(m["module"], m["name"])
    if m["digest"] is not None and m["digest"] != digest:
        raise CallableError(
            f"{m['module']}:{m['name']} has changed since these runs were made: its source file's digest is "
            f"{digest}, the runs were trained with {m['digest']} (restore that file to use these runs; a sweep "
            f"of the study file trains the new code as new runs beside them, and `sweep --retry-failed` trains "
            f"again runs stored as failed for this reason)"
        )

    def call(t):
        # The user's code gets a copy, and one that it changed in place is refused: the suite's own
        # points must never move (they are the data every run trains on), and f' by autograd is
        # wrong for a function whose input was rewritten under it.
        kept = t.detach().clone()
        y = fn(t)
        if not torch_equal(t.detach(), kept):
            raise CallableError(f"{spec} changed its input in place: a target must compute f(x) without modifying x")
        return y

    def f(x):
        import torch

        if isinstance(x, torch.Tensor):
            return call(x.clone())
        with torch.no_grad():
            return _as_array(call(torch.tensor(np.asarray(x, dtype=np.float64))), np.shape(x), spec)

    def df(x):
        import torch

        t = torch.tensor(np.asarray(x, dtype=np.float64)).requires_grad_(True)
        with torch.enable_grad():
            y = call(t)
            if not isinstance(y, torch.Tensor) or not y.requires_grad:
                return np.zeros(np.shape(x))  # a constant (or detached) function: f' = 0
            (g,) = torch.autograd.grad(y.sum(), t, allow_unused=True)
        return np.zeros(np.shape(x)) if g is None else g.detach().numpy().astype(np.float64)

    return f"{m['module']}:{m['name']}@{digest}", f, df


def torch_equal(a, b) -> bool:
    """Whether two tensors hold the same values (nan equal to nan)."""
    import torch

    return bool(torch.allclose(a, b, rtol=0, atol=0, equal_nan=True))


def _as_array(y, shape: tuple, spec: str) -> np.ndarray:
    import torch

    if not isinstance(y, torch.Tensor):
        raise CallableError(f"{spec} returned a {type(y).__name__}, not a torch tensor")
    if tuple(y.shape) != tuple(shape):
        raise CallableError(f"{spec} returned shape {tuple(y.shape)} for an input of shape {tuple(shape)}")
    return y.detach().numpy().astype(np.float64)


def pinned(spec: str) -> str:
    """The spec with its source file's digest, the form a run stores and hashes."""
    return load(spec)[0]


def elementwise(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> str | None:
    """Why f is not elementwise on x, or None: f' by autograd of sum(f(x)) is f's derivative only
    when each output depends on its own input alone, checked by evaluating a shuffled and a split
    input."""
    y = f(x)
    perm = np.random.default_rng(0).permutation(len(x))
    half = len(x) // 2
    # close, not equal: a vectorised kernel's tail may round differently from its body
    same = functools.partial(np.allclose, rtol=1e-10, atol=1e-12)
    if not same(f(x[perm]), y[perm]) or not same(f(x[:half]), y[:half]):
        return "is not elementwise (f of a shuffled or shortened input is not f's values shuffled or shortened)"
    return None
