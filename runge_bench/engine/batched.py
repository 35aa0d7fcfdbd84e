"""The batched engine: M runs of one shape trained as one stacked model (stacked.py's maths).

The step's elementwise work runs on one of three kinds of kernels, named in the engine a result
records (problem.vocabulary.BATCHED_ENGINES):

- "torch": stacked.py's torch functions, the specification; any device.
- "compile": the same through torch.compile, which fuses their elementwise work into a few loops.
- "native": `native.NativeKernels` (the default on CPU), the whole step in C++ (kernels.cpp), which
  streams the points through the network in blocks of 32, value and tangent rows stacked, so that
  each block stays in cache from one product to the next elementwise loop instead of a pass over
  memory per op. Tests hold it to the torch functions, and both to autograd.

Per-member generators give each member the split, init and batch order of the reference run with
the same config, whatever group it is packed into. Runs with a refinement after Adam are finished
one by one by refine.finish_refined.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..problem.activations import Activation, get_activation
from ..problem.config import RunConfig, RunResult
from ..problem.data import Split, make_split
from ..problem.targets import get_target
from ..problem.vocabulary import BATCHED_ENGINES
from . import native
from .common import CURVES, as_tensors, batch_generator, make_result, training_tensors
from .model import init_params, stack_params
from .refine import finish_refined
from .stacked import adam_step, forward, loss_and_grads, packed, predictor, val_losses
from .stages import finish_staged


def _stacked_data(
    configs: list[RunConfig], splits: list[Split], which: str, dtype, device
) -> tuple[Tensor, Tensor, Tensor]:
    """x, f, f' of every member's target on its train or val split, stacked to (M, N, 1)."""
    if which == "train":  # with each run's noise on its targets
        parts = [training_tensors(c, s, dtype, device) for c, s in zip(configs, splits)]
    else:
        parts = [as_tensors(s.x_val, dtype, device, get_target(c.target)) for c, s in zip(configs, splits)]
    return tuple(torch.stack(p) for p in zip(*parts))  # type: ignore[return-value]


# How many epochs an accelerator runs ahead of the host: the losses of each epoch stay on the device
# and are copied back (one synchronisation) every SYNC_EVERY epochs, so that the host queues the
# next epochs' kernels while the device works instead of waiting for each epoch's losses. It
# changes no arithmetic: a member whose loss turns non-finite is found at most SYNC_EVERY - 1
# epochs later, trains on alone in the meantime (every stacked operation is block-diagonal over
# members) and is cut at the epoch it diverged, as on the CPU, where the copy costs nothing and
# each epoch is synchronised (sync_every 1).
SYNC_EVERY = 50


@functools.cache
def _compiled(activation: str, mode: str | None = None) -> tuple[Callable, Callable]:
    """torch.compile of the torch kernels' step and validation for one activation, made once per
    process and keyed by the activation's name and mode (inductor compiles again, and caches, per
    shape and dtype under dynamic=False). mode "reduce-overhead" replays each as a CUDA graph."""
    act = get_activation(activation)
    grads_fn = lambda p, x, f, df, w, alive: loss_and_grads(p, act, x, f, df, w, alive)
    val = lambda p, x, f, df: val_losses(p, act, x, f, df)
    if mode is None:
        return torch.compile(grads_fn, dynamic=False), torch.compile(val, dynamic=False)

    def copied(fn):  # a CUDA graph's outputs are overwritten by its next replay: keep copies
        compiled = torch.compile(fn, dynamic=False, mode=mode)

        def call(*args):
            torch.compiler.cudagraph_mark_step_begin()
            out = compiled(*args)
            return torch.utils._pytree.tree_map(lambda t: t.clone() if isinstance(t, Tensor) else t, out)

        return call

    return copied(grads_fn), copied(val)


@dataclass(frozen=True)
class _Functions:
    """What train_batched calls, for one activation, dtype and kind of kernels.

    step(params, x, f, df, weight, alive, grads): gradients into `grads` (views shaped like the
    parameters), returns the summed squared residuals; val(params, x, f, df): validation MSEs;
    adam(theta, grad, m, v, lr, step): one update in place; predict(params, x): y and dy/dx.
    """

    step: Callable
    val: Callable
    adam: Callable
    predict: Callable


def _functions(act: Activation, dtype: torch.dtype, kernels: str, compile_mode: str | None = None) -> _Functions:
    """The training functions for kernels "torch", "compile" (the torch kernels through
    torch.compile, which fuses their elementwise work into a few loops; compiled once per process
    and activation, and again for each new shape; compile_mode as torch.compile's mode) or
    "native" (the whole step in C++)."""
    if kernels == "native":
        kernels_ = native.NativeKernels(act.name, dtype)
        step = lambda p, x, f, df, w, alive, out: kernels_.loss_and_grads(p, x, f, df, w, alive, out)[1:]
        return _Functions(step, kernels_.val_losses, kernels_.adam, kernels_.predict)
    grads_fn = lambda p, x, f, df, w, alive: loss_and_grads(p, act, x, f, df, w, alive)
    val = lambda p, x, f, df: val_losses(p, act, x, f, df)
    if kernels == "compile":
        grads_fn, val = _compiled(act.name, compile_mode)

    def step(p, x, f, df, w, alive, out):
        grads, sq_f, sq_df = grads_fn(p, x, f, df, w, alive)
        torch._foreach_copy_(out, grads)
        return sq_f, sq_df

    def adam(theta, grad, m, v, lr, t):
        adam_step([theta], [grad], [m], [v], t, lr)

    return _Functions(step, val, adam, lambda p, x: forward(p, act, x)[:2])


@torch.no_grad()
def train_batched(
    configs: list[RunConfig],
    device: str = "cpu",
    kernels: str = "torch",
    *,
    sync_every: int | None = None,
    compile_mode: str | None = None,
) -> list[RunResult]:
    """Train runs that share a shape (RunConfig.shape_key) as one stacked model.

    Seeds, deriv_weight and lr may differ between members. A member whose loss turns non-finite
    is marked diverged at that epoch and its gradient zeroed; the others train on unaffected
    (every stacked operation is block-diagonal over members). kernels "native" for an activation
    that kernels.cpp lacks trains with the torch kernels, and the results record engine "batched".
    sync_every: epochs between copies of the losses to the host (default 1 on the CPU, SYNC_EVERY
    on an accelerator); compile_mode: torch.compile's mode for kernels "compile" (the bench's
    launch strategies; sweeps use the default).
    """
    _check_group(configs, device, kernels)
    start = time.perf_counter()
    c0, M = configs[0], len(configs)
    if kernels == "native" and native.unavailable(device, c0.activation) is not None:
        kernels = "torch"  # an activation without C++ kernels: the specification's torch kernels
    dtype = getattr(torch, c0.dtype)
    splits = [make_split(c.n_points, c.val_fraction, c.seed) for c in configs]
    train = _stacked_data(configs, splits, "train", dtype, device)  # x, f, f' each (M, Ntr, 1)
    val = _stacked_data(configs, splits, "val", dtype, device)  # (M, Nval, 1)
    s = _Stack.of(configs, dtype, device)
    fns = _functions(get_activation(c0.activation), dtype, kernels, compile_mode)
    gens = [batch_generator(c) for c in configs]
    history = np.full((len(CURVES), M, c0.epochs), np.nan)  # CURVES x members x epochs
    live = np.ones(M, dtype=bool)  # alive, on the host (s.alive is its device copy)
    diverged_at: dict[int, int] = {}
    every = sync_every or (1 if device.split(":")[0] == "cpu" else SYNC_EVERY)
    best = _Best.of(configs, s) if any(c.checkpoint == "best_val" for c in configs) else None
    best_history = np.zeros((M, c0.epochs))  # per member and epoch, the best epoch so far
    for first in range(0, c0.epochs, every):
        span = range(first, min(first + every, c0.epochs))
        rows, bests = [], []
        for epoch in span:
            rows.append(_epoch(s, fns, train, val, member_batches(c0, train[0].shape[1], gens, device)))
            if best is not None:
                bests.append(best.update(s.theta, rows[-1], epoch))
        history[:, :, span.start : span.stop] = torch.stack(rows, dim=-1).cpu().numpy()  # (CURVES, M, epochs)
        if best is not None:
            best_history[:, span.start : span.stop] = torch.stack(bests, dim=-1).cpu().numpy()
        finite = np.isfinite(history[:, :, span.start : span.stop]).all(axis=0)  # (M, epochs)
        newly = live & ~finite.all(axis=1)
        if newly.any():  # a diverged member's history is cut at its divergence (make_result)
            diverged_at |= {int(i): span.start + int(np.argmin(finite[i])) + 1 for i in np.flatnonzero(newly)}
            live &= ~newly
            s.alive &= torch.as_tensor(live, device=device).view(M, 1, 1)
            if not live.any():
                break
    if best is not None:  # the members scored at their best epoch get its parameters back
        best.restore(s.theta, torch.tensor([c.checkpoint == "best_val" for c in configs], device=device))
    engine = {k: name for name, k in BATCHED_ENGINES.items()}[kernels]
    wall_each = (time.perf_counter() - start) / M
    trained = _Trained(s, history, diverged_at, best_history, splits, train, val, wall_each)
    return _results(trained, configs, engine, fns, start, device)


def _results(t: _Trained, configs: list[RunConfig], engine: str, fns, start: float, device: str) -> list[RunResult]:
    """Every member's result: the group finishes on the whole stack where its runs are staged
    (Gauss-Newton, stages), else member by member."""
    if configs[0].staged:
        return _staged_results(t, configs, engine, start, device)
    return [_member_result(t, i, c, engine, fns, start, device) for i, c in enumerate(configs)]


@dataclass(frozen=True)
class _Trained:
    """A stacked model after its epochs, with what each member's result is made from."""

    stack: _Stack
    history: np.ndarray  # CURVES x members x epochs
    diverged_at: dict[int, int]  # member -> the epoch its loss turned non-finite
    best_history: np.ndarray  # members x epochs: the best epoch so far (checkpoint "best_val")
    splits: list[Split]
    train: tuple[Tensor, ...]  # x, f, f' each (M, Ntr, 1)
    val: tuple[Tensor, ...]
    wall_each: float  # the group's wall time so far, shared by its members


