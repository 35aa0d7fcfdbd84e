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
    # Each side at its own setting (a tuned comparison: each activation at its own best learning
    # rate): fields fixed for one side only, paired by seed across them.
    better_at: tuple[tuple[str, object], ...] = ()
    worse_at: tuple[tuple[str, object], ...] = ()

    def text(self) -> str:
        """The hypothesis in words, its identity in the store (one hypothesis, one text)."""
        cells = ", ".join(f"{k}={v}" for k, v in self.where) if self.where else "every cell"
        better, worse = (
            f"{a} ({', '.join(f'{k}={v}' for k, v in at)})" if at else a
            for a, at in ((self.better, self.better_at), (self.worse, self.worse_at))
        )
        return f"{better} below {worse} on {METRIC_LABELS.get(self.metric, self.metric)} ({cells})"

    def side(self, activation: str) -> tuple[tuple[str, object], ...]:
        """The fields that fix one side's runs: the shared cells and that side's own settings."""
        return self.where + (self.better_at if activation == self.better else self.worse_at)

    def to_dict(self) -> dict:
        d = {"better": self.better, "worse": self.worse, "metric": self.metric, "where": dict(self.where)}
        return d | {k: dict(v) for k, v in (("better_at", self.better_at), ("worse_at", self.worse_at)) if v}

    @classmethod
    def from_dict(cls, d: dict) -> Hypothesis:
        pairs = lambda key: tuple(sorted(dict(d.get(key, {})).items()))
        return cls(
            str(d["better"]), str(d["worse"]), str(d["metric"]), pairs("where"), pairs("better_at"), pairs("worse_at")
        )
