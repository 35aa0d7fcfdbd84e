"""The performance log kept as data: docs/benchmarks.toml, one [[measurement]] per dated measurement.

    [[measurement]]
    date = 2026-12-05                      # when
    machine = "AMD EPYC, 2 cores"          # where (absolute times hold for it alone)
    command = "`runge-bench bench --quick`"
    result = "full batch: native 3.3x the reference, ..."   # what it printed, in words
    version = "0.1.0"                      # optional: the package's version that measured it
    benchmark = "bench --quick"            # optional, with ratios: what measured them
    ratios = { "full batch: native" = 3.3 }  # optional: series -> ratio measured side by side

`runge-bench bench --log FILE` appends an entry it measured (its ratios as numbers); hand-made
entries (a sweep's time, a CI run) are added to the file as text. docs/benchmarks.md's table is
made from it (`log_table`; `python3 -m runge_bench.outputs.benchlog docs/benchmarks.toml
docs/benchmarks.md` rewrites the table between its markers, and .ci/regenerate runs that), and the
site's performance page plots each series of ratios over the dates.
"""

from __future__ import annotations

import datetime
import json
import math
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..engine.environment import cpu_model
from ..problem.errors import UserError
from ..problem.version import package_version
from .files import write_text_whole

if TYPE_CHECKING:  # runs.bench imports torch: not for reading a log
    from ..runs.bench import Measured

REQUIRED = ("date", "machine", "command", "result")
OPTIONAL = ("version", "benchmark", "ratios")
BEGIN = "<!-- the log: made from benchmarks.toml (runge-bench bench --log, .ci/regenerate); edit that file -->"
END = "<!-- end of the log -->"


@dataclass(frozen=True)
class Entry:
    date: datetime.date
    machine: str
    command: str
    result: str
    version: str = ""
    benchmark: str = ""
    ratios: dict[str, float] = field(default_factory=dict)


def read_log(path: Path) -> list[Entry]:
    """The entries of a log file, oldest first as written; a clear UserError naming the file and
    the entry's field where one is missing or of the wrong kind."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise UserError(f"cannot be read ({e.strerror or e})", path=path) from None
    except UnicodeDecodeError as e:
        raise UserError(f"is not valid TOML ({e})", path=path) from None
    return parse_log(text, path)


def parse_log(text: str, path: Path) -> list[Entry]:
    """read_log's entries from the log's text (`path`: the file named in errors)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"is not valid TOML ({e})", path=path) from None
    extra = sorted(set(data) - {"measurement"})
    if extra:
        raise UserError(f"unknown key {extra[0]!r} (a log holds [[measurement]] entries only)", path=path)
    items = data.get("measurement", [])
    if not isinstance(items, list):
        raise UserError("must be an array of tables, [[measurement]]", path=path, field="measurement")
    return [_entry(item, path, f"measurement[{i}]") for i, item in enumerate(items)]


