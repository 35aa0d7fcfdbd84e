"""Every bad argument, in one place: one line on stderr naming the file or flag, exit status 2, no
traceback, and nothing stored.

A case is (argv, files, message): "STUDY" in argv stands for the smoke study, "RESULTS" for an
empty results directory, "FILE" for a regular file; `files` are regular files made first under the
results directory, where a directory should be.
"""

from __future__ import annotations

import pytest
import torch

from runge_bench.cli import run
from runge_bench.problem.errors import UserError
from runge_bench.runs import options

from .helpers import ROOT, SMOKE_STUDY

NO_GPU = not torch.cuda.is_available()
COMMITTED_SMOKE = str(ROOT / "results" / "smoke")

CASES = [
    # usage: typer's own checks, as one line
    (["sweep", "STUDY", "--engine", "bogus"], [], "'bogus' is not one of 'batched', 'reference'"),
    (["sweep", "STUDY", "--backend", "mpi"], [], "'mpi' is not one of 'local', 'dask'"),
    (["sweep", "STUDY", "--jobs", "abc"], [], "Invalid value for '--jobs'"),
    (["sweep", "STUDY", "--kernels", "fortran"], [], "'fortran' is not one of 'auto', 'native', 'torch'"),
    (["sweep", "STUDY", "--no-such-flag"], [], "No such option: --no-such-flag"),
    (["sweep"], [], "Missing argument 'study'"),
    (["report"], [], "Missing argument 'study'"),
    (["frobnicate"], [], "No such command 'frobnicate'"),
    (["index", "RESULTS"], [], "error: RESULTS: no report.md or compare.md under it"),
    (["index", "FILE"], [], "error: FILE: no such results directory"),
    # option values and combinations
    (["sweep", "STUDY", "--jobs", "0"], [], "error: --jobs: must be at least 1, got 0"),
    (["sweep", "STUDY", "--scheduler", "tcp://127.0.0.1:1"], [], "error: --scheduler: needs --backend dask"),
    (["sweep", "STUDY", "--scheduler", "tcp://h:1", "--dry-run"], [], "error: --scheduler: needs --backend dask"),
    (["sweep", "STUDY", "--engine", "reference", "--compile"], [], "error: --compile: applies to the batched engine"),
    (
        ["sweep", "STUDY", "--engine", "reference", "--kernels", "native"],
        [],
        "error: --kernels: applies to the batched",
    ),
    (["sweep", "STUDY", "--kernels", "native", "--compile"], [], "error: --compile: compiles the torch kernels, not"),
    (["bench", "--jobs", "-3"], [], "error: --jobs: must be at least 1, got -3"),
    (["bench", "--jobs", "0"], [], "error: --jobs: must be at least 1, got 0"),
    (["bench", "--repeat", "0"], [], "error: --repeat: must be between 1 and 20, got 0"),
    (["bench", "--repeat", "1000"], [], "error: --repeat: must be between 1 and 20, got 1000"),
    (["sweep", "STUDY", "--set", "epochs=5 # x"], [], "error: --set: a value may hold no '#'"),
    (["sweep", "STUDY", "--set", "epochs=5\nwidth=9"], [], "error: --set: a value may hold no '#' and no line breaks"),
    (["bench", "--fail-below", "2"], [], "error: --fail-below: must be a fraction in (0, 1], got 2.0"),
    # devices
    (["sweep", "STUDY", "--device", "nonsense"], [], "error: --device: not a torch device: 'nonsense'"),
    (
        ["sweep", "STUDY", "--device", "meta", "--engine", "reference"],
        [],
        "error: --device: meta: training runs on cpu",
    ),
    (["bench", "--quick", "--device", "cpu"], [], "error: --device: names an accelerator"),
    (["bench", "--quick", "--device", "tpu9"], [], "error: --device: not a torch device"),
    pytest.param(
        ["sweep", "STUDY", "--device", "cuda"],
        [],
        "error: --device: cuda: no CUDA device is available on this machine",
        marks=pytest.mark.skipif(not NO_GPU, reason="this machine has a GPU"),
    ),
    pytest.param(
        ["sweep", "STUDY", "--device", "cuda", "--engine", "reference", "--dry-run"],
        [],
        "error: --device: cuda: no CUDA device",
        marks=pytest.mark.skipif(not NO_GPU, reason="this machine has a GPU"),
    ),
    pytest.param(
        ["bench", "--quick", "--device", "cuda"],
        [],
        "error: --device: cuda: no CUDA device is available on this machine",
        marks=pytest.mark.skipif(not NO_GPU, reason="this machine has a GPU"),
    ),
    # Dask scheduler addresses that cannot be one (no connection is tried)
    (["sweep", "STUDY", "--backend", "dask", "--scheduler", "nonsense"], [], "not a scheduler address (missing port"),
    (["sweep", "STUDY", "--backend", "dask", "--scheduler", "foo://127.0.0.1:1"], [], "unknown address scheme 'foo'"),
    (["sweep", "STUDY", "--backend", "dask", "--scheduler", "tcp://127.0.0.1"], [], "missing port number"),
    (["sweep", "STUDY", "--backend", "dask", "--scheduler", "tcp://127.0.0.1:99999"], [], "port 99999 is out of range"),
    # files where directories should be, and stores that are not there
    (["sweep", "STUDY", "--results-dir", "FILE"], [], "FILE: exists and is not a directory"),
    (["sweep", "STUDY", "--results-dir", "FILE", "--dry-run"], [], "FILE: exists and is not a directory"),
    (["sweep", "STUDY", "--dry-run"], ["smoke"], "RESULTS/smoke: exists and is not a directory"),
    (["report", COMMITTED_SMOKE, "--out", "FILE"], [], "exists and is not a directory: the report cannot be written"),
    (["report", "no-such-study"], [], "no results store here"),
    (["report", COMMITTED_SMOKE, "--tune", "width"], [], "--tune: 'width' is not an axis this study varies"),
    (["show", "STUDY"], [], "give exactly one of --where FIELD=VALUE,... or --run RUN_ID"),
    # show --where: a value is read as its field's type, or refused (never rounded, never overflowing)
    (["show", COMMITTED_SMOKE, "--where", "seed=1e400"], [], "error: --where: seed='1e400' is not an integer"),
    (["show", COMMITTED_SMOKE, "--where", "seed=" + "9" * 23], [], "error: --where: seed='99999999999999999999999'"),
    (["show", COMMITTED_SMOKE, "--where", "width=16.9"], [], "error: --where: width='16.9' is not an integer"),
    (["show", COMMITTED_SMOKE, "--where", "seed=1.5"], [], "error: --where: seed='1.5' is not an integer"),
    (["show", COMMITTED_SMOKE, "--where", "lr=inf"], [], "error: --where: lr='inf' is not a finite number"),
    (["show", COMMITTED_SMOKE, "--where", "lr=fast"], [], "error: --where: lr='fast' is not a number"),
    (["show", COMMITTED_SMOKE, "--where", "batch_size=3.5"], [], "error: --where: batch_size='3.5' is not an integer"),
    (
        ["show", COMMITTED_SMOKE, "--where", "width=17"],
        [],
        "error: --where: no run has width=17 (the store holds width = 16)",
    ),
    (["show", COMMITTED_SMOKE, "--where", "width=abc"], [], "error: --where: width='abc' is not an integer"),
    (["show", COMMITTED_SMOKE, "--where", "wdth=16"], [], "error: --where: unknown field 'wdth'"),
    (["show", COMMITTED_SMOKE, "--where", "width"], [], "error: --where: expected field=value pairs"),
    (["show", COMMITTED_SMOKE, "--run", "nope"], [], "--run: no stored run 'nope'"),
    (["show", COMMITTED_SMOKE], [], "error: give exactly one of --where"),
]