def _member_result(t: _Trained, i: int, config: RunConfig, engine: str, fns, start: float, device: str) -> RunResult:
    """Member i's result: diverged, refined after Adam (finish_refined), or scored as trained."""
    wall_each = t.wall_each
    member_curves = dict(zip(CURVES, t.history[:, i]))
    if i in t.diverged_at:
        return make_result(
            config,
            "diverged",
            member_curves,
            t.diverged_at[i],
            start,
            engine,
            device,
            diverged_epoch=t.diverged_at[i],
            wall_s=wall_each,
        )
    member = [(w[i : i + 1], b[i : i + 1]) for w, b in t.stack.params]
    if config.optimizer != "adam":
        return finish_refined(
            config,
            member,
            t.splits[i],
            member_curves,
            start,
            engine,
            device,
            tuple(x[i : i + 1] for x in t.train),
            tuple(x[i : i + 1] for x in t.val),
            wall_adam=wall_each,
        )
    return make_result(
        config,
        "ok",
        member_curves,
        t.history.shape[2],
        start,
        engine,
        device,
        predict=predictor(member, fns.predict, t.train[0].dtype, device),
        split=t.splits[i],
        wall_s=wall_each,
        best_epochs=t.best_history[i] if config.checkpoint == "best_val" else None,
    )


