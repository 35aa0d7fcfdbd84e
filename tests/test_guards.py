"""No option or study may put the machine at risk, and bad options are errors before any run."""

import pytest

from runge_bench import sweep
from runge_bench.cli import run
from runge_bench.config import RunConfig
from runge_bench.errors import UserError

from .conftest import ROOT

SMOKE = str(ROOT / "studies" / "smoke.toml")


def test_jobs_are_capped_at_a_multiple_of_the_cores(monkeypatch):
    monkeypatch.setattr(sweep, "default_jobs", lambda: 2)
    assert sweep.resolve_jobs(None) == (2, None)
    assert sweep.resolve_jobs(3) == (3, None)
    jobs, note = sweep.resolve_jobs(10_000)
    assert jobs == 2 * sweep.MAX_JOBS_PER_CORE and note == "--jobs 10000 capped at 4 (2 per core on 2 cores)"
    with pytest.raises(UserError, match="--jobs: must be at least 1"):
        sweep.resolve_jobs(0)


def test_never_more_workers_than_tasks(monkeypatch):
    seen = {}
    real = sweep.parallel_config

    def spy(**kwargs):
        seen.update(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(sweep, "parallel_config", spy)
    configs = [RunConfig("tanh", seed=s, epochs=2, n_points=20, width=4) for s in range(3)]
    results = list(sweep.execute(configs, engine="reference", jobs=4))
    assert seen["n_jobs"] == 3 and len(results) == 3  # three tasks: three workers, not four


@pytest.mark.parametrize("argv, message", [
    (["--device", "nonsense"], "error: --device: not a torch device: 'nonsense'"),
    (["--device", "meta", "--engine", "reference"], "error: --device: meta: training runs on cpu or cuda, not meta"),
    (["--device", "cuda"], "error: --device: cuda: no CUDA device is available on this machine"),
    (["--device", "cuda", "--engine", "reference", "--dry-run"], "error: --device: cuda: no CUDA device"),
])  # fmt: skip
def test_a_bad_device_is_an_error_before_anything_is_stored(tmp_path, capsys, argv, message):
    import torch

    if torch.cuda.is_available() and "cuda" in argv:
        pytest.skip("this machine has a CUDA device")
    code = run(["sweep", SMOKE, "--results-dir", str(tmp_path), *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(message) and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "smoke").exists()
