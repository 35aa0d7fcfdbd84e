"""The runge-bench command line. Thin: each command parses options and calls one library function.

Errors a user can cause are printed as one line on stderr, with exit status 2 and no traceback.
Each command imports the library modules it calls inside its function: `--help`, `--version` and
a usage error then answer at once, without importing torch, pandas or matplotlib.
"""

from __future__ import annotations

import functools
import signal
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .problem.errors import UserError

app = typer.Typer(
    help="Reproducible benchmarks of MLPs fitting the Runge function and its derivative.",
    rich_markup_mode=None,  # help texts are plain: "[default: all cores]" must not be read as markup
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
err = Console(stderr=True, highlight=False, emoji=False)  # user text (":ok:" in a value) printed as written
out = Console(highlight=False, soft_wrap=True, emoji=False)


class Engine(str, Enum):
    batched = "batched"
    reference = "reference"


class Kernels(str, Enum):
    auto = "auto"
    native = "native"
    torch = "torch"


class FailOn(str, Enum):
    never = "never"
    different = "different"
    not_equivalent = "not-equivalent"


class Backend(str, Enum):
    local = "local"
    dask = "dask"


def user_errors(fn: Callable) -> Callable:
    """Turn a UserError into one line on stderr and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            err.print(f"error: {e}", markup=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


def stops_at_once(fn: Callable) -> Callable:
    """For commands that read stores and write staged outputs (report, show, compare): Ctrl-C and
    SIGTERM stop them every time, with exit status 130, leaving the earlier outputs as they were
    (outputs.files.stop_at_once)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import threading

        from .outputs.files import stop_at_once

        if threading.current_thread() is not threading.main_thread():
            return fn(*args, **kwargs)
        previous = {s: signal.signal(s, stop_at_once) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            return fn(*args, **kwargs)
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)

    return wrapper


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _version(value: bool) -> None:
    if value:
        from . import __version__

        out.print(f"runge-bench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool | None, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = None,
) -> None:
    """Reproducible benchmarks of MLPs fitting the Runge function and its derivative."""


ResultsDir = Annotated[Path, typer.Option("--results-dir", help="Where stores live: DIR/<study>/runs.sqlite.")]


Jobs = Annotated[int | None, typer.Option("--jobs", "-j", help="Worker processes [default: all cores].")]
LaunchBench = Annotated[
    bool,
    typer.Option(
        "--launch",
        help="With --device: measure only the ways of driving it (torch kernels, torch.compile, "
        "CUDA graphs; losses copied back every epoch or every 50), side by side.",
    ),
]
BenchLog = Annotated[
    Path | None,
    typer.Option(
        "--log",
        help="Append what was measured (its ratios as numbers) to this performance log, "
        "e.g. docs/benchmarks.toml; not with --launch.",
    ),
]
RefineBench = Annotated[
    bool,
    typer.Option(
        "--refine",
        help="Measure only the refinements: seconds per iteration of dense Levenberg-Marquardt and "
        "matrix-free Gauss-Newton, side by side, at widths 32-256 (--quick: 32, 64).",
    ),
]
Overrides = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a study key: key=value, key=a,b,c or key=a:b (a range); repeatable."),
]
StudyName = Annotated[
    str | None,
    typer.Option(
        "--name", help="The study's name (and results directory) [default: the file's, with --set items appended]."
    ),
]
KernelsOption = Annotated[
    Kernels,
    typer.Option(
        help="The batched engine's elementwise work: native (fused C++, CPU), torch (any device); auto: native where it builds."
    ),
]
AllowLarge = Annotated[
    bool,
    typer.Option(
        "--allow-large", help="Run even when the estimated peak memory exceeds what this machine has available."
    ),
]


