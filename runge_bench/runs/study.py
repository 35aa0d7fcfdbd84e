"""Study files: TOML -> a validated, frozen list of RunConfigs (the cartesian product of the grid).

    name = "seed-replication"
    description = "..."
    question = "..."             # optional: the one question the study answers (its report opens with it)
    primary = "grid_df_mse"      # optional: the metric its headline findings use (this one by default)
    kernels = "torch"            # optional: the batched engine's kernels for every run (auto by default),
                                 # so that comparisons between activations never mix engines
    [[hypothesis]]               # optional, declared before training: tested in one family, confirmatory
    better = "tanh"              # tanh's error below relu's ...
    worse = "relu"
    metric = "grid_df_mse"       # ... on this metric (the primary by default)
    where = { width = 64 }       # ... in these cells (every cell when left out: tested across them)
    better_at = { lr = 1e-2 }    # optional, with worse_at: each side at its own setting of these
    worse_at = { lr = 3.16e-4 }  # fields (a tuned comparison), paired by seed
    [fixed]                      # scalars shared by every run
    width = 64
    [grid]                       # lists; the runs are their cartesian product
    activation = ["relu", "tanh"]
    seed = { start = 0, stop = 20 }   # range shorthand: stop excluded, optional step
    lr = { log_uniform = [1e-4, 1e-2], n = 16, seed = 0 }   # random draws (float keys; or uniform = [a, b]),
                                 # made here, rounded to 6 significant digits: the same file, the same runs
    [[case]]                     # optional: cases, each a table of scalars; the runs are the
    dtype = "float32"            # grid's product times the cases (for settings that go together,
    [[case]]                     # such as the precision study's regimes)
    dtype = "float64"
    optimizer = "adam+lm"

Every mistake is a UserError naming the file and the key.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from ..problem.activations import ACTIVATIONS, check_formula_activation
from ..problem.callables import is_callable_spec
from ..problem.config import FLOAT_FIELDS, RunConfig, checkpoint_conflict, stages_conflict
from ..problem.data import n_val
from ..problem.errors import UserError
from ..problem.formula import canonical
from ..problem.hypothesis import DEFAULT_PRIMARY, Hypothesis
from ..problem.targets import TARGETS, check_target, normalise_target
from ..problem.vocabulary import CHECKPOINTS, MAX_STAGES, METRICS, OPTIMIZERS, REFINE_ITERS

KERNELS = ("auto", "native", "torch")  # the batched engine's kernels (the sweep's --kernels)
MAX_RUNS = 100_000  # a grid larger than this is almost certainly a typo
MAX_STUDY_BYTES = 1 << 20  # read whole: a study is a few hundred bytes; a larger file is not one
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")  # fullmatch: "$" would let a trailing "\n" in


@dataclass(frozen=True)
class Study:
    """A parsed study: its name, description, the axes it sweeps, and its runs in plan order."""

    name: str
    description: str
    path: Path | None
    axes: dict[str, tuple]  # swept key -> values, in file order
    fixed: dict[str, Any]
    configs: tuple[RunConfig, ...]
    cases: tuple[dict[str, Any], ...] = ()  # [[case]] tables, in file order
    draws: dict[str, str] = field(default_factory=dict)  # a randomly drawn axis -> how it was drawn
    question: str = ""  # the one question the study answers, for its report's "At a glance"
    primary: str = DEFAULT_PRIMARY  # the metric its headline findings use
    hypotheses: tuple[Hypothesis, ...] = ()  # declared in the file ([[hypothesis]])
    kernels: str = "auto"  # the batched engine's kernels the study asks for (the sweep's --kernels default)


def _int(lo: int, hi: int) -> Callable[[Any], str | None]:
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, int):
            return f"must be an integer, got {v!r}"
        if not lo <= v <= hi:
            return f"must be between {lo} and {hi}, got {v}"
        return None

    return check


def _float(lo: float, hi: float, *, open_lo: bool = False, open_hi: bool = False):
    def check(v: Any) -> str | None:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return f"must be a number, got {v!r}"
        if v != v or (v < lo or (open_lo and v == lo)) or (v > hi or (open_hi and v == hi)):
            lo_b, hi_b = "(" if open_lo else "[", ")" if open_hi else "]"
            return f"must be in {lo_b}{lo:g}, {hi:g}{hi_b}, got {v}"
        return None

    return check


def _choice(options: Callable[[], list[str]], what: str):
    """A check against a set of names read when a study is checked (a registry may grow after
    import: an activation or target registered in Python is a valid name in a study file)."""

    def check(v: Any) -> str | None:
        if not isinstance(v, str):
            return f"must be a string, got {v!r}"
        if v not in (valid := options()):
            return f"unknown {what} {v!r} (valid: {', '.join(valid)})"
        return None

    return check


def _name_or_formula(names: Callable[[], Any], check: Callable[[str], str | None], what: str, variable: str):
    """A check for a key that takes a registered name or a formula in `variable` (problem.formula),
    the formula checked by `check` (finite, derivative against a central difference)."""

    def run(v: Any) -> str | None:
        if not isinstance(v, str):
            return f"must be a string, got {v!r}"
        if v in names():
            return None
        why = check(v)
        if why is None:
            return None
        return f"unknown {what} {v!r} (valid: {', '.join(names())}) nor a usable formula in {variable}: {why}"

    return run


def _target(v: Any) -> str | None:
    """A registered target, a formula in x, or a Python function "module:function"."""
    if is_callable_spec(v):
        return check_target(v)
    return _name_or_formula(lambda: list(TARGETS), check_target, "target", "x")(v)


def _batch_size(v: Any) -> str | None:
    if v == "full":
        return None
    return _int(1, 1_000_000)(v) and f'must be a positive integer or "full", got {v!r}'


# The keys a study may set, with their checks. Bounds reject what cannot be meant (width 10^9).
FIELDS: dict[str, Callable[[Any], str | None]] = {
    "activation": _name_or_formula(lambda: sorted(ACTIVATIONS), check_formula_activation, "activation", "z"),
    "seed": _int(0, 2**31 - 1),
    "width": _int(1, 4096),
    "depth": _int(1, 32),
    "deriv_weight": _float(0.0, 1e6),
    "lr": _float(0.0, 1e6, open_lo=True),
    "epochs": _int(1, 1_000_000),
    "batch_size": _batch_size,
    "n_points": _int(3, 1_000_000),
    "val_fraction": _float(0.0, 1.0, open_lo=True, open_hi=True),
    "dtype": _choice(lambda: ["float32", "float64"], "dtype"),
    "target": _target,
    "optimizer": _choice(lambda: list(OPTIMIZERS), "optimizer"),
    "lbfgs_iters": _int(0, 1_000_000),
    "lm_iters": _int(0, 100_000),
    "noise": _float(0.0, 10.0),
    "checkpoint": _choice(lambda: list(CHECKPOINTS), "checkpoint"),
    "gn_iters": _int(0, 100_000),
    "stages": _int(1, MAX_STAGES),
}
assert set(FIELDS) == {f.name for f in fields(RunConfig)}


def _normalise(key: str, v: Any) -> Any:
    if key in FLOAT_FIELDS:
        return float(v)
    if key == "batch_size" and v == "full":
        return None
    if key == "target":
        return normalise_target(v)  # a formula canonical, a Python function pinned to its file's digest
    if key == "activation" and v not in ACTIVATIONS:
        return canonical(v, "z")
    return v


def _expand_range(v: dict, path: Path, field: str) -> list[int]:
    extra = set(v) - {"start", "stop", "step"}
    if extra or "stop" not in v:
        raise UserError(
            "a range is { start = A, stop = B, step = C } (stop excluded; start, step optional)", path=path, field=field
        )
    start, stop, step = v.get("start", 0), v["stop"], v.get("step", 1)
    for name, x in (("start", start), ("stop", stop), ("step", step)):
        if isinstance(x, bool) or not isinstance(x, int):
            raise UserError(f"range {name} must be an integer, got {x!r}", path=path, field=field)
    # Counted arithmetically: len(range(...)) overflows past 2**63 values.
    count = 0 if step == 0 else max(0, -((start - stop) // step))
    if step == 0 or count > MAX_RUNS:
        raise UserError(f"range {start}..{stop} step {step} is empty or too long", path=path, field=field)
    return list(range(start, stop, step))


def _table(doc: dict, key: str, path: Path) -> dict:
    table = doc.get(key, {})
    if not isinstance(table, dict):
        raise UserError(f"must be a table ([{key}]), got {type(table).__name__}", path=path, field=key)
    return table


def load_study(path: str | Path, overrides: list[str] | None = None, name: str | None = None) -> Study:
    """Read and validate a study file; raise UserError naming the file and key on any problem.

    overrides: `--set` items, "key=value" (a value: fixed), "key=a,b,c" (a list) or "key=a:b" (a
    range, b excluded: grid), applied to the file's [fixed] and [grid] before validation. An
    overridden study is another plan, so it gets another name (and results directory): `name`, or
    the file's name with the overrides appended; a store never mixes two plans by accident."""
    path = Path(path)
    if not path.exists():
        raise UserError("no such study file", path=path)
    if not path.is_file():
        raise UserError("is not a file (a study is a .toml file)", path=path)
    if (size := path.stat().st_size) > MAX_STUDY_BYTES:
        raise UserError(f"is {size / 1e6:.1f} MB; a study file is at most {MAX_STUDY_BYTES // 1024} KiB", path=path)
    try:
        text = path.read_bytes().decode("utf-8")
    except PermissionError:
        raise UserError("cannot read the file (permission denied)", path=path) from None
    except UnicodeDecodeError as e:
        raise UserError(f"not valid UTF-8 (byte {e.start})", path=path) from None
    except OSError as e:
        raise UserError(f"cannot read the file ({e.strerror})", path=path) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"malformed TOML: {e}", path=path) from None
    if overrides:
        doc = apply_overrides(doc, overrides)
    if name is not None:
        doc = {**doc, "name": name}
    return parse_study(doc, path)


