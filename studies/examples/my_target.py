"""A target a formula cannot write: piecewise, with a kink in f' (f is C¹, not C²).

Used by studies/examples/my-python-target.toml as `target = "studies.examples.my_target:hinge_bump"`
(run from the repository root; the module path is relative to the current directory). A target
function takes a float64 torch tensor of points and returns f at each, elementwise; runge-bench
takes f' from it by autograd and pins the runs to this file's SHA-256 (editing it makes new runs).
"""

import torch


def hinge_bump(x: torch.Tensor) -> torch.Tensor:
    """A Gaussian bump plus a half parabola: f(x) = exp(-16x²) + 2·max(x - 0.25, 0)²."""
    return torch.exp(-16 * x**2) + 2 * torch.clamp(x - 0.25, min=0) ** 2
