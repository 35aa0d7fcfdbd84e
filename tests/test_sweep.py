import pytest
from typer.testing import CliRunner

from runge_bench.cli import app
from runge_bench.engine import native
from runge_bench.problem.errors import UserError
from runge_bench.runs.options import batched_engine
from runge_bench.runs.plan import make_plan
from runge_bench.runs.store import Store
from runge_bench.runs.study import load_study
from runge_bench.runs.sweep import run_sweep
from runge_bench.runs.tasks import chunk_runs

from .helpers import ROOT, TINY

runner = CliRunner()


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("engine", ["reference", "batched"])
def test_interrupted_sweep_resumes_with_only_the_rest(write_study, tmp_path, engine):
    study = load_study(write_study(TINY))
    seen = []

    def stop_after_two(result):
        seen.append(result.run_id)
        if len(seen) == 2:
            raise KeyboardInterrupt

    plan = make_plan(study, tmp_path)
    assert len(plan.todo) == 6
    with pytest.raises(KeyboardInterrupt):
        run_sweep(plan, engine=engine, jobs=1, on_result=stop_after_two)
    with Store(plan.store_path) as store:
        assert sorted(store.statuses()) == sorted(seen)  # both stored, nothing else
    plan2 = make_plan(study, tmp_path)
    assert plan2.stored["ok"] == 2 and len(plan2.todo) == 4
    assert not {c.run_id for c in plan2.todo} & set(seen)
    trained = []
    run_sweep(plan2, engine=engine, jobs=1, on_result=lambda r: trained.append(r.run_id))
    assert len(trained) == 4 and not set(trained) & set(seen)
    assert len(make_plan(study, tmp_path).todo) == 0


def test_failing_run_is_isolated_and_retried(write_study, tmp_path, monkeypatch):
    from runge_bench.engine import reference as train

    study = load_study(write_study(TINY))
    real = train.train_reference

    def flaky(config, device="cpu"):
        if config.seed == 1 and config.activation == "tanh":
            raise RuntimeError("simulated crash")
        return real(config, device)

    monkeypatch.setattr(train, "train_many_reference", lambda cs, device="cpu": [flaky(c, device) for c in cs])
    summary = run_sweep(make_plan(study, tmp_path), engine="reference", jobs=1)
    assert summary.counts == {"ok": 5, "failed": 1}
    with Store(tmp_path / "tiny" / "runs.sqlite") as store:
        df = store.runs()
    failed = df[df.status == "failed"]
    assert len(failed) == 1 and failed.error.iloc[0] == "RuntimeError: simulated crash"
    assert len(make_plan(study, tmp_path).todo) == 0  # failed runs are not retried by default
    plan = make_plan(study, tmp_path, retry_failed=True)
    assert len(plan.todo) == 1
    monkeypatch.undo()
    assert run_sweep(plan, engine="reference", jobs=1).counts == {"ok": 1}


def test_chunks_cover_every_run_once_and_respect_shapes(write_study):
    study = load_study(write_study(TINY))
    for engine, jobs in [("reference", 2), ("batched", 1), ("batched", 2), ("batched", 5)]:
        tasks = chunk_runs(list(study.configs), engine, jobs, max_group=2)
        flat = [c for t in tasks for c in t]
        assert sorted(c.run_id for c in flat) == sorted(c.run_id for c in study.configs)
        assert all(len({c.shape_key() for c in t}) == 1 and len(t) <= 2 for t in tasks)
    assert len(chunk_runs(list(study.configs), "batched", 2, max_group=32)) == 2  # one per activation


def test_cli_smoke_end_to_end_with_parallel_workers(tmp_path):
    smoke = ROOT / "studies" / "smoke.toml"
    args = ["sweep", str(smoke), "--results-dir", str(tmp_path)]
    dry = runner.invoke(app, args + ["--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "16 runs" in dry.stdout and "to train: 16" in dry.stdout
    assert not (tmp_path / "smoke").exists()  # a dry run writes nothing
    result = runner.invoke(app, args + ["--jobs", "2"])
    assert result.exit_code == 0, result.output
    assert "trained 16 runs" in result.stdout and "16 ok" in result.stdout
    with Store(tmp_path / "smoke" / "runs.sqlite") as store:
        df = store.runs()
    assert len(df) == 16 and set(df.status) == {"ok"} and set(df.activation) == {"relu", "tanh"}
    expected = "batched+native" if native.unavailable() is None else "batched"  # no compiler: torch kernels
    assert set(df.engine) == {expected} and f"engine: {expected}" in result.stdout
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and "nothing to train" in again.stdout


def test_batched_engine_falls_back_to_torch_kernels_only_when_asked_for_auto(monkeypatch):
    from runge_bench.engine import native

    name, note = batched_engine("auto", device="cuda")  # the real rule: native is CPU-only
    assert name == "batched" and "CPU, not cuda" in note
    monkeypatch.setattr(native, "unavailable", lambda device="cpu": "no C++ compiler: 'c++' is not on PATH (set CXX)")
    name, note = batched_engine("auto")
    assert name == "batched" and note == "using the torch kernels: no C++ compiler: 'c++' is not on PATH (set CXX)"
    with pytest.raises(UserError, match="^--kernels: no C\\+\\+ compiler"):
        batched_engine("native")
    assert batched_engine("torch") == ("batched", None)
    assert batched_engine("auto", compile=True) == ("batched+compile", None)
    monkeypatch.setattr(native, "unavailable", lambda device="cpu": None)
    assert batched_engine("auto") == ("batched+native", None)