def _staged_results(t: _Trained, configs: list[RunConfig], engine: str, start: float, device: str) -> list[RunResult]:
    """The group's results where it finishes on the whole stack (stages.finish_staged): the live
    members refine and train their later stages together; diverged ones are scored as such."""
    live = [i for i in range(len(configs)) if i not in t.diverged_at]
    results: dict[int, RunResult] = {}
    if live:
        idx = torch.tensor(live, device=device)
        params = [(w[idx].clone(), b[idx].clone()) for w, b in t.stack.params]
        done = finish_staged(
            [configs[i] for i in live],
            params,
            [t.splits[i] for i in live],
            [dict(zip(CURVES, t.history[:, i])) for i in live],
            tuple(x[idx] for x in t.train),
            tuple(x[idx] for x in t.val),
            (engine, device, start, t.wall_each),
        )
        results = dict(zip(live, done))
    for i, e in t.diverged_at.items():
        curves = dict(zip(CURVES, t.history[:, i]))
        results[i] = make_result(
            configs[i], "diverged", curves, e, start, engine, device, diverged_epoch=e, wall_s=t.wall_each
        )
    return [results[i] for i in range(len(configs))]


def _check_group(configs: list[RunConfig], device: str, kernels: str) -> None:
    if len({c.shape_key() for c in configs}) != 1:
        raise ValueError("train_batched needs configs of one shape (RunConfig.shape_key)")
    if kernels not in BATCHED_ENGINES.values():
        raise ValueError(f"unknown kernels {kernels!r} (valid: {', '.join(BATCHED_ENGINES.values())})")
    if kernels == "native" and (why := native.unavailable(device)) is not None:
        raise ValueError(why)


