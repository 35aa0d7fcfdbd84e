"""Noise on the training targets: its own stream, the truth everywhere else, every engine alike."""

import dataclasses

import numpy as np
import pytest
import torch

from runge_bench.analysis.baselines import baseline_runs
from runge_bench.engine.batched import train_batched
from runge_bench.engine.common import as_tensors, batch_generator, training_tensors
from runge_bench.engine.model import init_params
from runge_bench.engine.reference import train_reference
from runge_bench.problem.config import RunConfig
from runge_bench.problem.data import make_split, with_noise
from runge_bench.problem.targets import get_target
from runge_bench.problem.vocabulary import METRICS

SMALL = dict(width=8, n_points=200, epochs=20)


def test_noise_has_the_asked_size_relative_to_each_targets_rms():
    c = RunConfig("tanh", seed=3, noise=0.1)
    split = make_split(c.n_points, c.val_fraction, c.seed)
    t = get_target(c.target)
    f, df = t.f(split.x_train), t.df(split.x_train)
    nf, ndf = with_noise(f, df, c.noise, c.seed)
    for clean, noisy in ((f, nf), (df, ndf)):
        rms = np.sqrt(np.mean(clean**2))
        sd = np.std((noisy - clean) / rms)
        assert 0.09 < sd < 0.11  # 800 draws: the sample sd of N(0, 0.1) lies within 10% (about 4 sds)
    z_f, z_df = (nf - f) / np.sqrt(np.mean(f**2)), (ndf - df) / np.sqrt(np.mean(df**2))
    assert abs(np.corrcoef(z_f, z_df)[0, 1]) < 0.15  # two draws, not one reused
    assert with_noise(f, df, 0.0, 3) == (f, df)  # no noise: the targets themselves


def test_noise_changes_the_training_targets_only():
    """The split, the init and the batch order come from other streams, and validation is clean."""
    clean, noisy = RunConfig("silu", seed=5, batch_size=32), RunConfig("silu", seed=5, batch_size=32, noise=0.1)
    split = make_split(clean.n_points, clean.val_fraction, clean.seed)
    x0, f0, df0 = training_tensors(clean, split, torch.float64, "cpu")
    x1, f1, df1 = training_tensors(noisy, split, torch.float64, "cpu")
    assert torch.equal(x0, x1) and not torch.equal(f0, f1) and not torch.equal(df0, df1)
    for a, b in zip(init_params(clean), init_params(noisy)):
        assert all(torch.equal(u, v) for u, v in zip(a, b))
    g0, g1 = batch_generator(clean), batch_generator(noisy)
    assert torch.equal(torch.randperm(800, generator=g0), torch.randperm(800, generator=g1))
    # The noise draws come from a stream of their own: another seed's noise differs, the same seed's repeats.
    again = training_tensors(noisy, split, torch.float64, "cpu")
    assert torch.equal(again[1], f1)
    other = training_tensors(dataclasses.replace(noisy, seed=6), split, torch.float64, "cpu")
    assert not torch.equal(other[1], f1)
    # Validation targets are the truth.
    v = as_tensors(split.x_val, torch.float64, "cpu", get_target("runge"))
    assert torch.equal(v[1], torch.as_tensor(get_target("runge").f(split.x_val)).unsqueeze(-1))


def test_noisy_runs_train_the_same_in_every_engine_and_score_against_the_truth():
    noisy = RunConfig("tanh", seed=2, noise=0.1, **SMALL)
    clean = dataclasses.replace(noisy, noise=0.0)
    ref = train_reference(noisy)
    b_noisy, b_clean = train_batched([noisy, clean])
    for k in METRICS:
        assert b_noisy.metrics[k] == pytest.approx(ref.metrics[k], rel=1e-4), k
    assert b_noisy.metrics["grid_f_mse"] != b_clean.metrics["grid_f_mse"]
    # The training loss is against the noisy targets: it cannot fall below the noise's own MSE.
    f_rms2 = float(np.mean(get_target("runge").f(make_split(200, 0.2, 2).x_train) ** 2))
    assert b_noisy.curves["train_f"][-1] > 0.5 * 0.1**2 * f_rms2


def test_baselines_see_the_noise_the_networks_see():
    clean = baseline_runs([0, 1], n_points=200)
    noisy = baseline_runs([0, 1], n_points=200, noise=0.1)
    spline = lambda b: b[b.baseline == "cubic spline"].grid_f_mse.to_numpy()
    assert (spline(noisy) > 100 * spline(clean)).all()  # an interpolant reproduces the noise