def _override_value(raw: str) -> Any:
    """A --set value: TOML where it parses as TOML (numbers, "strings", true), else the bare word."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def apply_overrides(doc: dict, overrides: list[str]) -> dict:
    """The study document with `--set` items applied (see load_study); its name gains them."""
    fixed, grid = dict(doc.get("fixed") or {}), dict(doc.get("grid") or {})
    for item in overrides:
        key, sep, raw = item.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not key or not raw:
            raise UserError(f"expected key=value, key=a,b,c or key=a:b, got {item!r}", field="--set")
        if "#" in item or any(ch in item for ch in "\n\r\t\x00"):
            # TOML would read "5 # x" as 5 and drop the rest: a value is taken whole or not at all.
            raise UserError(
                f"a value may hold no '#' and no line breaks or control characters, got {item!r}", field="--set"
            )
        fixed.pop(key, None)
        grid.pop(key, None)
        if ":" in raw and "," not in raw and not is_callable_spec(raw):  # "mymod:f" is a value, not a range
            start, _, stop = raw.partition(":")
            grid[key] = {"start": _override_value(start or "0"), "stop": _override_value(stop)}
        elif "," in raw:
            grid[key] = [_override_value(v.strip()) for v in raw.split(",")]
        else:
            fixed[key] = _override_value(raw)
    slug = "-".join(re.sub(r"[^A-Za-z0-9._]+", ".", item.strip()) for item in overrides)
    name = f"{doc.get('name', 'study')}-{slug}"
    if len(name) > 64 or not NAME_RE.fullmatch(name):
        digest = hashlib.sha256("\n".join(overrides).encode()).hexdigest()[:8]
        name = f"{str(doc.get('name', 'study'))[:50]}-set-{digest}"
    description = f"{doc.get('description', '')} (with --set {' '.join(overrides)})".strip()
    return {**doc, "name": name, "description": description, "fixed": fixed, "grid": grid}


def parse_study(doc: dict, path: Path) -> Study:
    """Validate a parsed TOML document as a study (see the module docstring)."""
    name, description, question = _header(doc, path)
    fixed, grid = _table(doc, "fixed", path), _table(doc, "grid", path)
    for table_name, table in (("fixed", fixed), ("grid", grid)):
        for key in table:
            if key not in FIELDS:
                raise UserError(f"unknown key (valid: {', '.join(FIELDS)})", path=path, field=f"{table_name}.{key}")
    both = set(fixed) & set(grid)
    if both:
        raise UserError("set in both [fixed] and [grid]", path=path, field=sorted(both)[0])
    values = {key: _fixed_value(key, v, path) for key, v in fixed.items()}
    axes = {key: _grid_axis(key, v, path) for key, v in grid.items()}
    draws = {key: _draw(key, v, path, f"grid.{key}")[1] for key, v in grid.items() if is_draw(v)}
    cases = _cases(doc, set(values) | set(axes), path)
    if (
        "activation" not in values
        and "activation" not in axes
        and not (cases and all("activation" in c for c in cases))
    ):
        raise UserError("required: set activation in [fixed] or [grid]", path=path, field="activation")
    n_runs = math.prod(len(vs) for vs in axes.values()) * max(1, len(cases))
    if n_runs > MAX_RUNS:
        raise UserError(f"the grid has {n_runs} runs, more than {MAX_RUNS}", path=path, field="grid")
    configs, seen = [], set()
    for combo in itertools.product(*axes.values()):
        for i, case in enumerate(cases or [{}]):
            config = _config({**values, **dict(zip(axes, combo)), **case}, path, f"case[{i}]" if cases else "fixed")
            _check_sizes(config, path)
            if config.run_id in seen:
                raise UserError(
                    "two runs of the plan are the same run (a repeated case, or an iteration count "
                    "that the optimizer does not use)",
                    path=path,
                    field=f"case[{i}]" if cases else "grid",
                )
            seen.add(config.run_id)
            configs.append(config)
    primary = _primary(doc, path)
    kernels = doc.get("kernels", "auto")
    if kernels not in KERNELS:
        raise UserError(f"must be one of {', '.join(KERNELS)}, got {kernels!r}", path=path, field="kernels")
    return Study(
        kernels=kernels,
        name=name,
        description=description,
        question=question,
        primary=primary,
        hypotheses=_hypotheses(doc, path, primary, configs),
        path=path,
        axes=axes,
        fixed=values,
        configs=tuple(configs),
        cases=tuple(cases),
        draws=draws,
    )


def _cases(doc: dict, taken: set[str], path: Path) -> list[dict[str, Any]]:
    """The [[case]] tables, checked: scalars of known keys, none set in [fixed] or [grid]."""
    raw = doc.get("case", [])
    if not isinstance(raw, list) or not all(isinstance(c, dict) for c in raw):
        raise UserError("cases are tables: write each as [[case]] followed by its keys", path=path, field="case")
    cases = []
    for i, case in enumerate(raw):
        where = f"case[{i}]"
        if not case:
            raise UserError("an empty case (give it at least one key)", path=path, field=where)
        out = {}
        for key, v in case.items():
            if key not in FIELDS:
                raise UserError(f"unknown key (valid: {', '.join(FIELDS)})", path=path, field=f"{where}.{key}")
            if key in taken:
                raise UserError("set in a case and in [fixed] or [grid]", path=path, field=f"{where}.{key}")
            if isinstance(v, (list, dict)):
                raise UserError("a case takes single values", path=path, field=f"{where}.{key}")
            if problem := FIELDS[key](v):
                raise UserError(problem, path=path, field=f"{where}.{key}")
            out[key] = _normalise(key, v)
        cases.append(out)
    return cases


def _config(values: dict[str, Any], path: Path, where: str) -> RunConfig:
    """One run's config, with the checks that involve several keys."""
    optimizer = values.get("optimizer", "adam")
    iters = REFINE_ITERS.get(optimizer)
    if iters is not None and values.get(iters, 0) < 1:
        raise UserError(
            f"optimizer {optimizer!r} needs {iters} >= 1 (the refinement's iterations)",
            path=path,
            field=f"{where}.{iters}" if where.startswith("case") else iters,
        )
    if conflict := checkpoint_conflict(values.get("checkpoint", "last"), optimizer):
        raise UserError(
            conflict,
            path=path,
            field=f"{where}.checkpoint" if where.startswith("case") else "checkpoint",
        )
    if conflict := stages_conflict(values):
        raise UserError(conflict, path=path, field=f"{where}.stages" if where.startswith("case") else "stages")
    return RunConfig(**values)


