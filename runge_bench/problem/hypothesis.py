"""A declared hypothesis: one activation's error below another's, on one metric, in some cells.

A study file declares them before its runs are trained (`[[hypothesis]]`, runs/study.py); the
sweep records each in the store with the time it was first declared; a report tests exactly these,
in one family, and calls a hypothesis confirmatory only when it was declared before any of the runs
it is tested on was trained. Everything else a report finds is exploratory.
"""

from __future__ import annotations

from dataclasses import dataclass

from .vocabulary import METRIC_LABELS

DEFAULT_PRIMARY = "grid_df_mse"  # the dense grid is the honest measure at every number of points


@dataclass(frozen=True)
class Hypothesis:
    better: str  # the activation whose error is claimed lower
    worse: str
    metric: str
    where: tuple[tuple[str, object], ...] = ()  # (field, value) pairs fixing cells; () = every cell

    def text(self) -> str:
        """The hypothesis in words, its identity in the store (one hypothesis, one text)."""
        cells = ", ".join(f"{k}={v}" for k, v in self.where) if self.where else "every cell"
        return f"{self.better} below {self.worse} on {METRIC_LABELS.get(self.metric, self.metric)} ({cells})"

    def to_dict(self) -> dict:
        return {"better": self.better, "worse": self.worse, "metric": self.metric, "where": dict(self.where)}

    @classmethod
    def from_dict(cls, d: dict) -> Hypothesis:
        return cls(str(d["better"]), str(d["worse"]), str(d["metric"]), tuple(sorted(dict(d.get("where", {})).items())))
