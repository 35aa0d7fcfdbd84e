"""The package's layers: each imports only the layers below it, and no module imports itself back.

The import graph is read from the source (every `import` and `from ... import` statement, at any
depth: an import inside a function counts as much as one at the top), so a function-level import
cannot hide an upward dependency or a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "runge_bench"
# Lowest first. A module may import modules of its own layer and of the layers before it.
LAYERS = ["problem", "engine", "runs", "analysis", "outputs", "top"]
TOP = {"cli", "api", "__main__", "__init__"}  # runge_bench/*.py: the entry points


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in LAYERS:
        return parts[1]
    if len(parts) == 1 or parts[1] in TOP:
        return "top"
    raise AssertionError(f"{module} is in no layer: put it in one of {LAYERS[:-1]}, or add it to the top")


def imports(path: Path) -> set[str]:
    """The runge_bench modules `path` imports, resolved to module names (a name imported from a
    package counts as its submodule when there is one)."""
    me = module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "runge_bench"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").split(".")[0] == "runge_bench":
                target = node.module
            else:
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in MODULES else target)
    return found - {me}


FILES = sorted(PACKAGE.rglob("*.py"))
MODULES = {module_name(p) for p in FILES}
GRAPH = {module_name(p): imports(p) for p in FILES}


def test_the_graph_is_read():
    # A reader that found nothing would pass every check below: pin a few edges it must see,
    # a function-level one among them (cli imports its commands' modules inside the functions).
    assert "runge_bench.problem.config" in GRAPH["runge_bench.engine.batched"]
    assert "runge_bench.engine.stacked" in GRAPH["runge_bench.engine.refine"]
    assert "runge_bench.runs.sweep" in GRAPH["runge_bench.cli"]
    assert len(MODULES) > 30


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_upward_import(module):
    mine = LAYERS.index(layer(module))
    upward = sorted(m for m in GRAPH[module] if m in MODULES and LAYERS.index(layer(m)) > mine)
    assert not upward, f"{module} ({LAYERS[mine]}) imports a higher layer: {upward}"


def test_no_import_cycle():
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for n in sorted(GRAPH.get(m, ())):
            if n not in GRAPH:
                continue
            if state.get(n) == 1:
                cycle = path[path.index(n) :] + [n]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if n not in state:
                visit(n)
        path.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)


def test_a_cycle_is_found(monkeypatch):
    """The cycle check fails on a cycle (so that its silence means something)."""
    monkeypatch.setitem(
        GRAPH, "runge_bench.problem.config", GRAPH["runge_bench.problem.config"] | {"runge_bench.problem.errors"}
    )
    monkeypatch.setitem(GRAPH, "runge_bench.problem.errors", {"runge_bench.problem.config"})
    with pytest.raises(AssertionError, match="import cycle"):
        test_no_import_cycle()


# ------------------------------------------------------------------------- function length

LONGEST = 60  # lines from `def` to the function's last line (decorators not counted)
# Longer functions, each with its reason in a comment at its top. Split a function where that
# shows its logic; a long one that is one readable sequence may stay, listed here.
LONG_ALLOWED = {"runge_bench.engine.reference.train_reference"}


def function_lengths() -> dict[str, int]:
    """module.function (nested: module.outer.inner) -> its length in lines, for the package."""
    out = {}
    for path in FILES:
        tree = ast.parse(path.read_text(), str(path))

        def visit(node: ast.AST, prefix: str) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    name = f"{prefix}.{child.name}"
                    out[name] = child.end_lineno - child.lineno + 1
                    visit(child, name)
                elif isinstance(child, ast.ClassDef):
                    visit(child, f"{prefix}.{child.name}")

        visit(tree, module_name(path))
    return out


LENGTHS = function_lengths()


def test_lengths_are_read():
    assert LENGTHS["runge_bench.engine.reference.train_reference"] > LONGEST  # the one exception, seen
    assert "runge_bench.runs.store.Store.arrays" in LENGTHS  # methods too
    assert len(LENGTHS) > 300


def test_no_function_over_60_lines():
    long = {name: n for name, n in LENGTHS.items() if n > LONGEST and name not in LONG_ALLOWED}
    assert not long, f"functions over {LONGEST} lines (split them, or list one with its reason): {long}"
    stale = {name for name in LONG_ALLOWED if LENGTHS.get(name, 0) <= LONGEST}
    assert not stale, f"listed as long but no longer are: {stale}"
