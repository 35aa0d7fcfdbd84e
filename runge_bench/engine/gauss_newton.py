"""Matrix-free Gauss-Newton (Levenberg-Marquardt) for a stack of M networks at any width.

Each member minimises its own loss MSE(f) + w MSE(f'), the squared norm of its 2N residuals
r = [(f(x_i) - y_i) / sqrt(N); sqrt(w) (f'(x_i) - y'_i) / sqrt(N)]. An iteration solves the damped
Gauss-Newton system

    (J^T J + mu I) delta = -J^T r

by conjugate gradients without forming J (2N x P) or J^T J (P x P): J v is a forward-mode
tangent (`stacked.tangent`, the cost of a forward pass) and J^T u a backward pass
(`stacked.backward`), so an iteration costs about 2 x CG_ITERS passes and memory grows with P,
not P squared. The dense LM (refine.py) needs the Jacobian: 2N x P words, ~850 MB at width 256 on
800 points, and ~11 s an iteration there; this needs a few vectors of P.

All members iterate together, each with its own CG scalars, damping and accept/reject decision
(every stacked operation is block-diagonal over members), so the stack's M problems cost one
pass per product instead of M. The damping follows Nielsen's rule as the dense LM does (shrink by up
to 3x after a good step, double and double again after a rejected one), starting from
MU_START times the curvature along the gradient (|J g|^2 / |g|^2: the matrix-free stand-in for
Nielsen's max diag(J^T J), which needs J); a member whose damping passes MU_MAX times its start
has run away and stops there, keeping the best point it reached. The gain ratio compares the
actual decrease with the quadratic model's, delta^T (mu delta - g): exact for CG iterates started
at 0 (each is the model's minimiser over its Krylov space), so an inexact solve is judged fairly.

CG stops per member at CG_ITERS iterations or when its residual falls below CG_TOL of |g|
(truncated Newton: early iterations need no exact solve; later ones get more accurate as the
gradient falls).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..problem.activations import Activation
from .model import Params
from .stacked import backward, forward, tangent

CG_ITERS = 100  # conjugate-gradient iterations per Gauss-Newton iteration, at most
CG_TOL = 1e-10  # relative to |g|: a member's CG stops below it
MU_START = 1e-3
MU_MAX = 1e12  # relative to the member's starting damping


@dataclass
class GNState:
    """Where a stack's Gauss-Newton iterations stand, per member (each (M,)): its loss, damping and
    the factor of its next increase, and whether it still iterates (a member stops when its damping
    runs away, or when it starts with a non-finite loss or a zero gradient)."""

    loss: Tensor
    mu: Tensor
    nu: Tensor
    mu_limit: Tensor
    active: Tensor
    stopped_at: list[int | None]  # per member, the iteration its damping ran away


def _flat(grads: list[Tensor]) -> Tensor:
    return torch.cat([g.reshape(g.shape[0], -1) for g in grads], dim=1)  # (M, P)


def _shaped(flat: Tensor, like: list[Tensor]) -> list[Tensor]:
    out, at = [], 0
    for t in like:
        n = t[0].numel()
        out.append(flat[:, at : at + n].reshape(t.shape))
        at += n
    return out


class Residuals:
    """A stack's residual map at fixed data, as flat vectors per member: r(theta) (M, 2N), J v and
    J^T u, with the rows scaled so that |r|^2 is each member's loss; parameters change in place.
    x, f, df are (M, N, 1); weight (M,) is each member's deriv_weight. (The solver below needs
    only these five methods: a test gives it a linear map, whose one step is least squares.)"""

    def __init__(self, act: Activation, params: Params, x: Tensor, f: Tensor, df: Tensor, weight: Tensor):
        n = x.shape[1]
        self.act, self.params, self.x, self.f, self.df = act, params, x, f, df
        self.leaves = [t for wb in params for t in wb]
        self.sf = 1.0 / math.sqrt(n)
        self.sd = (weight.to(x.dtype) / n).sqrt().view(-1, 1, 1)  # (M, 1, 1)

    def residual(self) -> tuple[Tensor, list]:
        """The scaled residuals (M, 2N) at the current parameters, and the tape for J v and J^T u."""
        y, dy, tape = forward(self.params, self.act, self.x)
        return self._rows((y - self.f) * self.sf, (dy - self.df) * self.sd), tape

    def loss(self) -> Tensor:
        r, _ = self.residual()
        return (r * r).sum(1)

    def jvp(self, tape: list, v: Tensor) -> Tensor:
        dy, ddy = tangent(self.params, tape, self.x, _shaped(v, self.leaves))
        return self._rows(dy * self.sf, ddy * self.sd)

    def vjp(self, tape: list, u: Tensor) -> Tensor:
        n = self.x.shape[1]
        uf, ud = u[:, :n].unsqueeze(-1), u[:, n:].unsqueeze(-1)
        return _flat(backward(self.params, tape, self.x, uf * self.sf, ud * self.sd))

    def add(self, delta: Tensor, sign: float = 1.0) -> None:
        for leaf, d in zip(self.leaves, _shaped(delta, self.leaves)):
            leaf.add_(d, alpha=sign)

    @staticmethod
    def _rows(rf: Tensor, rd: Tensor) -> Tensor:
        return torch.cat([rf[..., 0], rd[..., 0]], dim=1)


def cg_solve(res: Residuals, tape: list, g: Tensor, mu: Tensor, active: Tensor, cg_tol: float = CG_TOL) -> Tensor:
    """delta (M, P) with (J^T J + mu I) delta ~ -g per member, by conjugate gradients from 0;
    members not active get 0."""
    gram = lambda v: res.vjp(tape, res.jvp(tape, v)) + mu.unsqueeze(1) * v
    delta = torch.zeros_like(g)
    r = torch.where(active.unsqueeze(1), -g, 0.0)
    p = r.clone()
    rr = (r * r).sum(1)
    tol = cg_tol * g.norm(dim=1)
    stop = (rr.sqrt() <= tol) | ~active
    for _ in range(CG_ITERS):
        if bool(stop.all()):
            break
        ap = gram(p)
        pap = (p * ap).sum(1)
        alpha = torch.where(stop | (pap <= 0), 0.0, rr / torch.where(pap > 0, pap, 1.0))
        delta.addcmul_(alpha.unsqueeze(1), p)
        r.addcmul_(alpha.unsqueeze(1), ap, value=-1.0)
        rr_new = (r * r).sum(1)
        beta = torch.where(stop, 0.0, rr_new / torch.where(rr > 0, rr, 1.0))
        p = r + beta.unsqueeze(1) * p
        rr = rr_new
        stop |= (rr.sqrt() <= tol) | (pap <= 0)
    return delta


def start_state(res: Residuals) -> GNState:
    """Each member's loss and starting damping: MU_START x the curvature along the gradient."""
    with torch.no_grad():
        r, tape = res.residual()
        g = res.vjp(tape, r)
        jg = res.jvp(tape, g)
        gg = (g * g).sum(1)
        mu = MU_START * ((jg * jg).sum(1) / gg.clamp_min(1e-300)).clamp_min(1e-300)
        loss = (r * r).sum(1)
        return GNState(
            loss=loss,
            mu=mu,
            nu=torch.full_like(mu, 2.0),
            mu_limit=mu * MU_MAX,
            active=torch.isfinite(loss) & (gg > 0),
            stopped_at=[None] * len(mu),
        )