@pytest.mark.parametrize("argv, files, message", CASES)
def test_a_bad_argument_is_one_line_exit_2_and_stores_nothing(argv, files, message, tmp_path, capsys):
    if "--scheduler" in argv and "dask" in argv:
        pytest.importorskip("distributed")
    results, file = tmp_path / "results", tmp_path / "file"
    results.mkdir()
    file.write_text("x")
    for name in files:
        (results / name).write_text("x")
    where = {"STUDY": str(SMOKE_STUDY), "RESULTS": str(results), "FILE": str(file)}
    argv = [where.get(a, a) for a in argv]
    if argv[0] in ("sweep", "report", "show") and "--results-dir" not in argv and len(argv) > 1:
        argv += ["--results-dir", str(results)]
    code = run(argv)
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("error")]  # a progress line may precede
    expected = message.replace("RESULTS", str(results)).replace("FILE", str(file))
    assert code == 2 and len(errors) == 1, captured.err
    assert errors[0].startswith("error: ") and expected in errors[0], captured.err
    assert "Traceback" not in captured.err + captured.out
    assert all(errors[0].count(f"--{o}") <= 1 for o in ("scheduler", "where", "run", "device", "jobs"))
    assert [p.name for p in results.iterdir() if p.is_dir()] == []  # nothing stored, no store begun


