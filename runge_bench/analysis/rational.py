"""Barycentric rational approximation: Floater-Hormann interpolation and AAA, with f′ in closed form.

A barycentric rational function r(x) = N(x) / D(x), N = sum_j w_j f_j / (x - z_j),
D = sum_j w_j / (x - z_j), has the exact derivative (Schneider & Werner 1986)

    r'(x) = sum_j w_j (r(x) - f_j) / (x - z_j)^2 / D(x),   and at a node z_k
    r'(z_k) = -sum_{j != k} w_j (f_k - f_j) / (z_k - z_j) / w_k,

stable where x nears a node (the differences r(x) - f_j shrink with x - z_j): no differencing.

- Floater & Hormann (2007): the weights of the blend of the degree-d interpolating polynomials
  through consecutive nodes; no poles on the real line for any d, error O(h^(d+1)). The weights
  are computed here, vectorised (scipy.interpolate.FloaterHormannInterpolator has the same
  weights, and tests hold them equal), because the blending degree is chosen by validation over
  every d and scipy's constructor costs ~40 ms each.
- AAA (Nakatsukasa, Sète & Trefethen 2018): greedy support points, weights from the smallest
  singular vector of the Loewner matrix. Implemented here, not taken from scipy.interpolate.AAA,
  because the number of terms m is chosen by validation and the greedy iteration gives every m
  in one pass (scipy's returns only the last, after a clean-up that changes it); tests hold the
  two equal at every m scipy is asked for, without clean-up.
"""

from __future__ import annotations

import numpy as np

BLOCK_ELEMENTS = 1 << 21  # evaluation points x nodes per block: each temporary at most 16 MB


def evaluate(nodes, values, weights, t):
    """r(t) and r'(t) of the barycentric rational function with these nodes, values and weights."""
    nodes, values, weights = (np.asarray(a, float) for a in (nodes, values, weights))
    keep = weights != 0  # a support point of weight zero takes no part (and is no node of r)
    nodes, values, weights = nodes[keep], values[keep], weights[keep]
    t = np.asarray(t, float)
    r, dr = np.empty(t.shape), np.empty(t.shape)
    rows = max(1, BLOCK_ELEMENTS // max(len(nodes), 1))
    for s in range(0, t.size, rows):
        tt = t.ravel()[s : s + rows]
        diff = tt[:, None] - nodes[None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            c = weights / diff
            den = c.sum(axis=1)
            rr = (c * values).sum(axis=1) / den
            drr = (c * (rr[:, None] - values) / diff).sum(axis=1) / den
        # t on a node: the value there, r' by the node formula (found by a sorted search: scanning
        # diff for zeros cost a sixth of a study's baselines, profiled)
        for i in np.flatnonzero(np.isin(tt, nodes)):
            for k in np.flatnonzero(nodes == tt[i]):
                other = np.arange(len(nodes)) != k
                rr[i] = values[k]
                drr[i] = -np.sum(weights[other] * (values[k] - values[other]) / (nodes[k] - nodes[other])) / weights[k]
        r.ravel()[s : s + rows], dr.ravel()[s : s + rows] = rr, drr
    return r, dr


def floater_hormann_weights(x, d: int) -> np.ndarray:
    """The Floater-Hormann weights of blending degree d for sorted nodes x (0 <= d <= len(x) - 1):
    w_k = (-1)^(k-d) sum over i in [k - d, k] with 0 <= i <= n - d of
    prod_{j=i..i+d, j != k} 1 / |x_k - x_j| (Floater & Hormann 2007, eq. 18)."""
    x = np.asarray(x, float)
    n = len(x) - 1
    if not 0 <= d <= n:
        raise ValueError(f"blending degree {d} outside 0..{n}")
    starts = n - d + 1  # the blocks x_i .. x_{i+d}, i = 0 .. n - d
    w = np.zeros(n + 1)
    for m in range(d + 1):  # the i-th block's product at its m-th node, x_{i+m}, for every i at once
        product = np.ones(starts)
        for step in range(d + 1):
            if step != m:
                product *= np.abs(x[m : m + starts] - x[step : step + starts])
        w[m : m + starts] += 1.0 / product
    return w * (-1.0) ** (np.arange(n + 1) - d)


def aaa_path(z, f, max_terms: int, rtol: float = 1e-13):
    """The AAA iteration on samples f at points z: a list, for m = 1, 2, ..., of (support points,
    values, weights) after m greedy steps; stops at max_terms or when the largest error at the
    samples falls to rtol * max|f|."""
    z, f = np.asarray(z, float), np.asarray(f, float)
    free = np.ones(len(z), bool)
    r = np.full(len(z), np.mean(f))
    chosen: list[int] = []
    path = []
    scale = np.max(np.abs(f))
    for _ in range(min(max_terms, len(z) - 1)):
        j = int(np.argmax(np.where(free, np.abs(f - r), -np.inf)))
        chosen.append(j)
        free[j] = False
        zs, fs = z[chosen], f[chosen]
        cauchy = 1.0 / (z[free, None] - zs[None, :])
        loewner = (f[free, None] - fs[None, :]) * cauchy
        w = np.linalg.svd(loewner, full_matrices=False)[2][-1]
        r = f.copy()
        r[free] = (cauchy @ (w * fs)) / (cauchy @ w)
        path.append((zs.copy(), fs.copy(), w.copy()))
        if np.max(np.abs(f - r)) <= rtol * scale:
            break
    return path
