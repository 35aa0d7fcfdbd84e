"""Training engines: one readable function each, both returning RunResults.

- `train_reference`: one nn.Sequential per run, f' through autograd.grad(create_graph=True),
  torch.optim.Adam; the seed report's exact method and the yardstick for correctness.
- `batched.train_batched`: M runs of one shape as one stacked model, f' carried forward beside
  the value, backward and Adam written out by hand (see batched.py).

Both take the loss MSE(f) + deriv_weight * MSE(f'), log training losses (mean over the epoch's
batches) and validation losses (after the epoch's updates) every epoch, and stop a run at the
first epoch whose loss is not finite, marking it diverged.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import Tensor

from .config import RunConfig, RunResult, Status
from .environment import library_versions
from .metrics import Predictor, evaluate
from .model import build_sequential, init_params
from .target import BATCH_STREAM, Split, Target, get_target, make_split, stream_seed

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
CURVES = ("train_f", "train_df", "val_f", "val_df")


def targets(x: np.ndarray, dtype: torch.dtype, device: str, target: Target) -> tuple[Tensor, Tensor, Tensor]:
    """x, f(x), f'(x) of the target as (N, 1) tensors."""
    as_t = lambda a: torch.as_tensor(a, dtype=dtype, device=device).unsqueeze(-1)  # noqa: E731
    return as_t(x), as_t(target.f(x)), as_t(target.df(x))


def batch_generator(config: RunConfig) -> torch.Generator:
    return torch.Generator().manual_seed(stream_seed(config.seed, BATCH_STREAM))


def _batches(n: int, batch_size: int | None, g: torch.Generator) -> list[Tensor | None]:
    """Index batches of one epoch: [None] for full batch, else a fresh permutation split up."""
    if batch_size is None or batch_size >= n:
        return [None]
    return list(torch.randperm(n, generator=g).split(batch_size))


def make_result(config: RunConfig, status: Status, curves: dict[str, np.ndarray], epochs_run: int, start: float,
                engine: str, device: str, *, predict: Predictor | None = None, split: Split | None = None,
                diverged_epoch: int | None = None, wall_s: float | None = None,
                after: dict[str, np.ndarray] | None = None) -> RunResult:  # fmt: skip
    """A run's RunResult: its curves cut at epochs_run, then the points of a refinement (`after`,
    with their own "epoch" numbers); for an ok run, the metrics and plotting-grid predictions of
    `predict` (metrics.evaluate); wall time since `start` unless given."""
    metrics, predictions = evaluate(predict, split, get_target(config.target)) if status == "ok" else ({}, {})
    curves = {k: np.asarray(v[:epochs_run], np.float32) for k, v in curves.items()}
    curves["epoch"] = np.arange(1, epochs_run + 1, dtype=np.float32)
    if after:
        curves = {k: np.concatenate([v, np.asarray(after[k], np.float32)]) for k, v in curves.items()}
    return RunResult(
        config=config, status=status, metrics=metrics, curves=curves, predictions=predictions,
        diverged_epoch=diverged_epoch, engine=engine, device=device, versions=library_versions(),
        wall_s=time.perf_counter() - start if wall_s is None else wall_s,
    )  # fmt: skip


# --------------------------------------------------------------------------- reference engine


def train_reference(config: RunConfig, device: str = "cpu") -> RunResult:
    """Train one run the seed report's way: nn.Sequential, double backward, torch.optim.Adam."""
    start = time.perf_counter()
    dtype = getattr(torch, config.dtype)
    split = make_split(config.n_points, config.val_fraction, config.seed)
    target = get_target(config.target)
    x_tr, y_tr, dy_tr = targets(split.x_train, dtype, device, target)
    x_va, y_va, dy_va = targets(split.x_val, dtype, device, target)
    model = build_sequential(config, init_params(config)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, betas=ADAM_BETAS, eps=ADAM_EPS)
    g = batch_generator(config)
    curves = {k: np.full(config.epochs, np.nan) for k in CURVES}

    def value_and_grad(x: Tensor, create_graph: bool) -> tuple[Tensor, Tensor]:
        x = x.detach().requires_grad_(True)
        y = model(x)
        (dy,) = torch.autograd.grad(y, x, torch.ones_like(y), create_graph=create_graph)
        return y, dy

    for epoch in range(config.epochs):
        sum_f = sum_df = 0.0
        for idx in _batches(len(x_tr), config.batch_size, g):
            xb, yb, dyb = (x_tr, y_tr, dy_tr) if idx is None else (x_tr[idx], y_tr[idx], dy_tr[idx])
            y, dy = value_and_grad(xb, create_graph=True)
            lf, ldf = torch.mean((y - yb) ** 2), torch.mean((dy - dyb) ** 2)
            loss = lf + config.deriv_weight * ldf
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sum_f += lf.item() * len(xb)
            sum_df += ldf.item() * len(xb)
        y, dy = value_and_grad(x_va, create_graph=False)
        row = (sum_f / len(x_tr), sum_df / len(x_tr),
               torch.mean((y - y_va) ** 2).item(), torch.mean((dy - dy_va) ** 2).item())  # fmt: skip
        for k, v in zip(CURVES, row):
            curves[k][epoch] = v
        if not np.all(np.isfinite(row)):
            return make_result(config, "diverged", curves, epoch + 1, start, "reference", device,
                           diverged_epoch=epoch + 1)  # fmt: skip

    def predict(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y, dy = value_and_grad(torch.as_tensor(x, dtype=dtype, device=device).unsqueeze(-1), False)
        return y.detach().cpu().double().numpy()[:, 0], dy.cpu().double().numpy()[:, 0]

    if config.optimizer != "adam":  # the refinement works on the batched layout, a stack of one
        from .batched import finish_refined

        linears = [m for m in model if isinstance(m, torch.nn.Linear)]
        member = [(m.weight.detach().T.unsqueeze(0).contiguous(), m.bias.detach().view(1, 1, -1).clone())
                  for m in linears]  # fmt: skip
        stack = lambda *ts: tuple(t.unsqueeze(0) for t in ts)  # noqa: E731  (N, 1) -> (1, N, 1)
        return finish_refined(config, member, split, curves, start, "reference", device,
                              stack(x_tr, y_tr, dy_tr), stack(x_va, y_va, dy_va))  # fmt: skip
    return make_result(config, "ok", curves, config.epochs, start, "reference", device,
                   predict=predict, split=split)  # fmt: skip


def train_many_reference(configs: list[RunConfig], device: str = "cpu") -> list[RunResult]:
    return [train_reference(c, device) for c in configs]