@pytest.mark.parametrize(
    "opts, message",
    [
        (dict(family="reference", kernels="native"), "--kernels: applies to the batched engine only"),
        (dict(family="reference", compile=True), "--compile: applies to the batched engine only"),
        (dict(compile=True, kernels="native"), "--compile: compiles the torch kernels, not --kernels native"),
        (dict(scheduler="tcp://h:1"), "--scheduler: needs --backend dask"),
        (dict(device="nonsense"), "--device: not a torch device"),
    ],
)
def test_option_combinations_are_checked_in_the_library(opts, message):
    defaults = dict(family="batched", kernels="auto", compile=False, device="cpu", backend="local", scheduler=None)
    with pytest.raises(UserError) as e:
        options.check_options(**{**defaults, **opts})
    assert str(e.value).startswith(message)
    options.check_options(**defaults)  # the defaults pass


@pytest.mark.parametrize(
    "opts, message",
    [
        (dict(repeat=0), "--repeat: must be between 1 and 20, got 0"),
        (dict(fail_below=0.0), "--fail-below: must be a fraction in (0, 1], got 0.0"),
        (dict(device="cpu"), "--device: names an accelerator"),
    ],
)
def test_bench_options_are_checked_in_the_library(opts, message):
    defaults = dict(repeat=1, fail_below=None, device=None)
    with pytest.raises(UserError) as e:
        options.check_bench_options(**{**defaults, **opts})
    assert str(e.value).startswith(message)
    options.check_bench_options(**defaults)


def test_bare_command_prints_its_help_once(capsys):
    assert run([]) == 0
    assert capsys.readouterr().out.count("Usage:") == 1


@pytest.mark.parametrize("kind", ["dangling", "loop"])
def test_a_broken_store_link_is_named_at_plan_time(kind, tmp_path, capsys):
    link = tmp_path / "smoke" / "runs.sqlite"
    link.parent.mkdir()
    if kind == "dangling":
        link.symlink_to(tmp_path / "gone.sqlite")
        expected = f"is a symbolic link to {tmp_path / 'gone.sqlite'}, which does not exist"
    else:
        (tmp_path / "other").symlink_to(link)
        link.symlink_to(tmp_path / "other")
        expected = "is a symbolic link loop"
    for argv in (
        ["sweep", str(SMOKE_STUDY), "--results-dir", str(tmp_path), "--dry-run"],
        ["report", "smoke", "--results-dir", str(tmp_path)],
    ):
        assert run(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err == f"error: {link}: {expected}: remove it or point it at a store", err


def test_a_study_file_too_large_to_be_one_is_refused_before_it_is_read(tmp_path, capsys):
    big = tmp_path / "big.toml"
    big.write_text('name = "big"\n' + "# padding\n" * 200_000)
    assert run(["sweep", str(big), "--results-dir", str(tmp_path), "--dry-run"]) == 2
    assert capsys.readouterr().err.strip() == f"error: {big}: is 2.0 MB; a study file is at most 1024 KiB"