def gn_iteration(res: Residuals, state: GNState, it: int, cg_tol: float = CG_TOL) -> None:
    """One damped Gauss-Newton iteration of every active member, in place on the parameters and
    on `state`."""
    r, tape = res.residual()
    g = res.vjp(tape, r)  # J^T r, (M, P)
    delta = cg_solve(res, tape, g, state.mu, state.active, cg_tol)
    res.add(delta)
    new = res.loss()
    predicted = (delta * (state.mu.unsqueeze(1) * delta - g)).sum(1)
    rho = torch.where(predicted > 0, (state.loss - new) / torch.where(predicted > 0, predicted, 1.0), -1.0)
    good = state.active & torch.isfinite(new) & (rho > 0)
    bad = state.active & ~good
    res.add(delta * bad.unsqueeze(1), -1.0)  # a rejected member goes back
    shrink = torch.clamp(1.0 - (2.0 * rho - 1.0) ** 3, min=1.0 / 3.0)
    state.mu = torch.where(good, state.mu * shrink, torch.where(bad, state.mu * state.nu, state.mu))
    state.nu = torch.where(good, 2.0, torch.where(bad, state.nu * 2.0, state.nu))
    state.loss = torch.where(good, new, state.loss)
    ran_away = state.active & (state.mu > state.mu_limit)
    for i in torch.nonzero(ran_away).flatten().tolist():
        state.stopped_at[i] = it
    state.active = state.active & ~ran_away


def gauss_newton(
    act: Activation,
    params: Params,
    train: tuple[Tensor, Tensor, Tensor],
    weight: Tensor,
    iters: int,
    record=None,
    cg_tol: float = CG_TOL,
) -> GNState:
    """`iters` damped Gauss-Newton iterations of a stack, in place on `params` (stacked, plain
    tensors); train is x, f, f' (M, N, 1), weight (M,) each member's deriv_weight. record(it) is
    called after each iteration (curves); cg_tol 0 runs every CG solve to CG_ITERS steps (the
    bench's worst case). Returns the final state (loss, which members stopped)."""
    res = Residuals(act, params, *train, weight)
    with torch.no_grad():
        state = start_state(res)
        for it in range(1, iters + 1):
            gn_iteration(res, state, it, cg_tol)
            if record is not None:
                record(it)
            if not bool(state.active.any()):
                break
    return state