def _header(doc: dict, path: Path) -> tuple[str, str, str]:
    """The study's name (it names the results directory), description and question, checked."""
    unknown = set(doc) - {
        "name",
        "description",
        "question",
        "primary",
        "kernels",
        "fixed",
        "grid",
        "case",
        "hypothesis",
    }
    if unknown:
        raise UserError(
            "unknown top-level key (expected name, description, question, primary, kernels, [fixed], [grid], "
            "[[case]], [[hypothesis]])",
            path=path,
            field=sorted(unknown)[0],
        )
    name = doc.get("name")
    if name is None:
        raise UserError("required: a name for the study (it names the results directory)", path=path, field="name")
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise UserError(f"must be 1-64 letters, digits, '.', '_' or '-', got {name!r}", path=path, field="name")
    texts = []
    for key in ("description", "question"):
        text = doc.get(key, "")
        if not isinstance(text, str):
            raise UserError("must be a string", path=path, field=key)
        texts.append(text)
    return name, *texts


def _primary(doc: dict, path: Path) -> str:
    primary = doc.get("primary", DEFAULT_PRIMARY)
    if primary not in METRICS:
        raise UserError(f"must be one of {', '.join(METRICS)}, got {primary!r}", path=path, field="primary")
    return primary


HYPOTHESIS_KEYS = ("better", "worse", "metric", "where", "better_at", "worse_at")