def _entry(item: object, path: Path, where: str) -> Entry:
    if not isinstance(item, dict):
        raise UserError("must be a table", path=path, field=where)
    unknown = sorted(set(item) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise UserError(
            f"unknown field (valid: {', '.join(REQUIRED + OPTIONAL)})", path=path, field=f"{where}.{unknown[0]}"
        )
    for name in REQUIRED:
        if name not in item:
            raise UserError("is missing", path=path, field=f"{where}.{name}")
    if not isinstance(item["date"], datetime.date) or isinstance(item["date"], datetime.datetime):
        raise UserError(f"must be a date like 2026-12-05, got {item['date']!r}", path=path, field=f"{where}.date")
    for name in ("machine", "command", "result", "version", "benchmark"):
        if name in item and not (isinstance(item[name], str) and item[name].strip()):
            raise UserError("must be a non-empty string", path=path, field=f"{where}.{name}")
    ratios = item.get("ratios", {})
    if not isinstance(ratios, dict):
        raise UserError("must be a table of series = ratio", path=path, field=f"{where}.ratios")
    for name, value in ratios.items():
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
        if not ok:
            raise UserError(f"must be a positive number, got {value!r}", path=path, field=f"{where}.ratios.{name}")
    if ratios and "benchmark" not in item:
        raise UserError("ratios need a benchmark: what measured them", path=path, field=f"{where}.benchmark")
    return Entry(
        item["date"],
        item["machine"],
        item["command"],
        item["result"],
        item.get("version", ""),
        item.get("benchmark", ""),
        {str(k): float(v) for k, v in ratios.items()},
    )


def entry_toml(e: Entry) -> str:
    """An entry as the log writes it: a [[measurement]] table, strings quoted as JSON quotes them
    (a TOML basic string accepts every JSON string escape)."""
    q = lambda s: json.dumps(s, ensure_ascii=False)
    lines = ["[[measurement]]", f"date = {e.date.isoformat()}"]
    lines += [f"{name} = {q(getattr(e, name))}" for name in ("machine", "command", "result", "version", "benchmark")]
    lines = [x for x in lines if not x.endswith(' = ""')]
    if e.ratios:
        lines.append("ratios = { " + ", ".join(f"{q(k)} = {v:g}" for k, v in e.ratios.items()) + " }")
    return "\n".join(lines) + "\n"


def append_entry(path: Path, e: Entry) -> None:
    """Add an entry at the end of the log (created where missing), the file rewritten whole: a
    reader sees the old log or the new, and a log that does not read is refused, not extended."""
    path = Path(path)
    try:
        old = path.read_text() if path.exists() else ""
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot be read ({err})", path=path) from None
    parse_log(old, path)  # refuse to extend a broken log (a UserError naming its field)
    text = old.rstrip("\n") + ("\n\n" if old.strip() else "") + entry_toml(e)
    try:
        write_text_whole(path, text)
    except OSError as err:
        raise UserError(f"cannot be written ({err.strerror or err})", path=path) from None


def measured_entry(m: Measured) -> Entry:
    """Today's entry for what a bench measured (its ratios: series -> ratio, a series "case:
    engine" grouped by case in the words) on this machine's CPU with its workers."""
    by_case: dict[str, list[str]] = {}
    for name, value in m.ratios.items():
        case, _, series = name.rpartition(": ")
        by_case.setdefault(case, []).append(f"{series} {value:.1f}x")
    words = "; ".join(f"{case + ': ' if case else ''}{', '.join(v)}" for case, v in by_case.items())
    return Entry(
        datetime.date.today(),
        f"{cpu_model()}, {m.jobs} core" + ("s" if m.jobs != 1 else ""),
        f"`runge-bench {m.benchmark} --jobs {m.jobs}`",
        f"ratios, {m.what}: {words}",
        package_version(),
        m.benchmark,
        dict(m.ratios),
    )


def log_table(entries: list[Entry]) -> str:
    """docs/benchmarks.md's table: date, machine, command, result."""
    cell = lambda s: s.replace("|", "\\|")
    rows = [f"| {e.date.isoformat()} | {cell(e.machine)} | {cell(e.command)} | {cell(e.result)} |" for e in entries]
    return "\n".join(["| date | machine | command | result |", "| --- | --- | --- | --- |", *rows])


def with_table(markdown: str, entries: list[Entry], path: Path) -> str:
    """markdown with the text between its BEGIN and END markers made log_table(entries)."""
    if markdown.count(BEGIN) != 1 or markdown.count(END) != 1 or markdown.index(BEGIN) > markdown.index(END):
        raise UserError(f"needs the log's two markers, once each: {BEGIN} ... {END}", path=path)
    head, rest = markdown.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{log_table(entries)}\n{END}{tail}"


def refresh_markdown(log: Path, markdown: Path) -> bool:
    """Rewrite markdown's table from the log; whether it changed."""
    old = Path(markdown).read_text()
    new = with_table(old, read_log(log), Path(markdown))
    if new != old:
        write_text_whole(Path(markdown), new)
    return new != old


if __name__ == "__main__":  # python3 -m runge_bench.outputs.benchlog LOG.toml TABLE.md
    try:
        changed = refresh_markdown(Path(sys.argv[1]), Path(sys.argv[2]))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(f"{sys.argv[2]}: {'rewritten' if changed else 'already current'} from {sys.argv[1]}")
