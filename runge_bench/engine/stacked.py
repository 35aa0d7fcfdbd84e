"""The stacked MLP's maths: M networks of one shape as one set of tensors, backward by hand.

Shapes: M members, N points, H units; weights (M, in, out), biases (M, 1, out). Every hidden layer
carries its value a and its input derivative (tangent) t = da/dx:

    forward   z = a @ W + b,  u = t @ W               pre-activation and its tangent
              a' = sigma(z),  t' = sigma'(z) * u
    backward  gW = a^T @ gz + t^T @ gu,  gb = sum(gz)
              ga = gz @ W^T,  gt = gu @ W^T
              gu = gt * sigma'(z),  gz = ga * sigma'(z) + gt * u * sigma''(z)

The first layer maps a scalar x, so its tangent is W1 itself at every point; the one-unit output
layer is a weighted sum. These torch functions (`forward`, `backward`, `loss_and_grads`) are the
specification of the batched engine's step, and what runs on a GPU or under torch.compile. The
output layer's forward uses multiply-and-sum (bmm's matrix times column is ~5x slower on CPU,
measured); its weight gradient and the first layer's sums are row vectors times a matrix, which
bmm does in one pass. `native.NativeKernels` computes the same step in C++; tests hold it to
these functions, and both to autograd. The refinements (refine.py) use them on a stack of one.

Adam is elementwise, so one update over stacked parameters with a per-member learning rate is M
independent optimisers.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from ..problem.activations import Activation
from .common import ADAM_BETAS, ADAM_EPS
from .model import Params

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


def tangent(params: Params, tape: Tape, x: Tensor, v: list[Tensor]) -> tuple[Tensor, Tensor]:
    """The directional derivative (JVP) of y and dy/dx, each (M, N, 1), along parameters v (shaped
    like `params`' tensors, in the order [w1, b1, w2, b2, ...]), from the tape of `forward`:

        dz1 = x dW1 + db1,  du1 = dW1
        da = s dz,  dt = s'' u dz + s du               through a = sigma(z), t = sigma'(z) u
        dz' = da W + a dW + db,  du' = dt W + t dW     the next layer

    The Gauss-Newton solver's J v (gauss_newton.py), as `backward` is its J^T u."""
    dz = torch.addcmul(v[1], x, v[0])  # (M, N, H)
    du: Tensor = v[0]  # (M, 1, H)
    for (w, _), dw, db, (a, t, s, s2, u) in zip(params[1:], v[2::2], v[3::2], tape):
        da = s * dz
        dt = s * du if s2 is None else torch.addcmul(s * du, s2 * u, dz)
        if w.shape[-1] == 1:  # the output layer: weighted sums
            wt, dwt = w.transpose(1, 2), dw.transpose(1, 2)
            dz = (da * wt + a * dwt).sum(-1, keepdim=True).add_(db)
            du = (dt * wt + t * dwt).sum(-1, keepdim=True)
        else:
            dz = torch.baddbmm(torch.baddbmm(db, da, w), a, dw)
            du = torch.baddbmm(torch.bmm(dt, w), t, dw)
    return dz, du


def loss_and_grads(
    params: Params, act: Activation, x: Tensor, f: Tensor, df: Tensor, weight: Tensor, alive: Tensor
) -> tuple[list[Tensor], Tensor, Tensor]:
    """One step's gradients of sum_m [MSE(f) + w_m MSE(f')] and each member's summed squared
    residuals of f and f' (for the epoch's mean losses). Diverged members get zero gradients."""
    n = x.shape[1]
    y, dy, tape = forward(params, act, x)
    r, q = y - f, dy - df  # (M, N, 1)
    gy = torch.where(alive, r * (2.0 / n), 0.0)  # where, not a multiply: NaN * 0 is NaN
    gdy = torch.where(alive, q * (2.0 / n) * weight, 0.0)
    sq = lambda e: (e * e).sum(dim=(1, 2)).double()
    return backward(params, tape, x, gy, gdy), sq(r), sq(q)


def val_losses(params: Params, act: Activation, x: Tensor, f: Tensor, df: Tensor) -> tuple[Tensor, Tensor]:
    """Each member's MSE of f and f' at x."""
    y, dy, _ = forward(params, act, x)
    return ((y - f) ** 2).mean(dim=(1, 2)).double(), ((dy - df) ** 2).mean(dim=(1, 2)).double()


def adam_step(
    params: list[Tensor], grads: list[Tensor], m: list[Tensor], v: list[Tensor], step: int, lr: Tensor
) -> None:
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


def packed(tensors: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
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


def predictor(
    member: Params, predict: Callable, dtype: torch.dtype, device: str, chunk: int = 2048
) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """f and f' of one member at numpy points, in chunks so that wide layers stay in cache."""

    def at(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        xt = torch.as_tensor(x, dtype=dtype, device=device).view(1, -1, 1)
        parts = [predict(member, xc.contiguous()) for xc in xt.split(chunk, dim=1)]
        y, dy = (torch.cat(p, dim=1).double().cpu().numpy()[0, :, 0] for p in zip(*parts))
        return y, dy

    return at
