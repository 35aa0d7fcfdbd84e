"""Property-based: the study parser returns a valid plan or raises UserError, never anything else."""

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runge_bench.problem.errors import UserError
from runge_bench.runs.study import FIELDS, MAX_RUNS, Study, load_study, parse_study

KEYS = [*FIELDS, "name", "description", "fixed", "grid", "bogus", "start", "stop", "step"]
scalars = st.one_of(
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=12),
    st.sampled_from(["relu", "tanh", "silu", "softplus", "full", "float32", "float64", "s"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)),
    max_leaves=12,
)
tables = st.dictionaries(st.sampled_from(list(FIELDS) + ["bogus"]), values, max_size=6)
documents = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.text(max_size=10), st.just("ok-name"), values),
        "description": values,
        "fixed": st.one_of(tables, values),
        "grid": st.one_of(tables, values),
        "bogus": values,
    },
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_parser_returns_a_plan_or_a_user_error(doc):
    try:
        study = parse_study(doc, Path("h.toml"))
    except UserError as e:
        assert str(e).startswith("h.toml: ")
        return
    assert isinstance(study, Study) and 1 <= len(study.configs) <= MAX_RUNS
    assert len({c.run_id for c in study.configs}) == len(study.configs)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash_the_loader(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("h") / "s.toml"
    path.write_bytes(data)
    try:
        load_study(path)
    except UserError as e:
        assert str(e).startswith(str(path))


valid_values = {
    "activation": st.sampled_from(["relu", "tanh", "silu", "softplus"]),
    "seed": st.integers(0, 1000),
    "width": st.integers(1, 256),
    "depth": st.integers(1, 4),
    "deriv_weight": st.floats(0, 100),
    "lr": st.floats(1e-6, 1.0),
    "epochs": st.integers(1, 5000),
    "dtype": st.sampled_from(["float32", "float64"]),
}


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_valid_documents_expand_to_the_grid_product(data):
    keys = data.draw(st.lists(st.sampled_from(sorted(valid_values)), unique=True, min_size=1, max_size=5))
    fixed, grid = {"activation": "tanh"}, {}
    for k in keys:
        if data.draw(st.booleans()):
            grid[k] = data.draw(st.lists(valid_values[k], min_size=1, max_size=3, unique=True))
            fixed.pop(k, None)
        else:
            fixed[k] = data.draw(valid_values[k])
    study = parse_study({"name": "p", "fixed": fixed, "grid": grid}, Path("p.toml"))
    expected = 1
    for v in grid.values():
        expected *= len(v)
    assert len(study.configs) == expected
    for c in study.configs:
        for k, v in fixed.items():
            assert getattr(c, k) == v