@dataclass
class _Stack:
    """The stacked model's training state: every parameter of every member in one buffer (theta,
    for Adam), viewed as [(w, b), ...] per layer; the gradients in the same layout; Adam's moments;
    per-parameter learning rates and per-member derivative-loss weights; which members are alive."""

    theta: Tensor
    params: list[tuple[Tensor, Tensor]]
    grad_theta: Tensor
    grad_views: list[Tensor]
    m: Tensor
    v: Tensor
    lr: Tensor  # theta's layout
    weight: Tensor  # (M, 1, 1)
    alive: Tensor  # (M, 1, 1) bool
    step: int = 0

    @classmethod
    def of(cls, configs: list[RunConfig], dtype: torch.dtype, device: str) -> _Stack:
        M = len(configs)
        stacked = [t.detach().to(device) for wb in stack_params([init_params(c) for c in configs]) for t in wb]
        theta, views = packed(stacked)
        grad_theta, grad_views = packed([torch.zeros_like(t) for t in stacked])
        lr_each = torch.tensor([c.lr for c in configs], dtype=dtype, device=device).view(M, 1, 1)
        return cls(
            theta=theta,
            params=list(zip(views[0::2], views[1::2])),
            grad_theta=grad_theta,
            grad_views=grad_views,
            m=torch.zeros_like(theta),
            v=torch.zeros_like(theta),
            lr=torch.cat([lr_each.expand_as(t).reshape(-1) for t in stacked]),
            weight=torch.tensor([c.deriv_weight for c in configs], dtype=dtype, device=device).view(M, 1, 1),
            alive=torch.ones(M, 1, 1, dtype=torch.bool, device=device),
        )


@dataclass
class _Best:
    """Each member's parameters at its epoch of lowest validation loss so far (MSE(f) +
    deriv_weight * MSE(f') on the validation split, in float64 from the epoch's float32 losses,
    as the reference engine computes it; the first epoch of a tie wins), kept on the device."""

    theta: Tensor  # theta's layout
    loss: Tensor  # (M,) float64
    epoch: Tensor  # (M,) the best epoch so far, 1-based (0: none yet)
    weight: Tensor  # (M,) float64
    member_of: Tensor  # (theta's length,) the member each element of theta belongs to

    @classmethod
    def of(cls, configs: list[RunConfig], s: _Stack) -> _Best:
        M, device = len(configs), s.theta.device
        index = torch.arange(M, device=device).view(M, 1, 1)  # theta's layout, as _Stack.of lays out lr
        member_of = torch.cat([index.expand_as(t).reshape(-1) for wb in s.params for t in wb])
        return cls(
            theta=s.theta.clone(),
            loss=torch.full((M,), float("inf"), dtype=torch.float64, device=device),
            epoch=torch.zeros(M, dtype=torch.int64, device=device),
            weight=torch.tensor([c.deriv_weight for c in configs], dtype=torch.float64, device=device),
            member_of=member_of,
        )

    def update(self, theta: Tensor, row: Tensor, epoch: int) -> Tensor:
        """After `epoch` (0-based) with losses `row` (CURVES, M): keep the members that improved
        (a non-finite loss never does); returns the best epoch so far per member."""
        loss = row[2].double() + self.weight * row[3].double()
        better = loss < self.loss
        self.loss = torch.where(better, loss, self.loss)
        self.epoch = torch.where(better, epoch + 1, self.epoch)
        self.theta = torch.where(better[self.member_of], theta, self.theta)
        return self.epoch

    def restore(self, theta: Tensor, members: Tensor) -> None:
        """Put the best parameters back into theta for `members` (M,) bool."""
        theta.copy_(torch.where(members[self.member_of], self.theta, theta))


def member_batches(c0: RunConfig, n_tr: int, gens: list[torch.Generator], device: str) -> list[Tensor | None]:
    """One epoch's batches: [None] for full batch, else (M, B) index tensors, each member drawing
    its own permutation exactly as its reference run would."""
    if c0.batch_size is None or c0.batch_size >= n_tr:
        return [None]
    perms = torch.stack([torch.randperm(n_tr, generator=g) for g in gens]).to(device)
    return list(perms.split(c0.batch_size, dim=1))


def _epoch(
    s: _Stack, fns: _Functions, train: tuple[Tensor, ...], val: tuple[Tensor, ...], batches: list[Tensor | None]
) -> np.ndarray:
    """One epoch of every member: a step and an Adam update per batch, then validation. Returns the
    epoch's (CURVES, M) losses, where they were computed: training MSE of f and f' (summed over
    batches), validation MSEs."""
    sum_f = sum_df = None
    for idx in batches:
        if idx is None:
            xb, yb, dyb = train
        else:
            gi = idx.unsqueeze(-1)  # (M, B, 1)
            xb, yb, dyb = (torch.gather(t, 1, gi) for t in train)
        sq_f, sq_df = fns.step(s.params, xb, yb, dyb, s.weight, s.alive, s.grad_views)
        sum_f, sum_df = (sq_f, sq_df) if sum_f is None else (sum_f + sq_f, sum_df + sq_df)
        s.step += 1
        fns.adam(s.theta, s.grad_theta, s.m, s.v, s.lr, s.step)
    vf, vdf = fns.val(s.params, *val)
    n_tr = train[0].shape[1]
    return torch.stack([sum_f / n_tr, sum_df / n_tr, vf, vdf])
