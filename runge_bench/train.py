"""Training engines: one readable function each, both returning RunResults.

- `train_reference`: one nn.Sequential per run, f' through autograd.grad(create_graph=True),
  torch.optim.Adam; the seed report's exact method and the yardstick for correctness.
- `train_batched`: M runs of one shape as one stacked model (weights (M, in, out), layers as
  baddbmm), f' carried forward beside the value, Adam written out elementwise so that each
  member gets exactly its own update. Per-member seeds give each member the split, init and batch
  order of the reference run with the same config, whatever group it is packed into.

Both take the loss MSE(f) + deriv_weight * MSE(f'), log training losses (mean over the epoch's
batches) and validation losses (after the epoch's updates) every epoch, and stop a run at the
first epoch whose loss is not finite, marking it diverged.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from .activations import get_activation
from .config import RunConfig, RunResult, library_versions
from .metrics import evaluate
from .model import Params, build_sequential, forward_with_tangent, init_params, stack_params
from .target import BATCH_STREAM, Split, make_split, runge, runge_derivative, stream_seed

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
CURVES = ("train_f", "train_df", "val_f", "val_df")


def _targets(x: np.ndarray, dtype: torch.dtype, device: str) -> tuple[Tensor, Tensor, Tensor]:
    """x, f(x), f'(x) as (N, 1) tensors."""
    as_t = lambda a: torch.as_tensor(a, dtype=dtype, device=device).unsqueeze(-1)  # noqa: E731
    return as_t(x), as_t(runge(x)), as_t(runge_derivative(x))


def _batch_generator(config: RunConfig) -> torch.Generator:
    return torch.Generator().manual_seed(stream_seed(config.seed, BATCH_STREAM))


def _batches(n: int, batch_size: int | None, g: torch.Generator) -> list[Tensor | None]:
    """Index batches of one epoch: [None] for full batch, else a fresh permutation split up."""
    if batch_size is None or batch_size >= n:
        return [None]
    return list(torch.randperm(n, generator=g).split(batch_size))


