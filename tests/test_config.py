import dataclasses

import pytest

from runge_bench.problem.config import FLOAT_FIELDS, RunConfig, is_seed_protocol


def test_run_id_is_stable_across_sessions():
    # If this changes, stored results would silently stop matching their configs: bump
    # PROTOCOL_VERSION instead of editing this value.
    assert RunConfig("tanh", seed=0).run_id == "69804559df53b907"


@pytest.mark.parametrize(
    "change",
    [
        dict(activation="relu"),
        dict(seed=1),
        dict(width=32),
        dict(depth=3),
        dict(deriv_weight=0.5),
        dict(lr=1e-2),
        dict(epochs=999),
        dict(batch_size=32),
        dict(n_points=500),
        dict(val_fraction=0.3),
        dict(dtype="float64"),
        dict(target="sin4pi"),
        dict(optimizer="adam+lbfgs", lbfgs_iters=10),
        dict(optimizer="adam+lm", lm_iters=10),
        dict(noise=0.01),
        dict(checkpoint="best_val"),
    ],
)
def test_run_id_changes_with_every_field(change):
    base = RunConfig("tanh")
    assert dataclasses.replace(base, **change).run_id != base.run_id


@pytest.mark.parametrize("field", FLOAT_FIELDS)
def test_one_value_of_a_float_field_is_one_run(field):
    """1 and 1.0, 0 and -0.0 and 0.0 are one value: the same run id, the same stored config (else
    the same run is trained twice and a report pools the duplicates as extra seeds)."""
    one = {"deriv_weight": 1, "lr": 1, "val_fraction": 1, "noise": 1}[
        field
    ]  # val_fraction=1 is only checked by studies
    as_int, as_float = RunConfig("tanh", **{field: one}), RunConfig("tanh", **{field: float(one)})
    assert as_int.run_id == as_float.run_id and as_int.to_dict() == as_float.to_dict()
    assert isinstance(getattr(as_int, field), float)
    zeros = [RunConfig("tanh", **{field: z}) for z in (0, 0.0, -0.0)]
    assert len({z.run_id for z in zeros}) == 1
    assert all(str(getattr(z, field)) == "0.0" for z in zeros)  # no "-0.0" in a stored config


def test_config_round_trips_through_dict():
    c = RunConfig("silu", seed=3, batch_size=32)
    assert RunConfig.from_dict(c.to_dict()) == c


def test_seed_protocol():
    assert is_seed_protocol(RunConfig("relu", seed=5))
    assert not is_seed_protocol(RunConfig("relu", seed=5, width=32))


def test_fields_added_at_their_defaults_keep_old_run_ids():
    """target, optimizer and the iteration counts came after protocol 1's stores: at their defaults
    they stay out of the hash (the id above is from before they existed), set they enter it."""
    from runge_bench.problem.config import ADDED_FIELDS

    c = RunConfig(
        "tanh", seed=0, target="runge", optimizer="adam", lbfgs_iters=0, lm_iters=0, noise=0.0, checkpoint="last"
    )
    assert c.run_id == "69804559df53b907"
    assert set(ADDED_FIELDS) <= set(c.to_dict())  # stored configs carry them all the same
    assert (
        RunConfig("tanh", optimizer="adam+lm", lm_iters=5).run_id
        != RunConfig("tanh", optimizer="adam+lm", lm_iters=6).run_id
    )


def test_an_iteration_count_the_optimizer_does_not_use_is_dropped():
    """One computation, one id: plain Adam with lbfgs_iters set is plain Adam."""
    assert RunConfig("tanh", lbfgs_iters=3000).run_id == RunConfig("tanh").run_id
    lm = RunConfig("tanh", optimizer="adam+lm", lm_iters=50, lbfgs_iters=3000)
    assert lm.lbfgs_iters == 0 and lm.refine_iters == 50
    assert RunConfig("tanh").refine_iters == 0
