"""The MLP 1 -> width x depth -> 1: a torch module for the reference engine, stacked tensors for
the batched engine, and the same initial weights for both."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..problem.activations import get_activation
from ..problem.config import RunConfig

Params = list[tuple[Tensor, Tensor]]  # per layer (weight (out, in), bias (out,)), as nn.Linear


def layer_sizes(width: int, depth: int) -> list[int]:
    return [1] + [width] * depth + [1]


def n_parameters(width: int, depth: int) -> int:
    s = layer_sizes(width, depth)
    return sum((i + 1) * o for i, o in zip(s[:-1], s[1:]))


def init_params(config: RunConfig, seed: int | None = None) -> Params:
    """PyTorch's default nn.Linear initialisation, drawn from a generator seeded by the run's seed
    (or by `seed`: a multi-stage run's later stages, stages.py).

    The draws are those nn.Linear makes after torch.manual_seed(seed) (tested), without touching
    the global generator.
    """
    g = torch.Generator().manual_seed(config.seed if seed is None else seed)
    dtype = getattr(torch, config.dtype)
    custom = get_activation(config.activation).init  # an activation's own initialisation (SIREN's)
    params = []
    sizes = layer_sizes(config.width, config.depth)
    for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = torch.empty(fan_out, fan_in, dtype=dtype)
        b = torch.empty(fan_out, dtype=dtype)
        if custom is not None:
            custom(layer, fan_in, fan_out, w, b, g)
        else:
            nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=g)  # as nn.Linear.reset_parameters
            bound = 1.0 / math.sqrt(fan_in)
            nn.init.uniform_(b, -bound, bound, generator=g)
        params.append((w, b))
    return params


def build_sequential(config: RunConfig, params: Params) -> nn.Sequential:
    """The reference network as one nn.Sequential holding copies of `params`."""
    act = get_activation(config.activation)
    layers: list[nn.Module] = []
    for i, (w, b) in enumerate(params):
        lin = nn.Linear(w.shape[1], w.shape[0], dtype=w.dtype)
        with torch.no_grad():
            lin.weight.copy_(w)
            lin.bias.copy_(b)
        layers.append(lin)
        if i < len(params) - 1:
            layers.append(act.module())
    return nn.Sequential(*layers)


def stack_params(members: list[Params]) -> Params:
    """M members' parameters as stacked leaves: weight (M, in, out), bias (M, 1, out)."""
    stacked = []
    for layer in zip(*members):
        w = torch.stack([wb[0].T for wb in layer]).contiguous()
        b = torch.stack([wb[1] for wb in layer]).unsqueeze(1).contiguous()
        stacked.append((w.requires_grad_(True), b.requires_grad_(True)))
    return stacked