def _result(config, status, curves, epochs_run, start, engine, device, *, predict=None,
            split=None, diverged_epoch=None, wall_s=None) -> RunResult:  # fmt: skip
    metrics, predictions = evaluate(predict, split) if status == "ok" else ({}, {})
    curves = {k: np.asarray(v[:epochs_run], np.float32) for k, v in curves.items()}
    curves["epoch"] = np.arange(1, epochs_run + 1, dtype=np.float32)
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
    x_tr, y_tr, dy_tr = _targets(split.x_train, dtype, device)
    x_va, y_va, dy_va = _targets(split.x_val, dtype, device)
    model = build_sequential(config, init_params(config)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, betas=ADAM_BETAS, eps=ADAM_EPS)
    g = _batch_generator(config)
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
            return _result(config, "diverged", curves, epoch + 1, start, "reference", device,
                           diverged_epoch=epoch + 1)  # fmt: skip

    def predict(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y, dy = value_and_grad(torch.as_tensor(x, dtype=dtype, device=device).unsqueeze(-1), False)
        return y.detach().cpu().double().numpy()[:, 0], dy.cpu().double().numpy()[:, 0]

    return _result(config, "ok", curves, config.epochs, start, "reference", device,
                   predict=predict, split=split)  # fmt: skip


# ----------------------------------------------------------------------------- batched engine


def _stacked_data(splits: list[Split], which: str, dtype, device) -> tuple[Tensor, Tensor, Tensor]:
    """x, f, f' of every member's train or val split, stacked to (M, N, 1)."""
    parts = [_targets(getattr(s, f"x_{which}"), dtype, device) for s in splits]
    return tuple(torch.stack(p) for p in zip(*parts))  # type: ignore[return-value]


def _member_losses(params: Params, act, x: Tensor, y: Tensor, dy: Tensor) -> tuple[Tensor, Tensor]:
    """Per-member MSE of f and of f', each (M,)."""
    p, dp = forward_with_tangent(params, act, x)
    return ((p - y) ** 2).mean(dim=(1, 2)), ((dp - dy) ** 2).mean(dim=(1, 2))


def adam_step(params: list[Tensor], grads: list[Tensor], m: list[Tensor], v: list[Tensor],
              step: int, lr: Tensor) -> None:  # fmt: skip
    """One Adam update, in place, for stacked parameters with a per-member lr of shape (M, 1, 1).

    Adam is elementwise, so this is M independent optimisers; it follows torch.optim.Adam's
    arithmetic (lerp for the first moment, bias corrections as Python floats).
    """
    b1, b2 = ADAM_BETAS
    step_size = lr / (1 - b1**step)
    bc2_sqrt = (1 - b2**step) ** 0.5
    with torch.no_grad():
        for p, g_, m_, v_ in zip(params, grads, m, v):
            m_.lerp_(g_, 1 - b1)
            v_.mul_(b2).addcmul_(g_, g_, value=1 - b2)
            p.sub_(step_size * m_ / (v_.sqrt() / bc2_sqrt + ADAM_EPS))


def train_batched(configs: list[RunConfig], device: str = "cpu") -> list[RunResult]:
    """Train runs that share a shape (RunConfig.shape_key) as one stacked model.

    Seeds, deriv_weight and lr may differ between members. A member whose loss turns non-finite
    is marked diverged at that epoch and frozen out of the loss; the others train on unaffected
    (the stacked layers are block-diagonal, so no member's numbers reach another's).
    """
    if len({c.shape_key() for c in configs}) != 1:
        raise ValueError("train_batched needs configs of one shape (RunConfig.shape_key)")
    start = time.perf_counter()
    c0, M = configs[0], len(configs)
    dtype, act = getattr(torch, c0.dtype), get_activation(c0.activation)
    splits = [make_split(c.n_points, c.val_fraction, c.seed) for c in configs]
    x_tr, y_tr, dy_tr = _stacked_data(splits, "train", dtype, device)  # (M, Ntr, 1)
    x_va, y_va, dy_va = _stacked_data(splits, "val", dtype, device)  # (M, Nval, 1)
    stacked = [(w.to(device), b.to(device)) for w, b in stack_params([init_params(c) for c in configs])]
    leaves = [t.detach().requires_grad_(True) for wb in stacked for t in wb]
    params: Params = list(zip(leaves[0::2], leaves[1::2]))
    m = [torch.zeros_like(t) for t in leaves]
    v = [torch.zeros_like(t) for t in leaves]
    lr = torch.tensor([c.lr for c in configs], dtype=dtype, device=device).view(M, 1, 1)
    weight = torch.tensor([c.deriv_weight for c in configs], dtype=dtype, device=device)
    gens = [_batch_generator(c) for c in configs]
    n_tr, step = x_tr.shape[1], 0
    curves = {k: np.full((M, c0.epochs), np.nan) for k in CURVES}
    alive = np.ones(M, bool)
    diverged_at: dict[int, int] = {}

    for epoch in range(c0.epochs):
        if c0.batch_size is None or c0.batch_size >= n_tr:
            batches: list[Tensor | None] = [None]
        else:  # each member draws its own permutation, exactly as its reference run would
            perms = torch.stack([torch.randperm(n_tr, generator=g) for g in gens]).to(device)
            batches = list(perms.split(c0.batch_size, dim=1))  # (M, B) each
        sum_f = torch.zeros(M, dtype=torch.float64, device=device)
        sum_df = torch.zeros_like(sum_f)
        mask = torch.as_tensor(alive, device=device)
        for idx in batches:
            if idx is None:
                xb, yb, dyb = x_tr, y_tr, dy_tr
            else:
                gi = idx.unsqueeze(-1)  # (M, B, 1)
                xb, yb, dyb = (torch.gather(t, 1, gi) for t in (x_tr, y_tr, dy_tr))
            lf, ldf = _member_losses(params, act, xb, yb, dyb)
            total = torch.where(mask, lf + weight * ldf, torch.zeros_like(lf)).sum()
            step += 1
            adam_step(leaves, list(torch.autograd.grad(total, leaves)), m, v, step, lr)
            sum_f += lf.detach().double() * xb.shape[1]
            sum_df += ldf.detach().double() * xb.shape[1]
        with torch.no_grad():
            vf, vdf = _member_losses(params, act, x_va, y_va, dy_va)
        rows = np.stack([(sum_f / n_tr).cpu().numpy(), (sum_df / n_tr).cpu().numpy(),
                         vf.double().cpu().numpy(), vdf.double().cpu().numpy()])  # fmt: skip
        for k, row in zip(CURVES, rows):
            curves[k][:, epoch] = np.where(alive, row, np.nan)
        newly = alive & ~np.all(np.isfinite(rows), axis=0)
        for i in np.flatnonzero(newly):
            diverged_at[int(i)] = epoch + 1
        alive &= ~newly
        if not alive.any():
            break

    wall_each = (time.perf_counter() - start) / M
    results = []
    for i, config in enumerate(configs):
        member = [(w[i : i + 1].detach(), b[i : i + 1].detach()) for w, b in params]
        member_curves = {k: c[i] for k, c in curves.items()}
        if i in diverged_at:
            results.append(_result(config, "diverged", member_curves, diverged_at[i], start, "batched",
                                   device, diverged_epoch=diverged_at[i], wall_s=wall_each))  # fmt: skip
            continue
        results.append(_result(config, "ok", member_curves, c0.epochs, start, "batched", device,
                               predict=_member_predictor(member, act, dtype, device), split=splits[i],
                               wall_s=wall_each))  # fmt: skip
    return results


def _member_predictor(member: Params, act, dtype, device) -> Callable:
    def predict(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xt = torch.as_tensor(x, dtype=dtype, device=device).view(1, -1, 1)
        with torch.no_grad():
            y, dy = forward_with_tangent(member, act, xt)
        return y.double().cpu().numpy()[0, :, 0], dy.double().cpu().numpy()[0, :, 0]

    return predict


ENGINES: dict[str, Callable[[list[RunConfig], str], list[RunResult]]] = {
    "reference": lambda configs, device="cpu": [train_reference(c, device) for c in configs],
    "batched": train_batched,
}
