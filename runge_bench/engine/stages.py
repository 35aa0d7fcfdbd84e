"""Multi-stage training (Wang & Lai, J. Comput. Phys. 2024) and the matrix-free Gauss-Newton
refinement, for every member of a stack at once.

A run with `stages = S` trains S networks of its shape one after another. Stage 1 is the run
itself (its Adam epochs, then its refinement). Stage s + 1 fits the scaled residual of the sum so
far: with e_s the RMS of the f residual at the training points after stage s,

    targets   (f - F_s) / e_s  and  (f' - F_s') / e_s        F_s = sum of the stages so far
    model     F_{s+1} = F_s + e_s * net_{s+1}

so every stage sees a target of unit size and the loss of the sum is e_s^2 times the stage's.
Each stage keeps the derivative loss (MSE(f) + deriv_weight * MSE(f'), on its own targets) and
trains as the run does: its epochs of full-batch Adam at its lr (stage 1 on the run's engine, later
ones on stacked.py's torch functions), then its refinement. A residual oscillates faster than the
target, so a later stage's first layer is set from the residual's dominant frequency f_d (the
peak of its spectrum, interpolated onto 1,024 even points): the default first-layer weights are
scaled by kappa = max(1, 2 pi f_d / omega), omega the activation's own frequency (1; SIREN's
omega0 for sine), and each unit's centre -b/w is drawn uniformly on [-1, 1] (Wang & Lai's
kappa-scaled first layer). Its initial weights come from the run's seed and the stage number.

Refinements here: `adam` (none) and `adam+gn`, matrix-free Gauss-Newton (gauss_newton.py), both
on the whole stack. A member whose stage turns non-finite keeps the stages before it (the stage's
scale is set to 0) and trains no more stages; the curves say where.

Curves go on through the refinement and the later stages, numbered after the run's epochs, with
the losses of the sum: every Gauss-Newton iteration and every Adam epoch of a later stage.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from ..problem.activations import SIREN_OMEGA0, Activation, get_activation
from ..problem.config import RunConfig, RunResult
from ..problem.data import Split, stream_seed
from .common import CURVE_KEYS, make_result
from .gauss_newton import gauss_newton
from .model import Params, init_params, stack_params
from .stacked import adam_step, forward, loss_and_grads, predictor, val_losses

STAGE_STREAM = 16  # stage s's initialisation draws from the run's stream STAGE_STREAM + s
SPECTRUM_POINTS = 1024
OWN_FREQUENCY = {"sin": SIREN_OMEGA0}  # omega: the activation's frequency at unit pre-activation slope


Data = tuple[Tensor, Tensor, Tensor]  # x, f, f' each (M, N, 1)


@dataclass
class Staged:
    """A stack's networks after its stages: per stage the stacked parameters and each member's
    scale (M, 1, 1); the sum is sum_s scale_s * net_s. `after` holds each member's curve points
    after its Adam epochs (refinements and later stages)."""

    act: Activation
    nets: list[Params] = field(default_factory=list)
    scales: list[Tensor] = field(default_factory=list)
    after: list[dict[str, list[float]]] = field(default_factory=list)

    def at(self, x: Tensor, members: slice = slice(None)) -> tuple[Tensor, Tensor]:
        """f and f' of the sum at x ((m, N, 1) for the selected members)."""
        y = dy = None
        for net, scale in zip(self.nets, self.scales):
            a, da, _ = forward([(w[members], b[members]) for w, b in net], self.act, x)
            s = scale[members]
            y, dy = (a * s, da * s) if y is None else (y + a * s, dy + da * s)
        return y, dy


def dominant_frequency(x: Tensor, r: Tensor) -> np.ndarray:
    """Per member, the frequency (cycles per unit length) of the largest non-constant Fourier
    component of r (M, N, 1) at x (M, N, 1), interpolated onto SPECTRUM_POINTS even points."""
    out = []
    even = np.linspace(-1.0, 1.0, SPECTRUM_POINTS)
    for xi, ri in zip(x[..., 0].cpu().double().numpy(), r[..., 0].cpu().double().numpy()):
        order = np.argsort(xi)
        v = np.interp(even, xi[order], ri[order])
        spectrum = np.abs(np.fft.rfft(v - v.mean()))
        out.append((int(np.argmax(spectrum[1:])) + 1) / 2.0)  # k cycles over a length of 2
    return np.asarray(out)