@app.command()
@user_errors
def sweep(
    study: Annotated[Path, typer.Argument(help="A study file (TOML), e.g. studies/smoke.toml.")],
    results_dir: ResultsDir = Path("results"),
    jobs: Jobs = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and train nothing.")] = False,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Train runs stored as failed again.")] = False,
    engine: Annotated[
        Engine, typer.Option(help="batched: many models at once; reference: the seed report's loop.")
    ] = Engine.batched,
    device: Annotated[str, typer.Option(help="Torch device for training, e.g. cpu or cuda.")] = "cpu",
    backend: Annotated[
        Backend, typer.Option(help="local: processes on this machine; dask: a Dask cluster.")
    ] = Backend.local,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address, tcp://HOST:PORT [default: a LocalCluster here].")
    ] = None,
    kernels: KernelsOption = Kernels.auto,
    compile: Annotated[
        bool, typer.Option("--compile", help="torch.compile the batched engine's torch kernels (see README).")
    ] = False,
    allow_large: AllowLarge = False,
    set_: Overrides = None,
    name: StudyName = None,
) -> None:
    """Train every run of a study that is not stored yet, in parallel, and store each result."""
    from .analysis.stats import reach
    from .runs.sweep import SweepOptions, prepare_sweep, record_study, sweep_engine

    options = SweepOptions(
        engine.value, kernels.value, compile, device, backend.value, scheduler, jobs, allow_large, retry_failed
    )
    prepared = prepare_sweep(study, results_dir, options, set_, name)
    plan = prepared.plan
    out.print(plan.describe(), markup=False)
    out.print(f"  statistics: {reach(len({c.seed for c in plan.study.configs}))}", markup=False)
    if not plan.todo:
        if not dry_run:
            record_study(plan)  # its text and hypotheses, as a sweep that trains records them
        out.print("nothing to train: every run is stored")
        return
    _announce(prepared)
    if dry_run:
        return
    engine_name, note = sweep_engine(prepared, options)
    out.print(f"engine: {engine_name}" + (f" ({note})" if note else ""), markup=False)
    if prepared.jobs_note:
        out.print(prepared.jobs_note, markup=False)
    summary = _train_with_progress(prepared, options, engine_name)
    out.print(summary.describe() + f"; store: {plan.store_path}")


def _announce(prepared) -> None:
    """What a prepared sweep will cost, and its warnings (before it trains, or instead, on --dry-run)."""
    out.print(f"  {prepared.estimate.describe()}", markup=False)
    for warning in prepared.warnings:
        err.print(f"warning: {warning}", markup=False, soft_wrap=True)


def _train_with_progress(prepared, options, engine: str):
    """The prepared sweep trained under a progress bar (done/total, elapsed, ETA, ok/diverged/failed); Ctrl-C and
    SIGTERM stop it with what was stored said in one line, exit status 130."""
    from .runs.sweep import train_prepared

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[counts]}"),
    )
    counts = {"ok": 0, "diverged": 0, "failed": 0}
    said: set[str] = set()
    with Progress(*columns, console=err, transient=False) as progress:
        task = progress.add_task("training", total=len(prepared.plan.todo), counts="")

        def on_result(result) -> None:
            counts[result.status] += 1
            text = f"ok {counts['ok']}  diverged {counts['diverged']}  failed {counts['failed']}"
            progress.update(task, advance=1, counts=text)

        def on_wait(message: str) -> None:
            if message not in said:
                said.add(message)
                progress.console.print(message, markup=False)

        # SIGTERM stops a sweep as Ctrl-C does: the workers are stopped, finished runs are stored.
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            return train_prepared(prepared, options, engine, on_result=on_result, on_wait=on_wait)
        except KeyboardInterrupt:
            progress.stop()
            err.print(f"interrupted: {sum(counts.values())} runs stored; run the same command to resume")
            raise typer.Exit(130) from None
        finally:
            signal.signal(signal.SIGTERM, previous)


