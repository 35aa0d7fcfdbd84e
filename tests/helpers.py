"""What several test modules share: paths, tiny studies and synthetic runs frames. (Fixtures live
in conftest.py; no test module imports another.)"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

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
    from runge_bench.outputs.markdown import unwrap_markdown

    return "\n".join(unwrap_markdown(Path(path).read_text()))


def sweep_command(study, results, *extra) -> list[str]:
    """`runge-bench sweep STUDY --results-dir RESULTS ...` as a child process's argv."""
    return [sys.executable, "-m", "runge_bench", "sweep", str(study), "--results-dir", str(results), *extra]