def _hypotheses(doc: dict, path: Path, primary: str, configs: list[RunConfig]) -> tuple[Hypothesis, ...]:
    """The [[hypothesis]] tables, checked against the plan: activations it trains, a metric, cells
    it has."""
    tables_ = doc.get("hypothesis", [])
    if not isinstance(tables_, list) or not all(isinstance(t, dict) for t in tables_):
        raise UserError("must be [[hypothesis]] tables", path=path, field="hypothesis")
    acts = {c.activation for c in configs}
    out, seen = [], set()
    for i, t in enumerate(tables_):
        at = f"hypothesis[{i}]"
        unknown = set(t) - set(HYPOTHESIS_KEYS)
        if unknown:
            raise UserError(
                f"unknown key (valid: {', '.join(HYPOTHESIS_KEYS)})", path=path, field=f"{at}.{sorted(unknown)[0]}"
            )
        for key in ("better", "worse"):
            if t.get(key) not in acts:
                raise UserError(
                    f"must be an activation the study trains ({', '.join(sorted(acts))}), got {t.get(key)!r}",
                    path=path,
                    field=f"{at}.{key}",
                )
        if t["better"] == t["worse"]:
            raise UserError("better and worse are the same activation", path=path, field=f"{at}.worse")
        metric = t.get("metric", primary)
        if metric not in METRICS:
            raise UserError(f"must be one of {', '.join(METRICS)}, got {metric!r}", path=path, field=f"{at}.metric")
        cell, better_at, worse_at = (_hypothesis_cells(t, key, at, path) for key in ("where", "better_at", "worse_at"))
        _check_sides(t, configs, cell, better_at, worse_at, path, at)
        h = Hypothesis(
            t["better"], t["worse"], metric, *(tuple(sorted(c.items())) for c in (cell, better_at, worse_at))
        )
        if h.text() in seen:
            raise UserError("declared twice", path=path, field=at)
        seen.add(h.text())
        out.append(h)
    return tuple(out)