@app.command()
@user_errors
@stops_at_once
def report(
    study: Annotated[str, typer.Argument(help="A study name, a study file (TOML) or a results directory.")],
    results_dir: ResultsDir = Path("results"),
    out_dir: Annotated[Path | None, typer.Option("--out", help="Output directory [default: the store's].")] = None,
    tune: Annotated[
        list[str] | None,
        typer.Option(
            help="Axes each activation is tuned over (e.g. lr): a section comparing the activations at their "
            "own best settings, chosen on half the seeds and compared on the other half."
        ),
    ] = None,
) -> None:
    """Turn a study's stored runs into tables, figures and report.md (never trains)."""
    import matplotlib

    matplotlib.use("Agg")  # files only; the library leaves the backend to its caller
    from .outputs.report import build_report
    from .runs.loading import resolve

    axes = [a.strip() for item in tune or [] for a in item.split(",") if a.strip()]
    path = build_report(
        resolve(study, results_dir), out_dir, on_stage=lambda text: err.print(f"report: {text}"), tune=axes
    )
    out.print(f"wrote {path} (tables/ and figures/ beside it)", markup=False)
    from .outputs.index import read_glance

    glance = read_glance(path)
    if glance.figure:
        out.print(f"headline figure: {path.parent / glance.figure[1]} ({glance.figure[0]})", markup=False)


@app.command()
@user_errors
@stops_at_once
def index(
    results_dir: Annotated[Path, typer.Argument(help="The results directory whose reports to index.")] = Path(
        "results"
    ),
) -> None:
    """Write RESULTS_DIR/README.md: one page over every report and comparison in it (from the reports)."""
    from .outputs.index import write_index

    path, skipped = write_index(results_dir)
    for line in skipped:
        err.print(f"skipped {line}", markup=False, soft_wrap=True)
    out.print(f"wrote {path}", markup=False)


@app.command()
@user_errors
@stops_at_once
def site(
    results_dir: Annotated[Path, typer.Argument(help="The results directory: every study (a store) in it.")] = Path(
        "results"
    ),
    out_dir: Annotated[Path, typer.Option("--out", help="Where the site is written (whole, or not at all).")] = Path(
        "site"
    ),
    jobs: Jobs = None,
    log: Annotated[
        Path | None,
        typer.Option(
            "--log",
            help="The performance log (TOML) to plot; by default docs/benchmarks.toml beside RESULTS_DIR, if there.",
        ),
    ] = None,
) -> None:
    """Write a static site of every study, cell, run and comparison in RESULTS_DIR, to browse offline."""
    from .outputs.site import build_site
    from .runs.options import resolve_jobs

    n, note = resolve_jobs(jobs)
    if note:
        err.print(note, markup=False)
    say = lambda text: err.print(f"site: {text}", markup=False)
    page = build_site(results_dir, out_dir, on_stage=say, jobs=n, log=log)
    out.print(f"wrote {page} (open it in a browser: no server needed)", markup=False)


@app.command()
@user_errors
@stops_at_once
def show(
    study: Annotated[str, typer.Argument(help="A study name, a study file (TOML) or a results directory.")],
    where: Annotated[
        list[str] | None,
        typer.Option(help="One cell: FIELD=VALUE pairs, e.g. width=16,deriv_weight=0 (or the option repeated)."),
    ] = None,
    run_id: Annotated[
        str | None, typer.Option("--run", help="One run, by its run id (tables/runs.csv lists them).")
    ] = None,
    results_dir: ResultsDir = Path("results"),
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Output directory [default: the store's show/<selection>/].")
    ] = None,
) -> None:
    """Draw the fits and loss curves of any cell or run of a store, with a short table (never trains)."""
    import matplotlib

    matplotlib.use("Agg")
    from .outputs.show import show as show_selection
    from .runs.loading import resolve

    path = show_selection(
        resolve(study, results_dir), where=",".join(where) if where else None, run_id=run_id, out_dir=out_dir
    )
    out.print(f"wrote {path} (figures beside it)", markup=False)


