"""A confirmation (analysis.hypotheses.confirmation) -> confirm.md and confirm.csv."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..analysis.hypotheses import confirmation_findings
from ..runs.loading import Source
from .files import written_whole
from .markdown import claims, to_markdown, with_ci, write_markdown

COLUMNS = ["hypothesis", "original (95% CI)", "seeds", "fresh (95% CI)", "fresh seeds", "p_holm_fresh", "confirmation"]


def write_confirmation(
    table: pd.DataFrame, engines: dict[str, list[str]], original: Source, fresh: Source, out: Path
) -> Path:
    """Write out/confirm.md and confirm.csv, whole; return confirm.md's path."""
    counts = table.confirmation.value_counts()
    shown = table.assign(
        **{
            "original (95% CI)": with_ci(table.ratio, table.ratio_lo, table.ratio_hi),
            "fresh (95% CI)": with_ci(table.ratio_fresh, table.ratio_lo_fresh, table.ratio_hi_fresh),
            "fresh seeds": table.seeds_fresh,
        }
    )
    lines = [
        f"# runge-bench confirm: {original.name}",
        "",
        f"- original: `{original.store}` (engines: {', '.join(engines['original'])})",
        f"- fresh seeds: `{fresh.store}` (engines: {', '.join(engines['fresh'])})",
        "",
        f"The study's {len(table)} declared hypotheses, each tested as declared on seeds no stored run of the "
        "study used, Holm over the family on the fresh seeds: "
        + ", ".join(f"{int(counts.get(k, 0))} {k}" for k in ("replicated", "not replicated", "inconclusive"))
        + "."
        + (
            " The two were trained by different engines, whose runs differ after many float32 epochs even on "
            "the same seed (docs/engines.md measures by how much): the fresh seeds re-test the finding, with "
            "the engine change part of what it must survive."
            if engines["original"] != engines["fresh"]
            else ""
        ),
        "",
        *claims(confirmation_findings(table)),
        "",
        to_markdown(shown, COLUMNS),
    ]
    with written_whole(out, "the confirmation") as staging:
        table.to_csv(staging / "confirm.csv", index=False)
        write_markdown(staging / "confirm.md", lines)
    return out / "confirm.md"
