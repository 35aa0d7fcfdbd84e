from __future__ import annotations

import importlib
import sys
import textwrap
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def write_study(tmp_path: Path):
    """Write a study file into tmp_path and return its path."""

    def write(text: str, name: str = "study.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def python_module(tmp_path: Path, monkeypatch):
    """A factory: python_module(text, prefix) writes a module into tmp_path, which becomes the
    current directory (as a user's file beside their study is), and returns its name, unique per
    test since Python caches imported modules; the modules are forgotten afterwards."""
    made: list[str] = []

    def make(text: str, prefix: str = "usermodule") -> str:
        name = f"{prefix}_{abs(hash(tmp_path)) % 10**8}"
        (tmp_path / f"{name}.py").write_text(text)
        made.append(name)
        return name

    monkeypatch.chdir(tmp_path)
    yield make
    from runge_bench.problem import callables

    for name in made:
        sys.modules.pop(name, None)
    callables.load.cache_clear()
    importlib.invalidate_caches()


@pytest.fixture(scope="session")
def native_built() -> None:
    """The native kernels must build wherever a C++ compiler exists; skip only where none does
    (a compile error fails the tests instead of skipping them)."""
    import os
    import shutil

    from runge_bench.engine.native import unavailable

    if shutil.which(os.environ.get("CXX") or "c++") is None:
        pytest.skip("no C++ compiler on PATH")
    why = unavailable()
    assert why is None, why


@pytest.fixture(params=["torch", "native"])
def kernel_kind(request) -> str:
    """Each batched-engine test runs with the torch kernels (the specification) and the native ones."""
    if request.param == "native":
        request.getfixturevalue("native_built")
    return request.param


def pytest_collection_finish(session) -> None:
    """Say, before the first dot, what the run holds: the slow tests train and report real studies
    and take most of its minutes (README, Quick start, states the times)."""
    slow = sum(1 for item in session.items if item.get_closest_marker("slow"))
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and session.items:
        reporter.write_line(
            f"runge-bench: {len(session.items)} tests, {slow} of them slow (end-to-end sweeps, committed reports "
            "regenerated: most of the time); -m 'not slow' skips those"
        )
