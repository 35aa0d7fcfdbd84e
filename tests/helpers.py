"""What several test modules share: paths, tiny studies and synthetic runs frames. (Fixtures live
in conftest.py; no test module imports another.)"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from runge_bench.outputs.markdown import unwrap_markdown
from runge_bench.problem.config import RunConfig
from runge_bench.problem.vocabulary import METRICS
from runge_bench.runs.loading import prepare

ROOT = Path(__file__).resolve().parents[1]
SMOKE_STUDY = ROOT / "studies" / "smoke.toml"

TINY = """
name = "tiny"
[fixed]
width = 8
epochs = 5
n_points = 50
[grid]
activation = ["relu", "tanh"]
seed = [0, 1, 2]
"""


def synthetic_runs(error) -> pd.DataFrame:
    """A runs frame over activation (relu, tanh) x width (16, 64) x deriv_weight (0, 1) x 8 seeds,
    every metric = error(activation, width, deriv_weight, seed): statistics with known answers."""
    rows = []
    for act in ("relu", "tanh"):
        for width in (16, 64):
            for lam in (0.0, 1.0):
                for seed in range(8):
                    c = RunConfig(act, seed=seed, width=width, deriv_weight=lam)
                    e = error(act, width, lam, seed)
                    rows.append({"run_id": c.run_id, "status": "ok", **c.to_dict(), **dict.fromkeys(METRICS, e)})
    return prepare(pd.DataFrame(rows))


def jitter(seed: int) -> float:
    """A factor distinct per seed, so that no two log ratios tie."""
    return 1.0 + 0.01 * seed


def report_text(path) -> str:
    """A report's logical lines (wrapped prose joined), for checks of whole sentences."""
    return "\n".join(unwrap_markdown(Path(path).read_text()))


def sweep_command(study, results, *extra) -> list[str]:
    """`runge-bench sweep STUDY --results-dir RESULTS ...` as a child process's argv."""
    return [sys.executable, "-m", "runge_bench", "sweep", str(study), "--results-dir", str(results), *extra]


# Committed numbers compared at the precision they are printed (test_committed.py says why).
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
MACHINE_LINE = "- this report's baselines and statistics computed with:"
PRINTED = 5e-3  # relative: 3 significant figures, the last one free to flip


def assert_same_text(new: str, old: str, where: str) -> None:
    """Line by line (logical lines: where prose wraps moves with a number's width): equal, or equal
    but for numbers that agree to within a printed last digit."""
    new_lines = [line for line in unwrap_markdown(new) if not line.startswith(MACHINE_LINE)]
    old_lines = [line for line in unwrap_markdown(old) if not line.startswith(MACHINE_LINE)]
    assert len(new_lines) == len(old_lines), where
    for a, b in zip(new_lines, old_lines):
        if a == b:
            continue
        assert NUMBER.split(a) == NUMBER.split(b), f"{where}: {a[:160]} != {b[:160]}"
        x, y = (np.array([float(v) for v in NUMBER.findall(line)]) for line in (a, b))
        np.testing.assert_allclose(x, y, rtol=PRINTED, err_msg=f"{where}: {a[:160]}")


def assert_same_csv(new, old) -> None:
    if not old.read_text().strip():  # a table with no rows or columns (one activation: no pairs)
        assert not new.read_text().strip(), new
        return
    a, b = pd.read_csv(new), pd.read_csv(old)
    assert list(a.columns) == list(b.columns) and len(a) == len(b), new
    for c in a.columns:
        if pd.api.types.is_numeric_dtype(a[c]) and pd.api.types.is_numeric_dtype(b[c]):
            np.testing.assert_allclose(
                a[c].to_numpy(float), b[c].to_numpy(float), rtol=PRINTED, atol=0, equal_nan=True, err_msg=f"{new}: {c}"
            )
        else:
            assert a[c].fillna("").astype(str).tolist() == b[c].fillna("").astype(str).tolist(), f"{new}: {c}"