def _hypothesis_cells(t: dict, key: str, at: str, path: Path) -> dict[str, Any]:
    """A hypothesis's `where` (or one side's `better_at` / `worse_at`): fields and values, checked."""
    where = t.get(key, {})
    if not isinstance(where, dict):
        raise UserError("must be a table of field = value, e.g. { width = 64 }", path=path, field=f"{at}.{key}")
    cell = {}
    for k, v in where.items():
        if k not in FIELDS or k in ("activation", "seed"):
            raise UserError("not a field that fixes cells", path=path, field=f"{at}.{key}.{k}")
        try:
            cell[k] = _normalise(k, v)
        except (TypeError, ValueError) as e:  # a formula error is a ValueError too
            raise UserError(f"not a value of {k} ({e})", path=path, field=f"{at}.{key}.{k}") from None
    return cell


def _check_sides(t: dict, configs, cell: dict, better_at: dict, worse_at: dict, path: Path, at: str) -> None:
    """Both sides have runs where the hypothesis looks: in one cell of the plan when they share
    their settings, each at its own settings (better_at, worse_at) otherwise."""

    def has(act: str, fixed: dict) -> bool:
        return any(c.activation == act and all(getattr(c, k) == v for k, v in fixed.items()) for c in configs)

    if not better_at and not worse_at:
        pairs = {c.activation for c in configs if all(getattr(c, k) == v for k, v in cell.items())}
        if not {t["better"], t["worse"]} <= pairs:
            raise UserError(
                f"no cell of the plan has both {t['better']} and {t['worse']} there", path=path, field=f"{at}.where"
            )
        return
    if set(better_at) != set(worse_at) or set(better_at) & set(cell):
        raise UserError(
            "better_at and worse_at set the same fields (each side's own value of them), none of them in where",
            path=path,
            field=f"{at}.worse_at",
        )
    for act, own, key in ((t["better"], better_at, "better_at"), (t["worse"], worse_at, "worse_at")):
        if not has(act, {**cell, **own}):
            raise UserError(f"no run of the plan has {act} there", path=path, field=f"{at}.{key}")


