from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def write_study(tmp_path: Path):
    """Write a study file into tmp_path and return its path."""

    def write(text: str, name: str = "study.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


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
