"""The activation registry: name -> sigma and sigma', for both engines.

Every activation supplies its derivative, because the batched engine carries d/dx forward
(tangent = sigma'(z) * dz/dx) instead of differentiating twice. A new activation must come with
one; `tests/test_model.py` checks each against autograd.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class Activation:
    """One activation function.

    Attributes:
        name: the registry key used in study files.
        module: the torch module used by the reference engine.
        value_and_derivative: z -> (sigma(z), sigma'(z)), sharing work between the two.
    """

    name: str
    module: Callable[[], nn.Module]
    value_and_derivative: Callable[[Tensor], tuple[Tensor, Tensor]]


def _relu(z: Tensor) -> tuple[Tensor, Tensor]:
    # sigma'(0) = 0, as autograd's threshold backward has it.
    return torch.relu(z), (z > 0).to(z.dtype)


def _tanh(z: Tensor) -> tuple[Tensor, Tensor]:
    a = torch.tanh(z)
    return a, 1.0 - a * a


def _silu(z: Tensor) -> tuple[Tensor, Tensor]:
    s = torch.sigmoid(z)
    return F.silu(z), s * (1.0 + z * (1.0 - s))  # F.silu, not z * s: bit-equal to the reference


_SOFTPLUS_THRESHOLD = 20.0  # F.softplus is linear above this; its gradient there is exactly 1


def _softplus(z: Tensor) -> tuple[Tensor, Tensor]:
    s = torch.where(z > _SOFTPLUS_THRESHOLD, torch.ones_like(z), torch.sigmoid(z))
    return F.softplus(z), s


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