def _fixed_value(key: str, v: Any, path: Path) -> Any:
    where = f"fixed.{key}"
    if isinstance(v, (list, dict)):
        raise UserError("[fixed] takes a single value; put lists in [grid]", path=path, field=where)
    if problem := FIELDS[key](v):
        raise UserError(problem, path=path, field=where)
    return _normalise(key, v)


DRAW_DIGITS = 6  # significant digits a random draw is rounded to (a value in the run id must not hang on an ulp)


def is_draw(v: Any) -> bool:
    return isinstance(v, dict) and ("log_uniform" in v or "uniform" in v)


def _draw(key: str, v: dict, path: Path, where: str) -> tuple[list[float], str]:
    """A random axis: n values drawn from the interval with numpy's PCG64 seeded by `seed`, rounded
    to DRAW_DIGITS significant digits, in the order drawn; and a line that says how."""
    kind = "log_uniform" if "log_uniform" in v else "uniform"
    extra = set(v) - {kind, "n", "seed"}
    if extra or "n" not in v or "seed" not in v:
        raise UserError(
            f"random draws are {{ {kind} = [low, high], n = N, seed = S }} (n and seed required)",
            path=path,
            field=where,
        )
    if key not in FLOAT_FIELDS:
        raise UserError(f"random draws are for the float keys ({', '.join(FLOAT_FIELDS)})", path=path, field=where)
    bounds, n, seed = v[kind], v["n"], v["seed"]
    if (
        not isinstance(bounds, list)
        or len(bounds) != 2
        or not all(isinstance(b, (int, float)) and not isinstance(b, bool) and math.isfinite(b) for b in bounds)
        or not bounds[0] < bounds[1]
        or (kind == "log_uniform" and bounds[0] <= 0)
        or not math.isfinite(float(bounds[1]) - float(bounds[0]))  # a width beyond float64: draws all inf
    ):
        need = "0 < low < high" if kind == "log_uniform" else "low < high, high - low finite"
        raise UserError(f"{kind} takes [low, high] with {need}, got {bounds!r}", path=path, field=where)
    for name, x, hi in (("n", n, 10_000), ("seed", seed, 2**63 - 1)):
        if isinstance(x, bool) or not isinstance(x, int) or not (1 if name == "n" else 0) <= x <= hi:
            raise UserError(
                f"{name} must be an integer in [{1 if name == 'n' else 0}, {hi}], got {x!r}", path=path, field=where
            )
    u = np.random.default_rng(seed).random(n)
    lo, hi = float(bounds[0]), float(bounds[1])
    raw = np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo))) if kind == "log_uniform" else lo + u * (hi - lo)
    values = [float(f"{x:.{DRAW_DIGITS}g}") for x in raw]
    how = f"{n} {kind.replace('_', '-')} draws in [{lo:g}, {hi:g}], seed {seed}, {DRAW_DIGITS} significant digits"
    return values, how


def _grid_axis(key: str, v: Any, path: Path) -> tuple:
    where = f"grid.{key}"
    if is_draw(v):
        v, _ = _draw(key, v, path, where)
        if len(set(v)) != len(v):
            raise UserError(
                f"two draws are equal at {DRAW_DIGITS} significant digits: draw fewer, or another seed",
                path=path,
                field=where,
            )
    elif isinstance(v, dict):
        v = _expand_range(v, path, where)
    if not isinstance(v, list):
        raise UserError(f"[grid] takes a list, got {v!r}; put single values in [fixed]", path=path, field=where)
    if not v:
        raise UserError("empty list: a grid axis needs at least one value", path=path, field=where)
    for item in v:
        if problem := FIELDS[key](item):
            raise UserError(problem, path=path, field=where)
    normalised = [_normalise(key, item) for item in v]
    if len(set(normalised)) != len(normalised):
        raise UserError("repeats a value", path=path, field=where)
    return tuple(normalised)


def _check_sizes(c: RunConfig, path: Path) -> None:
    k = n_val(c.n_points, c.val_fraction)
    if k < 1 or c.n_points - k < 1:
        raise UserError(
            f"n_points={c.n_points} with val_fraction={c.val_fraction} leaves an empty split",
            path=path,
            field="val_fraction",
        )
    if c.batch_size is not None and c.batch_size > c.n_points - k:
        raise UserError(
            f'batch_size {c.batch_size} exceeds the {c.n_points - k} training points; use "full"',
            path=path,
            field="batch_size",
        )
