"""Second-order refinement after the Adam epochs: L-BFGS or Levenberg-Marquardt, one run at a time.

Both minimise the run's own loss, MSE(f) + deriv_weight * MSE(f'), on its full training split,
starting where Adam stopped, with the stacked maths' torch functions (forward-mode tangent and
hand-written backward, stacked.py) on a stack of one member, whichever engine ran the Adam epochs
(`finish_refined`).

- `adam+lbfgs`: torch.optim.LBFGS with a strong-Wolfe line search (history 100), `lbfgs_iters`
  iterations. Iterations that lower the loss by nothing mean the line search has stalled (ReLU's
  piecewise-linear loss does this at once): the refinement stops there and the run keeps the
  point it reached; the stop is recorded (`Refinement.stopped`), it is not an error.
- `adam+lm`: `lm_iters` Levenberg-Marquardt iterations on the 2N residuals
  r = [(f(x_i) - y_i) / sqrt(N); sqrt(lambda) (f'(x_i) - y'_i) / sqrt(N)], whose squared norm is the
  loss. Each iteration builds the exact Jacobian J (2N x P, `jacobian`: one backward pass per point
  and output, all points at once) and solves (J^T J + mu I) delta = -J^T r by Cholesky, in the
  P x P form when P <= 2N and through the 2N x 2N system J J^T otherwise (the same step:
  (J^T J + mu I)^-1 J^T = J^T (J J^T + mu I)^-1). The damping mu follows Nielsen's rule (shrink
  by up to 3x after a good step, double and double again after rejected ones). When no damping
  up to MU_MAX times the initial one yields a lower loss, the damping has run away: the
  refinement stops and says so.

Curves go on through the refinement: the iterations are numbered after the Adam epochs
(epoch = epochs + iteration), L-BFGS recorded every RECORD_EVERY iterations, LM every iteration.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from ..problem.activations import Activation, get_activation
from ..problem.config import RunConfig, RunResult
from ..problem.data import Split
from .common import CURVE_KEYS, make_result
from .model import Params
from .stacked import backward, forward, packed, predictor

RECORD_EVERY = 10  # L-BFGS iterations per recorded curve point
LBFGS_HISTORY = 100
MU_MAX = 1e12  # relative to the initial damping: beyond it, LM's damping has run away
MAX_REJECTIONS = 60  # tries per LM iteration (mu doubles, and doubles its factor, each time)


@dataclass
class Refinement:
    """What a refinement did: the parameters it ended with, its curve points, how it stopped."""

    params: Params
    curves: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in CURVE_KEYS})
    iterations: int = 0  # iterations completed
    stopped: str | None = None  # why it stopped before its iterations were done, if it did
    diverged_at: int | None = None  # epoch number (after Adam's) of a non-finite loss

    def record(self, epoch: int, train: tuple[float, float], val: tuple[float, float]) -> None:
        for k, v in zip(CURVE_KEYS, (epoch, *train, *val)):
            self.curves[k].append(float(v))


def _flat(params: Params) -> tuple[Tensor, Params]:
    """One vector holding a stack-of-one's parameters in the batched order [w1, b1, w2, b2, ...]
    (a copy: the input stays as it is), and views of it shaped like them."""
    flat, views = packed([t for wb in params for t in wb])
    return flat, list(zip(views[0::2], views[1::2]))


def _losses(params: Params, act: Activation, data: tuple[Tensor, Tensor, Tensor]) -> tuple[float, float]:
    """MSE of f and of f' of a stack of one at its points."""
    x, f, df = data
    y, dy, _ = forward(params, act, x)
    return float(((y - f) ** 2).mean()), float(((dy - df) ** 2).mean())


def refine(
    config: RunConfig,
    params: Params,
    act: Activation,
    train: tuple[Tensor, Tensor, Tensor],
    val: tuple[Tensor, Tensor, Tensor],
) -> Refinement:
    """Run the config's refinement from `params` (a stack of one: weights (1, in, out), biases
    (1, 1, out)); `train` and `val` are x, f, f' as (1, N, 1). The input is not modified."""
    with torch.no_grad():
        if config.optimizer == "adam+lbfgs":
            return _lbfgs(config, params, act, train, val)
        if config.optimizer == "adam+lm":
            return _lm(config, params, act, train, val)
    raise ValueError(f"no refinement for optimizer {config.optimizer!r}")