def stage_init(configs: list[RunConfig], stage: int, frequency: np.ndarray, like: Tensor) -> Params:
    """The stacked initial parameters of stage `stage` (2, 3, ...): the run's default
    initialisation drawn from its stage stream, first layer scaled to the residual's frequency."""
    members = []
    for c, fd in zip(configs, frequency):
        params = init_params(c, seed=stream_seed(c.seed, STAGE_STREAM + stage))
        g = torch.Generator().manual_seed(stream_seed(c.seed, STAGE_STREAM + stage) + 1)
        kappa = max(1.0, 2.0 * math.pi * float(fd) / OWN_FREQUENCY.get(c.activation, 1.0))
        w1, b1 = params[0]  # (H, 1), (H,)
        w1.mul_(kappa)
        centres = torch.rand(b1.shape, generator=g, dtype=b1.dtype) * 2.0 - 1.0
        b1.copy_(-w1[:, 0] * centres)
        members.append(params)
    return [(w.detach().to(like.device), b.detach().to(like.device)) for w, b in stack_params(members)]


def adam_epochs(configs: list[RunConfig], act: Activation, params: Params, train: Data, val: Data, record) -> None:
    """The run's epochs of full-batch Adam at its lr on a later stage, in place; record(epoch,
    train_losses, val_losses) after each (each (2, M): MSE of f and f')."""
    c0, M = configs[0], len(configs)
    dtype, device = train[0].dtype, train[0].device
    leaves = [t for wb in params for t in wb]
    m = [torch.zeros_like(t) for t in leaves]
    v = [torch.zeros_like(t) for t in leaves]
    lr = torch.tensor([c.lr for c in configs], dtype=dtype, device=device).view(M, 1, 1)
    weight = torch.tensor([c.deriv_weight for c in configs], dtype=dtype, device=device).view(M, 1, 1)
    alive = torch.ones(M, 1, 1, dtype=torch.bool, device=device)
    n = train[0].shape[1]
    for epoch in range(1, c0.epochs + 1):
        grads, sq_f, sq_df = loss_and_grads(params, act, *train, weight, alive)
        adam_step(leaves, grads, m, v, epoch, lr)
        record(epoch, torch.stack([sq_f / n, sq_df / n]), torch.stack(val_losses(params, act, *val)))


class _Curves:
    """Each member's curve points after its Adam epochs, with the losses of the sum: a stage's
    losses times its scale squared; members no longer alive get none."""

    def __init__(self, members: int):
        self.after: list[dict[str, list[float]]] = [{k: [] for k in CURVE_KEYS} for _ in range(members)]
        self.alive = np.ones(members, dtype=bool)

    def point(self, epoch: int, scale: Tensor, train: Tensor, val: Tensor) -> None:
        """train, val: (2, M) MSEs of f and f' on the stage's targets; scale (M, 1, 1)."""
        s2 = (scale[:, 0, 0] ** 2).double()
        rows = torch.cat([train.double() * s2, val.double() * s2]).cpu().numpy()  # (4, M)
        for i in np.flatnonzero(self.alive):
            for k, v in zip(CURVE_KEYS, (epoch, *rows[:, i])):
                self.after[i][k].append(float(v))


def train_stages(configs: list[RunConfig], act: Activation, params: Params, train: Data, val: Data) -> Staged:
    """A stack's refinement and later stages, from its first stage's parameters after the Adam
    epochs (stacked, plain tensors; used in place). train and val are x, f, f' (M, N, 1)."""
    c0, M = configs[0], len(configs)
    staged = Staged(act)
    curves = _Curves(M)
    weight = torch.tensor([c.deriv_weight for c in configs], dtype=train[0].dtype, device=train[0].device)
    scale = torch.ones(M, 1, 1, dtype=train[0].dtype, device=train[0].device)
    net = params
    for stage in range(1, c0.stages + 1):
        epoch = (stage - 1) * (c0.epochs + c0.gn_iters)  # where the stage's curve points start
        if stage > 1:
            net = stage_init(configs, stage, dominant_frequency(train[0], train[1]), train[0])
        _train_stage(configs, act, (net, stage, epoch, scale), train, val, curves)
        if stage > 1:
            _least_squares_output(net, act, train, weight)
        train, val, scale = _next_stage(staged, curves, net, scale, train, val)
    staged.after = curves.after
    return staged


