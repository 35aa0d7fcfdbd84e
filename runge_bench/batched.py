"""The batched engine: M runs of one shape trained as one stacked model, backward written by hand.

Shapes: M members, N points, H units; weights (M, in, out), biases (M, 1, out). Every hidden layer
carries its value a and its input derivative (tangent) t = da/dx:

    forward   z = a @ W + b,  u = t @ W               pre-activation and its tangent
              a' = sigma(z),  t' = sigma'(z) * u
    backward  gW = a^T @ gz + t^T @ gu,  gb = sum(gz)
              ga = gz @ W^T,  gt = gu @ W^T
              gu = gt * sigma'(z),  gz = ga * sigma'(z) + gt * u * sigma''(z)

The first layer maps a scalar x, so its tangent is W1 itself at every point; the one-unit output
layer is a weighted sum. Two implementations compute the step:

- the torch functions here (`forward`, `backward`, `loss_and_grads`): the specification, and what
  runs on a GPU or under torch.compile. The output layer's forward uses multiply-and-sum (bmm's
  matrix times column is ~5x slower on CPU, measured); its weight gradient and the first layer's
  sums are row vectors times a matrix, which bmm does in one pass.
- `native.NativeKernels` (the default on CPU): the same step in C++ (kernels.cpp), which streams
  the points through the network in blocks of 32, value and tangent rows stacked, so that each
  block stays in cache from one product to the next elementwise loop instead of a pass over
  memory per op. Tests hold it to the torch functions, and both to autograd.

Adam is elementwise, so one update over stacked parameters with a per-member learning rate is M
independent optimisers. Per-member generators give each member the split, init and batch order
of the reference run with the same config, whatever group it is packed into.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from .activations import Activation, get_activation
from .config import BATCHED_ENGINES, RunConfig, RunResult
from .model import Params, init_params, stack_params
from .train import ADAM_BETAS, ADAM_EPS, CURVES, batch_generator, make_result, targets
from .target import Split, get_target, make_split


Tape = list[tuple[Tensor, Tensor, Tensor, Tensor | None, Tensor]]  # per hidden layer: a, t, s, s2, u


def forward(params: Params, act: Activation, x: Tensor) -> tuple[Tensor, Tensor, Tape]:
    """y and dy/dx of M stacked networks at x (M, N, 1), both (M, N, 1), and what backward needs."""
    w1, b1 = params[0]  # (M, 1, H)
    z = torch.addcmul(b1, x, w1)  # (M, N, H): the first layer maps a scalar, an outer product
    u: Tensor = w1  # dz/dx of the first layer: (M, 1, H), the same at every point
    tape: Tape = []
    for w, b in params[1:]:
        a, s, s2 = act.derivatives(z)
        t = s * u
        tape.append((a, t, s, s2, u))
        if w.shape[-1] == 1:  # the output layer: a weighted sum
            wt = w.transpose(1, 2)  # (M, 1, in)
            z, u = (a * wt).sum(-1, keepdim=True).add_(b), (t * wt).sum(-1, keepdim=True)
        else:
            z, u = torch.baddbmm(b, a, w), torch.bmm(t, w)
    return z, u, tape


def backward(params: Params, tape: Tape, x: Tensor, gy: Tensor, gdy: Tensor) -> list[Tensor]:
    """Gradients of the summed loss given dL/dy and dL/d(dy/dx) (both (M, N, 1)), in the order
    [w1, b1, w2, b2, ...]."""
    gz, gu = gy, gdy  # grads of the current layer's pre-activation z and its tangent u
    grads: list[Tensor] = []
    for (w, _), (a, t, s, s2, u) in zip(reversed(params[1:]), reversed(tape)):
        gb = gz.sum(1, keepdim=True)
        wt = w.transpose(1, 2)
        if w.shape[-1] == 1:  # the output layer: a row vector times a matrix, and outer products
            gw = torch.baddbmm(torch.bmm(gz.transpose(1, 2), a), gu.transpose(1, 2), t).transpose(1, 2)
            ga, gt = gz * wt, gu * wt  # (M, N, in)
        else:
            gw = torch.baddbmm(torch.bmm(a.transpose(1, 2), gz), t.transpose(1, 2), gu)  # (M, in, out)
            ga, gt = torch.bmm(gz, wt), torch.bmm(gu, wt)  # (M, N, in)
        grads += [gb, gw]
        gz = ga.mul_(s)  # through a = sigma(z), in place: ga is ours
        if s2 is not None:  # and through sigma'(z) in t = sigma'(z) * u
            gz.addcmul_(gt * u, s2)
        gu = gt.mul_(s)
    # First layer: z = x w1 + b1 and u = w1, so w1 collects both the value and the tangent path.
    # [sum x gz; sum gz] as one (2, N) x (N, H) product: a single pass over gz.
    x1 = torch.cat([x, torch.ones_like(x)], dim=2).transpose(1, 2)  # (M, 2, N)
    xgz, gb1 = torch.bmm(x1, gz).split(1, dim=1)
    grads += [gb1, xgz + gu.sum(1, keepdim=True)]
    return grads[::-1]


def adam_step(params: list[Tensor], grads: list[Tensor], m: list[Tensor], v: list[Tensor],
              step: int, lr: Tensor) -> None:  # fmt: skip
    """One Adam update, in place, for stacked parameters with a per-member lr of shape (M, 1, 1).

    Follows torch.optim.Adam's arithmetic (lerp for the first moment, bias corrections as floats).
    """
    b1, b2 = ADAM_BETAS
    step_size = lr / (1 - b1**step)
    bc2_sqrt = (1 - b2**step) ** 0.5
    for p, g, m_, v_ in zip(params, grads, m, v):
        m_.lerp_(g, 1 - b1)
        v_.mul_(b2).addcmul_(g, g, value=1 - b2)
        p.sub_(step_size * m_ / (v_.sqrt() / bc2_sqrt + ADAM_EPS))


def keep_freed_memory() -> None:
    """Ask glibc to keep freed memory for reuse instead of returning it to the OS.

    A stacked step allocates and frees tensors of a few MB each; by default glibc serves these
    with fresh mmaps (or trims them from the heap on free), so every step pays for page faults,
    which made elementwise ops several times slower than their arithmetic in a VM (measured).
    A process-wide setting, so it is called by worker processes (sweep, bench), not on import.
    No-op where glibc is not the allocator.
    """
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 1 << 30)  # allocations below 1 GiB come from the heap
        libc.mallopt(m_trim_threshold, 1 << 30)  # and freed heap memory is kept, up to 1 GiB
    except (OSError, AttributeError):
        pass


def _packed(tensors: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
    """One contiguous buffer holding `tensors` back to back, and views of it shaped like them.

    Adam then updates all parameters of all members in a handful of elementwise ops instead of a
    handful per parameter tensor, and each view stays contiguous for bmm.
    """
    buffer = torch.cat([t.reshape(-1) for t in tensors])
    return buffer, views_of(buffer, tensors)


def views_of(buffer: Tensor, like: list[Tensor]) -> list[Tensor]:
    """Views of a flat buffer shaped like the tensors `like`, laid out back to back."""
    views, offsets = [], np.cumsum([0] + [t.numel() for t in like])
    for t, i in zip(like, offsets[:-1]):
        views.append(buffer[int(i) : int(i) + t.numel()].view_as(t))
    return views


def _stacked_data(configs: list[RunConfig], splits: list[Split], which: str, dtype, device) -> tuple[Tensor, Tensor, Tensor]:
    """x, f, f' of every member's target on its train or val split, stacked to (M, N, 1)."""
    parts = [targets(getattr(s, f"x_{which}"), dtype, device, get_target(c.target)) for c, s in zip(configs, splits)]
    return tuple(torch.stack(p) for p in zip(*parts))  # type: ignore[return-value]


def loss_and_grads(params: Params, act: Activation, x: Tensor, f: Tensor, df: Tensor, weight: Tensor,
                   alive: Tensor) -> tuple[list[Tensor], Tensor, Tensor]:  # fmt: skip
    """One step's gradients of sum_m [MSE(f) + w_m MSE(f')] and each member's summed squared
    residuals of f and f' (for the epoch's mean losses). Diverged members get zero gradients."""
    n = x.shape[1]
    y, dy, tape = forward(params, act, x)
    r, q = y - f, dy - df  # (M, N, 1)
    gy = torch.where(alive, r * (2.0 / n), 0.0)  # where, not a multiply: NaN * 0 is NaN
    gdy = torch.where(alive, q * (2.0 / n) * weight, 0.0)
    sq = lambda e: (e * e).sum(dim=(1, 2)).double()  # noqa: E731
    return backward(params, tape, x, gy, gdy), sq(r), sq(q)


def val_losses(params: Params, act: Activation, x: Tensor, f: Tensor, df: Tensor) -> tuple[Tensor, Tensor]:
    """Each member's MSE of f and f' at x."""
    y, dy, _ = forward(params, act, x)
    return ((y - f) ** 2).mean(dim=(1, 2)).double(), ((dy - df) ** 2).mean(dim=(1, 2)).double()


@functools.lru_cache(maxsize=None)
def _compiled(activation: str) -> tuple[Callable, Callable]:
    """torch.compile of the torch kernels' step and validation for one activation, made once per
    process and keyed by the activation's name (inductor compiles again, and caches, per shape and
    dtype under dynamic=False)."""
    act = get_activation(activation)
    grads_fn = lambda p, x, f, df, w, alive: loss_and_grads(p, act, x, f, df, w, alive)  # noqa: E731
    val = lambda p, x, f, df: val_losses(p, act, x, f, df)  # noqa: E731
    return torch.compile(grads_fn, dynamic=False), torch.compile(val, dynamic=False)


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


def _functions(act: Activation, dtype: torch.dtype, kernels: str) -> _Functions:
    """The training functions for kernels "torch", "compile" (the torch kernels through
    torch.compile, which fuses their elementwise work into a few loops; compiled once per process
    and activation, and again for each new shape) or "native" (the whole step in C++)."""
    if kernels == "native":
        from .native import NativeKernels

        native = NativeKernels(act.name, dtype)
        step = lambda p, x, f, df, w, alive, out: native.loss_and_grads(p, x, f, df, w, alive, out)[1:]  # noqa: E731
        return _Functions(step, native.val_losses, native.adam, native.predict)
    grads_fn = lambda p, x, f, df, w, alive: loss_and_grads(p, act, x, f, df, w, alive)  # noqa: E731
    val = lambda p, x, f, df: val_losses(p, act, x, f, df)  # noqa: E731
    if kernels == "compile":
        grads_fn, val = _compiled(act.name)

    def step(p, x, f, df, w, alive, out):
        grads, sq_f, sq_df = grads_fn(p, x, f, df, w, alive)
        torch._foreach_copy_(out, grads)
        return sq_f, sq_df

    def adam(theta, grad, m, v, lr, t):
        adam_step([theta], [grad], [m], [v], t, lr)

    return _Functions(step, val, adam, lambda p, x: forward(p, act, x)[:2])


@torch.no_grad()
def train_batched(configs: list[RunConfig], device: str = "cpu", kernels: str = "torch") -> list[RunResult]:
    """Train runs that share a shape (RunConfig.shape_key) as one stacked model.

    Seeds, deriv_weight and lr may differ between members. A member whose loss turns non-finite
    is marked diverged at that epoch and its gradient zeroed; the others train on unaffected
    (every stacked operation is block-diagonal over members).
    """
    _check_group(configs, device, kernels)
    start = time.perf_counter()
    c0, M = configs[0], len(configs)
    dtype = getattr(torch, c0.dtype)
    splits = [make_split(c.n_points, c.val_fraction, c.seed) for c in configs]
    train = _stacked_data(configs, splits, "train", dtype, device)  # x, f, f' each (M, Ntr, 1)
    val = _stacked_data(configs, splits, "val", dtype, device)  # (M, Nval, 1)
    s = _Stack.of(configs, dtype, device)
    fns = _functions(get_activation(c0.activation), dtype, kernels)
    gens = [batch_generator(c) for c in configs]
    history = np.full((len(CURVES), M, c0.epochs), np.nan)  # CURVES x members x epochs
    live = np.ones(M, dtype=bool)  # alive, on the host (s.alive is its device copy)
    diverged_at: dict[int, int] = {}
    for epoch in range(c0.epochs):
        rows = _epoch(s, fns, train, val, _batches(c0, train[0].shape[1], gens, device))  # (CURVES, M)
        history[:, :, epoch] = rows  # a diverged member's history is cut at its divergence
        newly = live & ~np.isfinite(rows).all(axis=0)
        if newly.any():
            diverged_at |= {int(i): epoch + 1 for i in np.flatnonzero(newly)}
            live &= ~newly
            s.alive &= torch.as_tensor(live, device=device).view(M, 1, 1)
            if not live.any():
                break
    engine = {k: name for name, k in BATCHED_ENGINES.items()}[kernels]
    wall_each = (time.perf_counter() - start) / M
    results = []
    for i, config in enumerate(configs):
        member_curves = dict(zip(CURVES, history[:, i]))
        if i in diverged_at:
            results.append(make_result(config, "diverged", member_curves, diverged_at[i], start, engine,
                                       device, diverged_epoch=diverged_at[i], wall_s=wall_each))  # fmt: skip
            continue
        member = [(w[i : i + 1], b[i : i + 1]) for w, b in s.params]
        if config.optimizer != "adam":
            results.append(finish_refined(config, member, splits[i], member_curves, start, engine, device,
                                          tuple(t[i : i + 1] for t in train), tuple(t[i : i + 1] for t in val),
                                          wall_adam=wall_each))  # fmt: skip
            continue
        results.append(make_result(config, "ok", member_curves, c0.epochs, start, engine, device,
                                   predict=_predictor(member, fns.predict, dtype, device), split=splits[i],
                                   wall_s=wall_each))  # fmt: skip
    return results


def finish_refined(config: RunConfig, member: Params, split: Split, curves: dict[str, np.ndarray], start: float,
                   engine: str, device: str, train: tuple[Tensor, ...], val: tuple[Tensor, ...],
                   wall_adam: float | None = None) -> RunResult:  # fmt: skip
    """A run's result after its refinement (refine.py) from the Adam epochs' parameters `member`
    (a stack of one), whichever engine trained those; the refinement's time is the run's own."""
    from .refine import refine, refine_arrays

    t0 = time.perf_counter()
    act = get_activation(config.activation)
    r = refine(config, member, act, train, val)
    wall = (time.perf_counter() - start if wall_adam is None else wall_adam + time.perf_counter() - t0)
    kw = dict(after=refine_arrays(r), wall_s=wall)
    if r.diverged_at is not None:
        return make_result(config, "diverged", curves, config.epochs, start, engine, device,
                           diverged_epoch=r.diverged_at, **kw)  # fmt: skip
    predict = _predictor(r.params, lambda p, x: forward(p, act, x)[:2], getattr(torch, config.dtype), device)
    return make_result(config, "ok", curves, config.epochs, start, engine, device, predict=predict, split=split, **kw)


def _check_group(configs: list[RunConfig], device: str, kernels: str) -> None:
    if len({c.shape_key() for c in configs}) != 1:
        raise ValueError("train_batched needs configs of one shape (RunConfig.shape_key)")
    if kernels not in BATCHED_ENGINES.values():
        raise ValueError(f"unknown kernels {kernels!r} (valid: {', '.join(BATCHED_ENGINES.values())})")
    if kernels == "native":
        from .native import unavailable

        if (why := unavailable(device)) is not None:
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
        theta, views = _packed(stacked)
        grad_theta, grad_views = _packed([torch.zeros_like(t) for t in stacked])
        lr_each = torch.tensor([c.lr for c in configs], dtype=dtype, device=device).view(M, 1, 1)
        return cls(theta=theta, params=list(zip(views[0::2], views[1::2])), grad_theta=grad_theta,
                   grad_views=grad_views, m=torch.zeros_like(theta), v=torch.zeros_like(theta),
                   lr=torch.cat([lr_each.expand_as(t).reshape(-1) for t in stacked]),
                   weight=torch.tensor([c.deriv_weight for c in configs], dtype=dtype, device=device).view(M, 1, 1),
                   alive=torch.ones(M, 1, 1, dtype=torch.bool, device=device))  # fmt: skip


def _batches(c0: RunConfig, n_tr: int, gens: list[torch.Generator], device: str) -> list[Tensor | None]:
    """One epoch's batches: [None] for full batch, else (M, B) index tensors, each member drawing
    its own permutation exactly as its reference run would."""
    if c0.batch_size is None or c0.batch_size >= n_tr:
        return [None]
    perms = torch.stack([torch.randperm(n_tr, generator=g) for g in gens]).to(device)
    return list(perms.split(c0.batch_size, dim=1))


def _epoch(s: _Stack, fns: _Functions, train: tuple[Tensor, ...], val: tuple[Tensor, ...],
           batches: list[Tensor | None]) -> np.ndarray:  # fmt: skip
    """One epoch of every member: a step and an Adam update per batch, then validation. Returns the
    epoch's (CURVES, M) losses: training MSE of f and f' (summed over batches), validation MSEs."""
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
    return torch.stack([sum_f / n_tr, sum_df / n_tr, vf, vdf]).cpu().numpy()


def _predictor(member: Params, predict, dtype, device, chunk: int = 2048):
    """f and f' of one member at numpy points, in chunks so that wide layers stay in cache."""

    def at(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xt = torch.as_tensor(x, dtype=dtype, device=device).view(1, -1, 1)
        parts = [predict(member, xc.contiguous()) for xc in xt.split(chunk, dim=1)]
        y, dy = (torch.cat(p, dim=1).double().cpu().numpy()[0, :, 0] for p in zip(*parts))
        return y, dy

    return at
