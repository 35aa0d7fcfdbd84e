"""One page over every committed result: `runge-bench index results/` writes results/README.md.

It is made from the reports themselves, not from the stores: each report's "At a glance" (its
question, the study in a line, its headline figure and the findings its rule chose, with their
scope and test) and each comparison's verdict counts, quoted verbatim, so the page says nothing a
report does not. The same reports always give the same page (tests check it is current).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..problem.errors import UserError
from .files import refuse_link, write_text_whole
from .markdown import unwrap_markdown, wrap_markdown

INDEX_NAME = "README.md"
GLANCE = "## At a glance"


@dataclass
class Glance:
    """What a report's "At a glance" says, as logical (unwrapped) lines."""

    name: str
    question: str = ""
    study: str = ""
    figure: tuple[str, str] | None = None  # (caption, path relative to the report)
    findings: list[tuple[str, list[str]]] = field(default_factory=list)


MAX_READ = 16 * 2**20  # bytes: a report.md or compare.md larger than this is not read


class Unreadable(ValueError):
    """Why a report.md or compare.md cannot be read, in a few words."""


def read_bounded(path: Path) -> str:
    """A report's text: a regular file (never a device or a FIFO, which could give bytes forever or
    none), at most MAX_READ bytes, UTF-8; else Unreadable saying which."""
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise Unreadable("a directory, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise Unreadable("not a regular file")
        if info.st_size > MAX_READ:
            raise Unreadable(f"larger than {MAX_READ // 2**20} MB")
        with open(path, "rb") as f:
            data = f.read(MAX_READ + 1)
    except OSError as e:
        raise Unreadable(e.strerror or type(e).__name__) from None
    if len(data) > MAX_READ:
        raise Unreadable(f"larger than {MAX_READ // 2**20} MB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise Unreadable("not UTF-8 text") from None


def read_glance(report: Path) -> Glance:
    """The "At a glance" of a report.md (a report without one gives an empty Glance); Unreadable
    when the file cannot be read."""
    lines = unwrap_markdown(read_bounded(report))
    g = Glance(report.parent.name)
    if GLANCE not in lines:
        return g
    start = lines.index(GLANCE) + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("## ")), len(lines))
    part = lines[start:end]
    for i, line in enumerate(part):
        if line.startswith("**Question.** "):
            g.question = line.removeprefix("**Question.** ")
        elif line.startswith("**Study.** "):
            g.study = line.removeprefix("**Study.** ")
        elif line.startswith("![") and "](" in line and line.endswith(")") and g.figure is None:
            rel = line[line.index("](") + 2 : -1]
            caption = next((c.strip("*").rstrip(".") for c in part[i + 1 :] if c.startswith("*")), "")
            g.figure = (caption, rel)
        elif line.startswith("- "):
            g.findings.append((line[2:], []))
        elif line.startswith("  - ") and g.findings:
            g.findings[-1][1].append(line[4:])
    return g


def _comparison(path: Path) -> tuple[str, str, str]:
    """(A, B, the verdict counts line) of a compare.md."""
    lines = unwrap_markdown(read_bounded(path))
    a = next((line.removeprefix("- A: ") for line in lines if line.startswith("- A: ")), "?")
    b = next((line.removeprefix("- B: ") for line in lines if line.startswith("- B: ")), "?")
    verdict = next((line for line in lines if line.startswith("In all: ")), "")
    return a, b, verdict


def index_text(results: Path) -> tuple[str, list[str]]:
    """results/README.md's text: a table of the reports, each report's glance, the comparisons;
    and the files left out because they cannot be read, each with why."""
    reports = sorted(results.glob("*/report.md"))
    found = sorted(results.glob("*/compare*/compare.md"))
    if not reports and not found:
        raise UserError("no report.md or compare.md under it (run `runge-bench report` first)", path=results)
    glances, comparisons, skipped = [], [], []
    for r in reports:
        try:
            glances.append(read_glance(r))
        except Unreadable as e:
            skipped.append(f"{r}: {e}")
    for c in found:
        try:
            comparisons.append((c, _comparison(c)))
        except Unreadable as e:
            skipped.append(f"{c}: {e}")
    out = [
        "# Results",
        "",
        "Every committed study's question, headline figure and the findings its report puts first, with their "
        "scope and test, quoted from the reports (which regenerate from the stores beside them: `bash "
        ".ci/regenerate`). Generated by `runge-bench index results/`; do not edit by hand.",
        "",
        "| study | question | runs |",
        "| --- | --- | --- |",
    ]
    for g in glances:
        runs = g.study.split(" runs", 1)[0] if " runs" in g.study else ""
        out.append(f"| [{g.name}]({g.name}/report.md) | {g.question or '–'} | {runs} |")
    out.append("")
    for g in glances:
        out += [f"## {g.name}", ""]
        if g.question:
            out += [f"**Question.** {g.question}", ""]
        if g.study:
            out += [f"**Study.** {g.study}", ""]
        if g.figure:
            caption, rel = g.figure
            out += [f"![{Path(rel).stem}]({g.name}/{rel})", "", f"*{caption}.*", ""]
        for claim, details in g.findings:
            out += [f"- {claim}", *[f"  - {d}" for d in details]]
        out += ["", f"Full report: [{g.name}/report.md]({g.name}/report.md).", ""]
    if comparisons:
        out += [
            "## Comparisons between stores",
            "",
            "Engines, dtypes and devices against each other, cell by cell (`runge-bench compare`); the verdicts "
            "count cells x metrics.",
            "",
        ]
        for path, (a, b, verdict) in comparisons:
            rel = path.relative_to(results).as_posix()
            out += [f"- [{rel}]({rel}): A {a}, B {b}.", f"  - {verdict}" if verdict else "  - (no verdict line)"]
        out.append("")
    return "\n".join(wrap_markdown(out)).rstrip() + "\n", skipped


def write_index(results: Path) -> tuple[Path, list[str]]:
    """Write results/README.md (whole: a fresh temporary file renamed over it); return its path
    and the reports left out, each with why."""
    results = Path(results)
    if not results.is_dir():
        raise UserError("no such results directory", path=results)
    refuse_link(results, "the index is not written through it")
    text, skipped = index_text(results)
    path = results / INDEX_NAME
    try:
        write_text_whole(path, text)
    except OSError as e:
        raise UserError(f"cannot write the index ({e.strerror})", path=path) from None
    return path, skipped