@app.command()
@user_errors
@stops_at_once
def compare(
    a: Annotated[str, typer.Argument(help="Store A (the reference): a study name, study file or results directory.")],
    b: Annotated[str, typer.Argument(help="Store B, compared with A.")],
    results_dir: ResultsDir = Path("results"),
    margin: Annotated[float, typer.Option(help="Equivalence margin: errors within this factor count as equal.")] = 2.0,
    tail_margin: Annotated[
        float,
        typer.Option(
            help="Tail margin: shares of runs in the tail (beyond 10x the pooled median) within this difference "
            "count as equal, e.g. 0.1 (ten runs in a hundred)."
        ),
    ] = 0.1,
    seeds: Annotated[
        str | None,
        typer.Option("--seeds", help="Only runs with seeds START:STOP (STOP excluded), in both stores, e.g. 40:200."),
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Output directory [default: B's, under compare/].")
    ] = None,
    fail_on: Annotated[
        FailOn, typer.Option(help="Exit with status 1 when a cell is different, or not shown equivalent.")
    ] = FailOn.never,
    ignore: Annotated[
        list[str] | None,
        typer.Option(
            help="Config fields left out of the matching, e.g. dtype: the same plan trained in float32 and "
            "float64, matched run by run."
        ),
    ] = None,
) -> None:
    """Match two stores' runs by config and test, cell by cell, whether their errors changed."""
    from .analysis.compare import compare as compare_stores
    from .analysis.compare import failing
    from .outputs.comparison import describe, write_comparison
    from .runs.loading import resolve
    from .runs.options import seed_range

    fields = tuple(f.strip() for item in ignore or [] for f in item.split(",") if f.strip())
    c = compare_stores(
        resolve(a, results_dir), resolve(b, results_dir), margin, fields, tail_margin, seed_range(seeds, "--seeds")
    )
    path = write_comparison(c, out_dir if out_dir is not None else c.b.store.parent / "compare")
    out.print(describe(c), markup=False)
    out.print(f"wrote {path}", markup=False)
    if bad := failing(c, fail_on.value):
        err.print(
            f"compare failed: {bad} cell(s) x metric(s) or run statuses {fail_on.value} at margin "
            f"x{margin:g} (see {path})",
            markup=False,
        )
        raise typer.Exit(1)


@app.command()
@user_errors
def confirm(
    study: Annotated[Path, typer.Argument(help="A study file (TOML) that declares [[hypothesis]] tables.")],
    results_dir: ResultsDir = Path("results"),
    seeds: Annotated[
        int | None, typer.Option("--seeds", help="Fresh seeds to train [default: as many as the study has].")
    ] = None,
    jobs: Jobs = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan and train nothing.")] = False,
) -> None:
    """Re-test a study's declared hypotheses on fresh seeds: train their cells into STUDY-confirm, then
    say of each whether it replicated."""
    import matplotlib

    matplotlib.use("Agg")
    from .analysis.hypotheses import confirmation
    from .outputs.confirmation import write_confirmation
    from .runs.confirm import confirmation_plan
    from .runs.loading import Source
    from .runs.sweep import SweepOptions, prepare_plan, sweep_engine

    options = SweepOptions(jobs=jobs)
    original, plan = confirmation_plan(study, results_dir, seeds)
    out.print(plan.describe(), markup=False)
    prepared = prepare_plan(plan, options)
    if plan.todo:
        _announce(prepared)
        if dry_run:
            return
        engine_name, _ = sweep_engine(prepared, options)
        out.print(_train_with_progress(prepared, options, engine_name).describe())
    elif dry_run:
        return
    fresh = Source(plan.store_path, plan.study.name, plan.study)
    table, engines = confirmation(original, fresh)
    path = write_confirmation(table, engines, original, fresh, plan.store_path.parent)
    counts = table.confirmation.value_counts()
    out.print(", ".join(f"{int(counts.get(k, 0))} {k}" for k in ("replicated", "not replicated", "inconclusive")))
    out.print(f"wrote {path}", markup=False)


@app.command()
@user_errors
def bench(
    quick: Annotated[bool, typer.Option("--quick", help="A smaller workload (about a minute on 2 cores).")] = False,
    jobs: Jobs = None,
    repeat: Annotated[
        int,
        typer.Option(
            "--repeat",
            help="Rounds per case; ratios are taken within a round, then their median and range are printed.",
        ),
    ] = 1,
    fail_below: Annotated[
        float | None,
        typer.Option(
            help="Exit with status 1 when a batched engine's ratio "
            "over the reference is below this fraction of its usual "
            "one (bench.USUAL_RATIOS), e.g. 0.3."
        ),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option(
            help="Also measure the batched engine (torch kernels) on this "
            "accelerator, e.g. cuda, with the products alone there."
        ),
    ] = None,
    launch: LaunchBench = False,
    refine: RefineBench = False,
    log: BenchLog = None,
) -> None:
    """Measure training throughput of the engines side by side and print the ratios."""
    from .runs.bench import bench as measure

    _check_log(log, launch)

    def progress(m) -> None:
        rounds = f" (round {m.round + 1})" if repeat > 1 else ""
        err.print(f"  {m.case}, {m.engine}{rounds}: {m.model_epochs_per_s:.0f} model-epochs/s")

    slow = measure(
        quick=quick,
        jobs=jobs,
        repeat=repeat,
        fail_below=fail_below,
        device=device,
        launch=launch,
        say=lambda text: out.print(text, markup=False),
        on_measurement=progress,
        refinement=refine,
        record=None if log is None else lambda m: _append_measured(log, m),
    )
    for line in slow:
        err.print(f"bench regression: {line}", markup=False)
    if slow:
        raise typer.Exit(1)


def _check_log(log: Path | None, launch: bool) -> None:
    """bench --log's file, before the minutes of measuring: a log that does not read is refused."""
    from .outputs.benchlog import read_log

    if log is None:
        return
    if launch:
        raise UserError("keeps the ratios of `bench` and `bench --refine`, not of --launch", field="--log")
    if log.exists():
        read_log(log)


def _append_measured(log: Path, m) -> None:
    """bench --log: what was measured (runs.bench.Measured), appended to the log."""
    from .outputs.benchlog import append_entry, measured_entry

    append_entry(log, measured_entry(m))
    out.print(f"appended to {log}: {m.benchmark}, {len(m.ratios)} ratios", markup=False)


def _usage_errors() -> tuple[type[Exception], ...]:
    """The exceptions click raises for usage errors, through public names only: typer >= 0.20
    vendors click and derives them from typer.TyperException; older typers use click itself."""
    if hasattr(typer, "TyperException"):
        return (typer.TyperException,)
    import click  # pragma: no cover

    return (click.exceptions.ClickException,)  # pragma: no cover


def run(argv: list[str] | None = None) -> int:
    """Run the CLI on argv and return its exit status. Usage errors (an unknown option, a bad
    value) become one line on stderr with status 2, like every other user error."""
    try:
        status = app(args=argv, prog_name="runge-bench", standalone_mode=False)
    except typer.Exit as e:
        return e.exit_code
    except typer.Abort:
        err.print("interrupted")
        return 130
    except _usage_errors() as e:
        if type(e).__name__ == "NoArgsIsHelpError":  # plain `runge-bench`: the help, once
            ctx = getattr(e, "ctx", None)
            out.print(ctx.get_help() if ctx else str(e), markup=False)
            return 0
        err.print(f"error: {e.format_message().replace('Value error, ', '')}", markup=False, soft_wrap=True)
        return 2
    return status if isinstance(status, int) else 0  # click returns typer.Exit's code here


def main() -> None:
    """The console entry point."""
    sys.exit(run())
