"""The activation registry: name -> the torch module (reference engine) and sigma, sigma', sigma''
(batched engine).

Every activation supplies its derivatives, because the batched engine carries d/dx forward
(tangent = sigma'(z) * dz/dx) instead of differentiating twice. A new activation must come with
them; `tests/test_model.py` checks each against autograd.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn


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


def _scalar(value: float, like: Tensor) -> Tensor:
    """A 0-dim tensor that broadcasts into an elementwise op at no cost in passes."""
    return torch.tensor(value, dtype=like.dtype, device=like.device)


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("relu", nn.ReLU, _relu),
        Activation("tanh", nn.Tanh, _tanh),
        Activation("silu", nn.SiLU, _silu),
        Activation("softplus", nn.Softplus, _softplus),
    )
}


def get_activation(name: str) -> Activation:
    """Look up an activation by name; raises KeyError listing the valid names."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise KeyError(f"unknown activation {name!r} (valid: {', '.join(sorted(ACTIVATIONS))})") from None


def activation_order(names: Iterable[str]) -> list[str]:
    """The distinct activations among `names` in registry order (relu, tanh, silu, softplus, ...),
    any not registered after them, sorted: the order of every table's rows, every comparison's
    a/b and every figure's columns, whatever order the runs come in."""
    present = set(names)
    return [a for a in ACTIVATIONS if a in present] + sorted(present - set(ACTIVATIONS))
