"""The targets (the Runge function, its derivative, and a family of others), and the seeded
train/validation split of the seed protocol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

GRID_POINTS = 10_001  # dense uniform grid for the sup-norm estimate (the split alone is not one)
PLOT_POINTS = 401  # grid on which every run stores its predictions, so figures need no retraining

# Independent random streams per run, derived from its seed, so that changing one (say the batch
# size) never changes another (the split). Init uses the seed itself (see model.init_params).
SPLIT_STREAM = 1
BATCH_STREAM = 2


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
    """

    name: str
    doc: str
    f: Callable[[np.ndarray], np.ndarray]
    df: Callable[[np.ndarray], np.ndarray]


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
        Target("runge", "1/(1+25x²), the seed report's Runge function", runge, runge_derivative),
        Target("runge5", "1/(1+5x²), a gentler Runge bump", *_runge_a(5.0)),
        Target("runge100", "1/(1+100x²), a sharper Runge bump", *_runge_a(100.0)),
        Target("sin4pi", "sin(4πx), two periods: oscillatory", _sin4pi, _sin4pi_derivative),
        # The seed protocol's 1000 points (an even number, symmetric) never include x = 0, so
        # training never sees the step of f'; the dense grid (10,001 points) does, and scores f'(0)
        # against 0, the mean of the one-sided derivatives. Any continuous f' is >= 1 away from
        # sign(x) somewhere near 0, so f' max errors on this target are at least ~1 by construction.
        Target("abs", "|x|, a kink at 0: f' = sign(x), a step (f'(0) taken as 0)", _abs, _sign),
    )
}


def get_target(name: str) -> Target:
    """Look up a target by name; raises KeyError listing the valid names."""
    try:
        return TARGETS[name]
    except KeyError:
        raise KeyError(f"unknown target {name!r} (valid: {', '.join(TARGETS)})") from None


def stream_seed(seed: int, stream: int) -> int:
    """A 63-bit seed for one named random stream of a run, derived from the run's seed."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1, np.uint64)[0] >> 1)


@dataclass(frozen=True)
class Split:
    """The data of one run: points on a uniform grid, split at random into train and validation.

    All arrays are float64 of shape (n,); indices are sorted so that the split is a set.
    """

    x: np.ndarray
    train_idx: np.ndarray
    val_idx: np.ndarray

    @property
    def x_train(self) -> np.ndarray:
        return self.x[self.train_idx]

    @property
    def x_val(self) -> np.ndarray:
        return self.x[self.val_idx]


def n_val(n_points: int, val_fraction: float) -> int:
    """How many of the points go to validation."""
    return int(round(n_points * val_fraction))


def make_split(n_points: int, val_fraction: float, seed: int) -> Split:
    """The seed protocol's data: `n_points` uniform on [-1, 1], a random split drawn from `seed`."""
    x = np.linspace(-1.0, 1.0, n_points)
    rng = np.random.default_rng(stream_seed(seed, SPLIT_STREAM))
    perm = rng.permutation(n_points)
    k = n_val(n_points, val_fraction)
    return Split(x=x, train_idx=np.sort(perm[k:]), val_idx=np.sort(perm[:k]))


def dense_grid() -> np.ndarray:
    """The evaluation grid: GRID_POINTS uniform points on [-1, 1], endpoints included."""
    return np.linspace(-1.0, 1.0, GRID_POINTS)


def plot_grid() -> np.ndarray:
    """The grid on which predictions are stored for figures."""
    return np.linspace(-1.0, 1.0, PLOT_POINTS)
