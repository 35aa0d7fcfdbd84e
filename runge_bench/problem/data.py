"""A run's data: points on [-1, 1] split at random into train and validation, the dense grid
its errors are measured on, the grid its predictions are stored on, and its random streams."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GRID_POINTS = 10_001  # dense uniform grid for the sup-norm estimate (the split alone is not one)
PLOT_POINTS = 401  # grid on which every run stores its predictions, so figures need no retraining

# Independent random streams per run, derived from its seed, so that changing one (say the batch
# size) never changes another (the split). Init uses the seed itself (see model.init_params).
SPLIT_STREAM = 1
BATCH_STREAM = 2
NOISE_STREAM = 3


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


def with_noise(f: np.ndarray, df: np.ndarray, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The training targets a run with `noise` sees: f and f' (float64, at its training points),
    each plus Gaussian noise of standard deviation noise x its own RMS over those points, drawn
    from the run's noise stream (f's first, then f''s), so that noise changes neither the split,
    the initialisation nor the batch order. Validation and the dense grid stay clean: errors are
    measured against the truth. noise 0 returns the targets themselves."""
    if noise == 0.0:
        return f, df
    rng = np.random.default_rng(stream_seed(seed, NOISE_STREAM))
    zf, zdf = rng.standard_normal(len(f)), rng.standard_normal(len(df))
    rms = lambda a: float(np.sqrt(np.mean(np.square(a))))
    return f + noise * rms(f) * zf, df + noise * rms(df) * zdf


def dense_grid() -> np.ndarray:
    """The evaluation grid: GRID_POINTS uniform points on [-1, 1], endpoints included."""
    return np.linspace(-1.0, 1.0, GRID_POINTS)


def plot_grid() -> np.ndarray:
    """The grid on which predictions are stored for figures."""
    return np.linspace(-1.0, 1.0, PLOT_POINTS)
