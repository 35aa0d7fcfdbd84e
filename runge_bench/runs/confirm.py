"""`runge-bench confirm`: a study's declared hypotheses re-tested on fresh seeds.

The fresh seeds are the next ones after every seed the study's store holds, so that no run that
could have shaped a finding is re-used; only the cells and activations the hypotheses name are
trained, into a store of their own, `<results>/<study>-confirm/`, whose sweep declares the same
hypotheses before it trains anything (so that, there, they are confirmatory). The comparison of
the two is analysis.hypotheses.confirmation_table; outputs/confirmation.py writes it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..problem.config import RunConfig
from ..problem.errors import UserError
from ..problem.hypothesis import Hypothesis
from .loading import Source
from .plan import Plan, make_plan
from .store import Store, store_path
from .study import Study, load_study

SUFFIX = "-confirm"
MAX_FRESH_SEEDS = 1000  # fresh seeds per confirmation: past this, a typo rather than a design


def covers(h: Hypothesis, c: RunConfig) -> bool:
    """Whether run config c is one the hypothesis is tested on."""
    return c.activation in (h.better, h.worse) and all(getattr(c, k) == v for k, v in h.side(c.activation))


def confirmation_study(study_file: Path, results_dir: Path, seeds: int | None = None) -> tuple[Study, Study]:
    """The study, and its confirmation: the cells its hypotheses name, on `seeds` fresh seeds (as
    many as the study has by default), numbered after every seed its store holds."""
    study = load_study(study_file)
    if not study.hypotheses:
        raise UserError(
            "declares no [[hypothesis]]: nothing to confirm (declare the findings to re-test, then confirm)",
            path=study_file,
            field="hypothesis",
        )
    original = store_path(results_dir, study.name)
    if not original.exists():
        raise UserError("no store of this study here: sweep the study first", path=original)
    with Store(original) as store:
        stored = store.runs().seed
    planned = sorted({c.seed for c in study.configs})
    n = len(planned) if seeds is None else seeds
    if not 1 <= n <= MAX_FRESH_SEEDS:
        raise UserError(f"must be 1-{MAX_FRESH_SEEDS}, got {n}", field="--seeds")
    first = max([*planned, *(int(s) for s in stored)]) + 1
    fresh = tuple(range(first, first + n))
    template = [c for c in study.configs if c.seed == planned[0] and any(covers(h, c) for h in study.hypotheses)]
    configs = tuple(dataclasses.replace(c, seed=s) for s in fresh for c in template)
    confirm = dataclasses.replace(
        study,
        name=study.name + SUFFIX,
        description=f"{study.name}'s declared hypotheses on {n} fresh seeds ({fresh[0]}-{fresh[-1]})",
        axes={**study.axes, "seed": fresh},
        configs=configs,
    )
    return study, confirm


def confirmation_plan(study_file: Path, results_dir: Path, seeds: int | None = None) -> tuple[Source, Plan]:
    """The original store's source and the confirmation's plan."""
    study, confirm = confirmation_study(study_file, results_dir, seeds)
    return Source(store_path(results_dir, study.name), study.name, study), make_plan(confirm, results_dir)
