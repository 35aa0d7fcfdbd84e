"""The reference engine: one nn.Sequential per run, f' through autograd.grad(create_graph=True),
torch.optim.Adam. The seed report's exact method, and the yardstick the batched engine is held to.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import Tensor

from ..problem.config import RunConfig, RunResult
from ..problem.data import make_split
from ..problem.targets import get_target
from .common import ADAM_BETAS, ADAM_EPS, CURVES, as_tensors, batch_generator, make_result, training_tensors
from .model import build_sequential, init_params
from .refine import finish_refined
from .stages import finish_staged


def shuffled_batches(n: int, batch_size: int | None, g: torch.Generator) -> list[Tensor | None]:
    """Index batches of one epoch of one run: [None] for full batch, else a fresh permutation of
    the n training points split into batches."""
    if batch_size is None or batch_size >= n:
        return [None]
    return list(torch.randperm(n, generator=g).split(batch_size))


def train_reference(config: RunConfig, device: str = "cpu") -> RunResult:
    """Train one run the seed report's way: nn.Sequential, double backward, torch.optim.Adam."""
    # One function on purpose (over the package's 60 lines, tests/test_layers.py lists it): this
    # is the yardstick every other engine is tested against, and it reads as the seed report's
    # loop does, top to bottom: data, model, epochs, checkpoint, refinement or result.
    start = time.perf_counter()
    dtype = getattr(torch, config.dtype)
    split = make_split(config.n_points, config.val_fraction, config.seed)
    target = get_target(config.target)
    x_tr, y_tr, dy_tr = training_tensors(config, split, dtype, device)
    x_va, y_va, dy_va = as_tensors(split.x_val, dtype, device, target)
    model = build_sequential(config, init_params(config)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=config.lr, betas=ADAM_BETAS, eps=ADAM_EPS)
    g = batch_generator(config)
    curves = {k: np.full(config.epochs, np.nan) for k in CURVES}
    keep_best = config.checkpoint == "best_val"
    best_loss, best_state, best_epochs = np.inf, None, np.zeros(config.epochs)

    def value_and_grad(x: Tensor, create_graph: bool) -> tuple[Tensor, Tensor]:
        x = x.detach().requires_grad_(True)
        y = model(x)
        (dy,) = torch.autograd.grad(y, x, torch.ones_like(y), create_graph=create_graph)
        return y, dy

    for epoch in range(config.epochs):
        sum_f = sum_df = 0.0
        for idx in shuffled_batches(len(x_tr), config.batch_size, g):
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
        row = (
            sum_f / len(x_tr),
            sum_df / len(x_tr),
            torch.mean((y - y_va) ** 2).item(),
            torch.mean((dy - dy_va) ** 2).item(),
        )
        for k, v in zip(CURVES, row):
            curves[k][epoch] = v
        if not np.all(np.isfinite(row)):
            return make_result(
                config, "diverged", curves, epoch + 1, start, "reference", device, diverged_epoch=epoch + 1
            )
        # The validation objective in float64 from the float32 losses, as the batched engine computes it.
        if keep_best and (loss := row[2] + config.deriv_weight * row[3]) < best_loss:
            best_loss, best_state = loss, {k: v.clone() for k, v in model.state_dict().items()}
            best_epochs[epoch:] = epoch + 1
    if keep_best:
        model.load_state_dict(best_state)

    def predict(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y, dy = value_and_grad(torch.as_tensor(x, dtype=dtype, device=device).unsqueeze(-1), False)
        return y.detach().cpu().double().numpy()[:, 0], dy.cpu().double().numpy()[:, 0]

    if config.optimizer != "adam" or config.staged:  # refinements work on the batched layout, a stack of one
        linears = [m for m in model if isinstance(m, torch.nn.Linear)]
        member = [
            (m.weight.detach().T.unsqueeze(0).contiguous(), m.bias.detach().view(1, 1, -1).clone()) for m in linears
        ]
        stack = lambda *ts: tuple(t.unsqueeze(0) for t in ts)
        if config.staged:
            run = ("reference", device, start, time.perf_counter() - start)
            return finish_staged(
                [config], member, [split], [curves], stack(x_tr, y_tr, dy_tr), stack(x_va, y_va, dy_va), run
            )[0]
        return finish_refined(
            config,
            member,
            split,
            curves,
            start,
            "reference",
            device,
            stack(x_tr, y_tr, dy_tr),
            stack(x_va, y_va, dy_va),
        )
    return make_result(
        config,
        "ok",
        curves,
        config.epochs,
        start,
        "reference",
        device,
        predict=predict,
        split=split,
        best_epochs=best_epochs if keep_best else None,
    )


def train_many_reference(configs: list[RunConfig], device: str = "cpu") -> list[RunResult]:
    return [train_reference(c, device) for c in configs]
