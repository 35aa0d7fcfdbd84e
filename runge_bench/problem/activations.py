"""The activation registry: name -> the torch module (reference engine) and sigma, sigma', sigma''
(batched engine).

Every activation supplies its derivatives, because the batched engine carries d/dx forward
(tangent = sigma'(z) * dz/dx) instead of differentiating twice. A new activation must come with
them; `tests/test_model.py` checks each against autograd.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .formula import FormulaError, canonical, torch_derivatives


@dataclass(frozen=True)
class Activation:
    """One activation function.

    Attributes:
        name: the registry key used in study files.
        module: the torch module used by the reference engine.
        derivatives: z -> (sigma, sigma', sigma'') for the batched engine's hand-written backward
            (sigma'' is None where it is identically zero). May trade the last bits for speed.
    """

    name: str
    module: Callable[[], nn.Module]
    derivatives: Callable[[Tensor], tuple[Tensor, Tensor, Tensor | None]]
    # (layer index, fan_in, fan_out, weight, bias, generator) -> None: draws the layer's initial
    # parameters in place; None: PyTorch's nn.Linear default (engine.model.init_params)
    init: Callable[[int, int, int, Tensor, Tensor, torch.Generator], None] | None = None
    doc: str = ""
    # how many times sigma is continuously differentiable: 0 for a kink (ReLU), 1 for a jump in
    # sigma'' (ELU), math.inf for smooth; None where not stated (a formula activation)
    smoothness: float | None = None


def _relu(z: Tensor) -> tuple[Tensor, Tensor, None]:
    a = torch.relu(z)
    return a, torch.sign(a), None  # sign(relu(z)) = (z > 0) as a float, in one pass instead of two


def _tanh(z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    # tanh(z) = 2 sigmoid(2z) - 1: on CPU torch.sigmoid is ~4x faster than torch.tanh (measured),
    # at an absolute error of at most 1.9e-7 in float32 (torch.tanh: 5.4e-8). Each line is one
    # pass over memory: the scalars ride along as 0-dim tensors instead of costing passes.
    p = torch.sigmoid(z * 2.0)
    a = torch.add(_scalar(-1.0, z), p, alpha=2.0)  # 2p - 1
    s = torch.addcmul(_scalar(1.0, z), a, a, value=-1.0)  # 1 - a^2
    return a, s, torch.addcmul(_scalar(0.0, z), a, s, value=-2.0)  # sigma'' = -2 a (1 - a^2)


def _silu(z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    p = torch.sigmoid(z)
    a = z * p
    q = torch.addcmul(p, p, p, value=-1.0)  # sigmoid' = p (1 - p)
    s = torch.addcmul(p, z, q)  # p + z p (1 - p)
    return a, s, q * torch.add(z, a, alpha=-2.0).add_(2.0)  # silu'' = p(1-p)(2 + z - 2zp)


_SOFTPLUS_THRESHOLD = 20.0  # F.softplus is linear above this; its gradient there is exactly 1


def _softplus(z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    s = torch.sigmoid(z)
    if z.dtype == torch.float64:  # in float32 and below, sigmoid is already exactly 1 above 17
        s = s.masked_fill(z > _SOFTPLUS_THRESHOLD, 1.0)
    return F.softplus(z), s, torch.addcmul(s, s, s, value=-1.0)  # s (1 - s): 0 where s is exactly 1


_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def _gelu(z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The exact GELU, z Phi(z) (torch's default, approximate="none")."""
    cdf = 0.5 * (1.0 + torch.erf(z / _SQRT2))
    pdf = torch.exp(-0.5 * z * z) * _INV_SQRT_2PI
    return z * cdf, cdf + z * pdf, pdf * (2.0 - z * z)


def _elu(z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """ELU with alpha 1: z above 0, exp(z) - 1 at and below (torch's branch at 0 for both derivatives)."""
    e = torch.exp(torch.clamp(z, max=0.0))
    pos = z > 0
    return torch.where(pos, z, torch.expm1(torch.clamp(z, max=0.0))), torch.where(pos, 1.0, e), torch.where(pos, 0.0, e)


def _mish(z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Mish, z tanh(softplus(z)); sigma' and sigma'' with s = sigmoid(z), t = tanh(softplus(z))."""
    t = torch.tanh(F.softplus(z))
    s = torch.sigmoid(z)
    u = (1.0 - t * t) * s  # t'
    return z * t, t + z * u, 2.0 * u + z * u * (1.0 - s - 2.0 * t * s)


LEAKY_SLOPE = 0.01  # torch's default negative slope


def _leaky_relu(z: Tensor) -> tuple[Tensor, Tensor, None]:
    pos = z > 0
    return torch.where(pos, z, LEAKY_SLOPE * z), torch.where(pos, 1.0, torch.full_like(z, LEAKY_SLOPE)), None


# SIREN's frequency (Sitzmann et al. 2020): every layer computes sin(omega0 (W a + b)). Their default,
# kept: with the first layer's weights U(-1, 1) (fan_in 1) the first layer's features have up to
# omega0 / (2 pi) ~ 4.8 periods on [-1, 1], more than the Runge function's one bump needs, which is
# the regime SIREN was built for (and the claim about derivatives the zoo tests).
SIREN_OMEGA0 = 30.0


class Sine(nn.Module):
    def __init__(self, omega0: float = SIREN_OMEGA0):
        super().__init__()
        self.omega0 = omega0

    def forward(self, z: Tensor) -> Tensor:
        return torch.sin(self.omega0 * z)


def _sin(z: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    w = SIREN_OMEGA0
    s, c = torch.sin(w * z), torch.cos(w * z)
    return s, w * c, -w * w * s


def _siren_init(layer: int, fan_in: int, fan_out: int, w: Tensor, b: Tensor, g: torch.Generator) -> None:
    """SIREN's initialisation: first layer U(-1/n, 1/n), the others U(-sqrt(6/n)/omega0,
    sqrt(6/n)/omega0), n the fan-in; biases as nn.Linear's (U(-1/sqrt(n), 1/sqrt(n)))."""
    bound = 1.0 / fan_in if layer == 0 else math.sqrt(6.0 / fan_in) / SIREN_OMEGA0
    nn.init.uniform_(w, -bound, bound, generator=g)
    nn.init.uniform_(b, -1.0 / math.sqrt(fan_in), 1.0 / math.sqrt(fan_in), generator=g)


def _scalar(value: float, like: Tensor) -> Tensor:
    """A 0-dim tensor that broadcasts into an elementwise op at no cost in passes."""
    return torch.tensor(value, dtype=like.dtype, device=like.device)


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("relu", nn.ReLU, _relu, smoothness=0),
        Activation("tanh", nn.Tanh, _tanh, smoothness=math.inf),
        Activation("silu", nn.SiLU, _silu, smoothness=math.inf),
        Activation("softplus", nn.Softplus, _softplus, smoothness=math.inf),
        Activation("gelu", nn.GELU, _gelu, doc="z Phi(z), the exact (erf) form", smoothness=math.inf),
        # alpha 1: sigma' is 1 on both sides of 0, sigma'' jumps from 1 to 0
        Activation("elu", nn.ELU, _elu, doc="z above 0, exp(z) - 1 below (alpha 1)", smoothness=1),
        Activation("mish", nn.Mish, _mish, doc="z tanh(softplus(z))", smoothness=math.inf),
        Activation("leaky_relu", nn.LeakyReLU, _leaky_relu, doc=f"z above 0, {LEAKY_SLOPE} z below", smoothness=0),
        Activation(
            "sin",
            Sine,
            _sin,
            init=_siren_init,
            doc=f"sin({SIREN_OMEGA0:g} z) with SIREN's initialisation",
            smoothness=math.inf,
        ),
    )
}


def get_activation(name: str) -> Activation:
    """A registered activation by name, or a formula in z (problem.formula; a run stores its
    canonical form); raises KeyError listing the valid names when it is neither."""
    if name in ACTIVATIONS:
        return ACTIVATIONS[name]
    try:
        return formula_activation(name)
    except FormulaError as e:
        raise KeyError(
            f"unknown activation {name!r} (valid: {', '.join(sorted(ACTIVATIONS))}, or a formula in z: {e})"
        ) from None


class _Formula(nn.Module):
    def __init__(self, fn: Callable[[Tensor], Tensor]):
        super().__init__()
        self.fn = fn

    def forward(self, z: Tensor) -> Tensor:
        return self.fn(z)


@functools.lru_cache(maxsize=64)
def formula_activation(text: str) -> Activation:
    """sigma(z) = text, with sigma' and sigma'' derived exactly (problem.formula); the reference
    engine differentiates sigma itself by autograd; nn.Linear's default initialisation."""
    sigma, d1, d2 = torch_derivatives(text, "z")
    return Activation(text, lambda: _Formula(sigma), lambda z: (sigma(z), d1(z), d2(z)), doc=f"sigma(z) = {text}")


def check_formula_activation(text: str) -> str | None:
    """Why a formula cannot be an activation, or None: it must parse (in z), and sigma, sigma',
    sigma'' be finite on [-20, 20] in float64, and sigma' agree with a central difference there
    (but at isolated points: a kink)."""
    try:
        sigma, d1, d2 = torch_derivatives(canonical(text, "z"), "z")
    except FormulaError as e:
        return str(e)
    z = torch.arange(-4000, 4001, dtype=torch.float64) / 200.0  # [-20, 20], 0 and every step exact
    for name, fn in (("sigma", sigma), ("sigma'", d1), ("sigma''", d2)):
        values = fn(z)
        bad = torch.nonzero(~torch.isfinite(values))
        if len(bad):
            return f"{name}(z) is not finite at z = {float(z[bad[0, 0]]):g}"
    h = 1e-6
    fd = (sigma(z + h) - sigma(z - h)) / (2 * h)
    exact = d1(z)
    off = (fd - exact).abs() > 1e-4 * (1.0 + exact.abs()) + 1e-9 * (1.0 + sigma(z).abs()) / h
    if off.float().mean() > 0.01:  # a kink (|z| at 0) disagrees at a point; a wrong sigma' nearly everywhere
        i = int(torch.nonzero(off)[0, 0])
        return f"sigma' ({float(exact[i]):.6g}) disagrees with a central difference ({float(fd[i]):.6g}) at z = {float(z[i]):g}"
    return None


def activation_order(names: Iterable[str]) -> list[str]:
    """The distinct activations among `names` in registry order (relu, tanh, silu, softplus, ...),
    any not registered after them, sorted: the order of every table's rows, every comparison's
    a/b and every figure's columns, whatever order the runs come in."""
    present = set(names)
    return [a for a in ACTIVATIONS if a in present] + sorted(present - set(ACTIVATIONS))