def _train_stage(configs: list[RunConfig], act: Activation, at: tuple, train: Data, val: Data, curves: _Curves) -> None:
    """One stage's Adam epochs (after the first stage, whose epochs the engine ran) and its
    Gauss-Newton iterations, in place on its network; at: the network, the stage number, the
    epoch its curve points follow and the stage's scale."""
    net, stage, epoch, scale = at
    c0 = configs[0]
    if stage > 1:  # the first stage's epochs are the run's own, trained by its engine
        adam_epochs(configs, act, net, train, val, lambda e, tr, va: curves.point(epoch + e, scale, tr, va))
    epoch += c0.epochs
    if c0.optimizer == "adam+gn":
        weight = torch.tensor([c.deriv_weight for c in configs], dtype=train[0].dtype, device=train[0].device)

        def record(it: int) -> None:
            tr, va = (torch.stack(val_losses(net, act, *data)) for data in (train, val))
            curves.point(epoch + it, scale, tr, va)

        gauss_newton(act, net, train, weight, c0.gn_iters, record)


def _least_squares_output(net: Params, act: Activation, train: Data, weight: Tensor) -> None:
    """Scale a later stage's output layer by each member's least-squares coefficient c, the c that
    minimises |t - c n|^2 (n the stage's f and f' at the training points, t its targets, f' rows
    weighted by deriv_weight): c is ~1 for a stage that fits, and a stage that fits worse than
    nothing is shrunk towards 0, so no stage raises the training loss of the sum."""
    with torch.no_grad():
        x, f, df = train
        y, dy, _ = forward(net, act, x)
        w = weight.view(-1, 1, 1)
        num = (f * y).sum(dim=(1, 2)) + (w * df * dy).sum(dim=(1, 2))
        den = (y * y).sum(dim=(1, 2)) + (w * dy * dy).sum(dim=(1, 2))
        c = torch.where(den > 0, num / torch.where(den > 0, den, 1.0), 0.0).view(-1, 1, 1)
        c = torch.where(torch.isfinite(c), c, 0.0)
        w_out, b_out = net[-1]
        w_out.mul_(c)
        b_out.mul_(c)


def _next_stage(staged: Staged, curves: _Curves, net: Params, scale: Tensor, train: Data, val: Data):
    """Keep a finished stage (0 scale for members it made non-finite, which stop there) and return
    the next stage's targets and scales."""
    with torch.no_grad():
        y, dy, _ = forward(net, staged.act, train[0])
        rf, rd = train[1] - y, train[2] - dy
        finite = torch.isfinite(rf).all(dim=1) & torch.isfinite(rd).all(dim=1)  # (M, 1)
        keep = torch.as_tensor(curves.alive, device=finite.device).view(-1, 1) & finite
        curves.alive &= keep[:, 0].cpu().numpy()
        staged.nets.append(net)
        staged.scales.append(torch.where(keep.unsqueeze(-1), scale, 0.0))
        e = torch.where(keep.unsqueeze(-1), (rf * rf).mean(dim=1, keepdim=True).sqrt(), 1.0).clamp_min(1e-300)
        vy, vdy, _ = forward(net, staged.act, val[0])
        clean = lambda t: torch.where(keep.unsqueeze(-1), t, 0.0)
        nxt_train = (train[0], clean(rf / e), clean(rd / e))
        nxt_val = (val[0], clean((val[1] - vy) / e), clean((val[2] - vdy) / e))
        return nxt_train, nxt_val, torch.where(keep.unsqueeze(-1), scale * e, 0.0)


def finish_staged(
    configs: list[RunConfig],
    params: Params,
    splits: list[Split],
    curves: list[dict[str, np.ndarray]],
    train: Data,
    val: Data,
    run: tuple[str, str, float, float],
) -> list[RunResult]:
    """The results of a stack's runs after its first stage's Adam epochs (`params`, stacked, used
    in place; `curves` each member's Adam epochs): train_stages, then each member scored as the sum
    of its stages. run: engine, device, the start time and the Adam epochs' wall time per member
    (the stages' time is shared equally by the members too)."""
    engine, device, start, wall_adam = run
    t0 = time.perf_counter()
    act = get_activation(configs[0].activation)
    staged = train_stages(configs, act, params, train, val)
    wall = wall_adam + (time.perf_counter() - t0) / len(configs)
    out = []
    for i, c in enumerate(configs):
        predict = predictor(i, lambda m, x: staged.at(x, slice(m, m + 1)), train[0].dtype, device)
        after = {k: np.asarray(v, np.float64) for k, v in staged.after[i].items()}
        out.append(
            make_result(
                c,
                "ok",
                curves[i],
                c.epochs,
                start,
                engine,
                device,
                predict=predict,
                split=splits[i],
                wall_s=wall,
                after=after,
            )
        )
    return out
