"""Markdown as the reports write it: tables, findings as lists, figures with captions, wrapped prose."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pandas as pd

from ..analysis.findings import Finding
from ..analysis.tables import sci

WRAP = 110  # report.md's prose and list items are wrapped here; tables and images are not
_KEEP = ("|", "#", "![", "    ", "```")


def with_ci(estimates, lows, highs) -> list[str]:
    """Each estimate with its interval in one readable column: "1.41 (0.714-21.6)"."""
    return [f"{sci(x)} ({sci(lo)}-{sci(hi)})" for x, lo, hi in zip(estimates, lows, highs)]


def to_markdown(df: pd.DataFrame, columns: list[str] | None = None) -> str:
    """A GitHub Markdown table of the given columns, numbers in readable significant figures."""
    df = df if columns is None else df[columns]
    if df.empty:
        return "_(no rows)_\n"
    head = "| " + " | ".join(df.columns) + " |"
    rule = "| " + " | ".join("---" for _ in df.columns) + " |"
    body = ["| " + " | ".join(sci(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body]) + "\n"


def claims(pairs: list[Finding]) -> list[str]:
    """Findings as a nested list: the claim on its line, its scope and test on the lines below."""
    lines = []
    for claim, details in pairs:
        lines += [f"- {claim}", *[f"  - {d}" for d in details]]
    return lines


def figures(figs: list[tuple[str, str]]) -> list[str]:
    """Figures where they belong: the image, then its caption in italics."""
    lines = []
    for caption, rel in figs:
        lines += ["", f"![{Path(rel).stem}]({rel})", "", f"*{caption}.*"]
    return lines + ([""] if lines else [])


def wrap_markdown(lines: list[str], width: int = WRAP) -> list[str]:
    """Prose and list items wrapped at `width` (a list item's continuation indented under its
    text, as Markdown reads it); tables, headings, images and code kept as they are."""
    out: list[str] = []
    for line in lines:
        if not line.strip() and out and not out[-1].strip():
            continue  # one blank line between blocks
        if not line.strip() or line.startswith(_KEEP) or len(line) <= width:
            out.append(line)
            continue
        m = re.match(r"^(\s*)(- )?", line)
        first = m.group(0)
        rest = " " * len(first)
        out += textwrap.wrap(
            line[len(first) :],
            width=width,
            initial_indent=first,
            subsequent_indent=rest,
            break_long_words=False,
            break_on_hyphens=False,
        )
    return out


def unwrap_markdown(text: str) -> list[str]:
    """The logical lines of a report (wrapped lines joined): what stays the same when a number's
    width changes where a line wraps (tests compare reports this way). Reports hold no indented
    code, so an indented line that starts no list item continues the one before."""
    out: list[str] = []
    for line in text.splitlines():
        continues = (
            out
            and line.strip()
            and out[-1].strip()
            and not line.lstrip().startswith(("- ", "|", "#", "![", "*"))
            and not out[-1].startswith(("|", "#", "!["))
            and (line.startswith(" ") or not line.startswith("**"))
        )
        if continues:
            out[-1] = f"{out[-1]} {line.strip()}"
        else:
            out.append(line)
    return out


def write_markdown(path: Path, lines: list[str]) -> None:
    """A Markdown file of the given lines, wrapped, ending in one newline."""
    path.write_text("\n".join(wrap_markdown(lines)).rstrip() + "\n")