# --------------------------------------------------------------------------- L-BFGS


def _lbfgs(config: RunConfig, params: Params, act: Activation, train, val) -> Refinement:
    flat, views = _flat(params)
    x, f, df = train
    n, weight = x.shape[1], config.deriv_weight
    opt = torch.optim.LBFGS(
        [flat],
        lr=1.0,
        max_iter=RECORD_EVERY,
        max_eval=RECORD_EVERY * 25,
        tolerance_grad=0.0,
        tolerance_change=0.0,
        history_size=LBFGS_HISTORY,
        line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        y, dy, tape = forward(views, act, x)
        r, q = y - f, dy - df
        grads = backward(views, tape, x, r * (2.0 / n), q * (2.0 * weight / n))
        flat.grad = torch.cat([g.reshape(-1) for g in grads])
        return (r * r).mean() + weight * (q * q).mean()

    out = Refinement(params=views)
    loss = sum(w * part for w, part in zip((1.0, weight), _losses(views, act, train)))
    while out.iterations < config.lbfgs_iters:
        opt.param_groups[0]["max_iter"] = min(RECORD_EVERY, config.lbfgs_iters - out.iterations)
        opt.step(closure)
        out.iterations = int(opt.state[flat]["n_iter"])
        train_l = _losses(views, act, train)
        new = train_l[0] + weight * train_l[1]
        out.record(config.epochs + out.iterations, train_l, _losses(views, act, val))
        if not math.isfinite(new):
            out.diverged_at = config.epochs + out.iterations
            return out
        if not new < loss:
            out.stopped = f"line search stalled after {out.iterations} iterations (no lower loss)"
            return out
        loss = new
    return out


# --------------------------------------------------------------------------- Levenberg-Marquardt


def jacobian(params: Params, act: Activation, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """y, dy/dx (each (N,)) of a stack of one at x (1, N, 1), and the Jacobian of [y; dy/dx]
    with respect to the parameters in the batched order, (2N, P).

    The batched engine's backward (batched.py) with the points kept apart instead of summed: the
    two outputs (y and its tangent) are seeded as a leading axis of size 2, and every parameter
    gradient is formed per point (outer products instead of their sum over points)."""
    y, dy, tape = forward(params, act, x)
    n = x.shape[1]
    dt = x.dtype
    # Seeds: output 0 is y (gz = 1, gu = 0), output 1 is dy/dx (gz = 0, gu = 1); shapes (2, N, 1).
    gz = torch.zeros(2, n, 1, dtype=dt, device=x.device)
    gu = torch.zeros_like(gz)
    gz[0] = 1.0
    gu[1] = 1.0
    blocks: list[Tensor] = []  # per layer from the output back: [J_b, J_w]
    for (w, _), (a, t, s, s2, u) in zip(reversed(params[1:]), reversed(tape)):
        w, a, t, s, u = w[0], a[0], t[0], s[0], u[0]  # drop the stack axis: (in, out), (N, in), ...
        s2 = None if s2 is None else s2[0]
        jw = a.unsqueeze(-1) * gz.unsqueeze(-2) + t.unsqueeze(-1) * gu.unsqueeze(-2)  # (2, N, in, out)
        blocks += [gz.reshape(2, n, -1), jw.reshape(2, n, -1)]
        ga, gt = gz @ w.T, gu @ w.T  # (2, N, in)
        gz = ga * s
        if s2 is not None:
            gz = gz + gt * u * s2
        gu = gt * s
    x0 = x[0]  # (N, 1)
    blocks += [gz, x0 * gz + gu]  # first layer: J_b1 = gz, J_w1 = x gz + gu (w1 is also the tangent)
    j = torch.cat(blocks[::-1], dim=2)  # (2, N, P) in the order [w1, b1, w2, b2, ...]
    return y[0, :, 0], dy[0, :, 0], j.reshape(2 * n, -1)


def _residuals(params: Params, act: Activation, train, scale: Tensor) -> Tensor:
    x, f, df = train
    y, dy, _ = forward(params, act, x)
    return torch.cat([(y - f).reshape(-1), (dy - df).reshape(-1)]) * scale


def _lm(config: RunConfig, params: Params, act: Activation, train, val) -> Refinement:
    flat, views = _flat(params)
    x, f, df = train
    n = x.shape[1]
    # Row scales: the loss is the squared norm of the scaled residuals.
    scale = torch.cat([torch.full((n,), 1.0 / math.sqrt(n)), torch.full((n,), math.sqrt(config.deriv_weight / n))])
    scale = scale.to(dtype=x.dtype, device=x.device)
    out = Refinement(params=views)
    mu = nu = None
    for it in range(1, config.lm_iters + 1):
        y, dy, j = jacobian(views, act, x)
        r = torch.cat([y - f.reshape(-1), dy - df.reshape(-1)]) * scale
        j = j * scale.unsqueeze(1)
        loss = float(r @ r)
        g = j.T @ r
        p = j.shape[1]
        gram = j.T @ j if p <= 2 * n else j @ j.T  # the smaller of the two systems
        if mu is None:
            mu0 = 1e-3 * float((j * j).sum(0).max())  # Nielsen: tau * max diag(J^T J)
            mu, nu, mu_limit = mu0, 2.0, mu0 * MU_MAX
        eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
        for _ in range(MAX_REJECTIONS):
            chol, info = torch.linalg.cholesky_ex(gram + mu * eye)
            if int(info) == 0:
                if p <= 2 * n:
                    delta = -torch.cholesky_solve(g.unsqueeze(1), chol)[:, 0]
                else:
                    delta = -(j.T @ torch.cholesky_solve(r.unsqueeze(1), chol)[:, 0])
                flat.add_(delta)
                r_new = _residuals(views, act, train, scale)
                new = float(r_new @ r_new)
                predicted = float(delta @ (mu * delta - g))
                rho = (loss - new) / predicted if predicted > 0 else -1.0
                if math.isfinite(new) and rho > 0:
                    mu *= max(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3)
                    nu = 2.0
                    break
                flat.sub_(delta)
            mu *= nu
            nu *= 2.0
            if mu > mu_limit:
                break
        else:
            mu = mu_limit * 2  # every try rejected
        if mu > mu_limit:
            out.stopped = f"damping ran away at iteration {it} (no lower loss up to {MU_MAX:g}x the initial damping)"
            return out
        out.iterations = it
        out.record(config.epochs + it, _losses(views, act, train), _losses(views, act, val))
    return out


def refine_arrays(r: Refinement) -> dict[str, np.ndarray]:
    """The refinement's curve points as arrays, ready to append to the Adam epochs' curves."""
    return {k: np.asarray(v, np.float64) for k, v in r.curves.items()}


def finish_refined(
    config: RunConfig,
    member: Params,
    split: Split,
    curves: dict[str, np.ndarray],
    start: float,
    engine: str,
    device: str,
    train: tuple[Tensor, ...],
    val: tuple[Tensor, ...],
    wall_adam: float | None = None,
) -> RunResult:
    """A run's result after its refinement (refine.py) from the Adam epochs' parameters `member`
    (a stack of one), whichever engine trained those; the refinement's time is the run's own."""
    t0 = time.perf_counter()
    act = get_activation(config.activation)
    r = refine(config, member, act, train, val)
    wall = time.perf_counter() - start if wall_adam is None else wall_adam + time.perf_counter() - t0
    kw = dict(after=refine_arrays(r), wall_s=wall)
    if r.diverged_at is not None:
        return make_result(
            config, "diverged", curves, config.epochs, start, engine, device, diverged_epoch=r.diverged_at, **kw
        )
    predict = predictor(r.params, lambda p, x: forward(p, act, x)[:2], getattr(torch, config.dtype), device)
    return make_result(config, "ok", curves, config.epochs, start, engine, device, predict=predict, split=split, **kw)
