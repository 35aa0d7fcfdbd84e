"""What every engine shares: Adam's constants, the curves a run logs, its data as tensors, its
batch stream, and the RunResult it returns.

Every engine trains on MSE(f) + deriv_weight * MSE(f'), logs training losses (mean over the
epoch's batches) and validation losses (after the epoch's updates) every epoch under CURVES, and
stops a run at the first epoch whose loss is not finite, marking it diverged.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import Tensor

from ..problem.config import RunConfig, RunResult, Status
from ..problem.data import BATCH_STREAM, Split, stream_seed, with_noise
from ..problem.targets import Target, get_target
from .environment import library_versions
from .metrics import Predictor, evaluate

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
CURVES = ("train_f", "train_df", "val_f", "val_df")  # per epoch; a stored run adds "epoch"
CURVE_KEYS = ("epoch", *CURVES)


def as_tensors(x: np.ndarray, dtype: torch.dtype, device: str, target: Target) -> tuple[Tensor, Tensor, Tensor]:
    """x, f(x), f'(x) of the target as (N, 1) tensors."""

    def column(a: np.ndarray) -> Tensor:
        return torch.as_tensor(a, dtype=dtype, device=device).unsqueeze(-1)

    return column(x), column(target.f(x)), column(target.df(x))


def training_tensors(config: RunConfig, split: Split, dtype: torch.dtype, device: str) -> tuple[Tensor, Tensor, Tensor]:
    """x, f, f' at the run's training points as (N, 1) tensors, with the run's noise on f and f'
    (data.with_noise; none at noise 0)."""
    target = get_target(config.target)
    x = split.x_train
    f, df = with_noise(target.f(x), target.df(x), config.noise, config.seed)

    def column(a: np.ndarray) -> Tensor:
        return torch.as_tensor(a, dtype=dtype, device=device).unsqueeze(-1)

    return column(x), column(f), column(df)


def batch_generator(config: RunConfig) -> torch.Generator:
    """The run's own stream of batch orders (independent of its split and initialisation)."""
    return torch.Generator().manual_seed(stream_seed(config.seed, BATCH_STREAM))


def make_result(
    config: RunConfig,
    status: Status,
    curves: dict[str, np.ndarray],
    epochs_run: int,
    start: float,
    engine: str,
    device: str,
    *,
    predict: Predictor | None = None,
    split: Split | None = None,
    diverged_epoch: int | None = None,
    wall_s: float | None = None,
    after: dict[str, np.ndarray] | None = None,
    best_epochs: np.ndarray | None = None,
) -> RunResult:
    """A run's RunResult: its curves cut at epochs_run, then the points of a refinement (`after`,
    with their own "epoch" numbers); for an ok run, the metrics and plotting-grid predictions of
    `predict` (metrics.evaluate); wall time since `start` unless given. best_epochs: for a
    checkpoint "best_val" run, per epoch the epoch of the lowest validation loss so far (stored as
    the curve "best_epoch"; `predict` must then be the parameters of its last value)."""
    metrics, predictions = evaluate(predict, split, get_target(config.target)) if status == "ok" else ({}, {})
    curves = {k: np.asarray(v[:epochs_run], np.float32) for k, v in curves.items()}
    if best_epochs is not None:
        curves["best_epoch"] = np.asarray(best_epochs[:epochs_run], np.float32)
    curves["epoch"] = np.arange(1, epochs_run + 1, dtype=np.float32)
    if after:
        curves = {k: np.concatenate([v, np.asarray(after[k], np.float32)]) for k, v in curves.items()}
    return RunResult(
        config=config,
        status=status,
        metrics=metrics,
        curves=curves,
        predictions=predictions,
        diverged_epoch=diverged_epoch,
        engine=engine,
        device=device,
        versions=library_versions(),
        wall_s=time.perf_counter() - start if wall_s is None else wall_s,
    )
