"""What one run is (RunConfig) and what it produced (RunResult).

A RunConfig holds every input that can change a run's numbers; its `run_id` hashes them together
with PROTOCOL_VERSION, which is bumped whenever training or metric semantics change so that a
store never hands back a result computed under other rules. How a run is executed (engine,
device) is not part of the config: it is recorded beside the result instead, so that a sweep can
resume with another engine.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .vocabulary import CHECKPOINTS, MAX_STAGES, REFINE_ITERS, STAGED_OPTIMIZERS

PROTOCOL_VERSION = 1

Status = Literal["ok", "diverged", "failed"]

# Fields stored as floats: 1 and 1.0, -0.0 and 0.0 are one value (RunConfig.__post_init__, and a
# study file's values are normalised the same way).
FLOAT_FIELDS = ("deriv_weight", "lr", "val_fraction", "noise")

# Fields added after protocol 1's stores were written. At their defaults they are left out of the
# run id's hash, so every run stored before they existed keeps its id (and a store stays valid);
# a run that sets one gets an id of its own.
ADDED_FIELDS = ("target", "optimizer", "lbfgs_iters", "lm_iters", "noise", "checkpoint", "gn_iters", "stages")


def checkpoint_conflict(checkpoint: str, optimizer: str) -> str | None:
    """Why a checkpoint cannot go with an optimizer, or None: only checkpoint "last" is defined
    for a refinement (L-BFGS, Levenberg-Marquardt), which goes on from the last Adam epoch."""
    if checkpoint != "last" and optimizer in REFINE_ITERS:
        return (
            f"checkpoint {checkpoint!r} with optimizer {optimizer!r}: a refinement goes on from the last "
            "Adam epoch, so only checkpoint 'last' is defined for it"
        )
    return None


def stages_conflict(values: dict[str, Any]) -> str | None:
    """Why a run's fields (a dict of RunConfig's, defaults omitted) cannot go with its number of
    stages, or None."""
    stages, optimizer = values.get("stages", 1), values.get("optimizer", "adam")
    if not 1 <= stages <= MAX_STAGES:
        return f"stages must be 1 to {MAX_STAGES}, got {stages}"
    if stages > 1 and optimizer not in STAGED_OPTIMIZERS:
        return f"stages > 1 trains every stage with {' or '.join(STAGED_OPTIMIZERS)}, not {optimizer!r}"
    if stages > 1 and (values.get("batch_size") is not None or values.get("checkpoint", "last") != "last"):
        return "stages > 1 needs full-batch Adam (batch_size 'full') and checkpoint 'last'"
    return None


@dataclass(frozen=True)
class RunConfig:
    """Every input of one training run; the defaults are the seed report's protocol."""

    activation: str  # hidden-layer activation, a key of problem.activations.ACTIVATIONS
    seed: int = 0  # drives the split, the init (as torch.manual_seed would) and the batch order
    width: int = 64  # units per hidden layer
    depth: int = 2  # number of hidden layers
    deriv_weight: float = 1.0  # lambda in MSE(f) + lambda * MSE(f')
    lr: float = 1e-3  # Adam learning rate
    epochs: int = 1000  # passes over the training split
    batch_size: int | None = None  # None: full batch (the seed protocol)
    n_points: int = 1000  # uniform points on [-1, 1] before the split
    val_fraction: float = 0.2  # share of the points held out for validation
    dtype: Literal["float32", "float64"] = "float32"
    target: str = "runge"  # the function fitted, a key of problem.targets.TARGETS
    optimizer: str = "adam"  # one of vocabulary.OPTIMIZERS: Adam alone, or Adam then L-BFGS / Levenberg-Marquardt
    lbfgs_iters: int = 0  # L-BFGS iterations after the Adam epochs (optimizer "adam+lbfgs")
    lm_iters: int = 0  # Levenberg-Marquardt iterations after the Adam epochs (optimizer "adam+lm")
    noise: float = 0.0  # Gaussian noise on the training targets f and f', sd noise x each one's RMS (data.with_noise)
    checkpoint: str = "last"  # scored with the last epoch's parameters, or "best_val": those of the epoch
    # with the lowest validation loss (MSE(f) + deriv_weight * MSE(f') on the validation split)
    gn_iters: int = 0  # matrix-free Gauss-Newton iterations after the Adam epochs (optimizer "adam+gn")
    stages: int = 1  # networks trained one after another, each on the scaled residual of the others (stages.py)

    def __post_init__(self) -> None:
        # One run, one id: 1 and 1.0, -0.0 and 0.0 are the same value of a float field, and must not
        # hash (or be stored, or be pooled in a report) as two runs.
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name in FLOAT_FIELDS and isinstance(v, (int, float)) and not isinstance(v, bool):
                object.__setattr__(self, f.name, float(v) + 0.0)  # + 0.0 turns -0.0 into 0.0
        # An iteration count the optimizer does not use changes nothing, so it must not change the
        # id either: a grid over optimizers with lbfgs_iters fixed gives one plain-Adam run, not two.
        for optimizer, iters in REFINE_ITERS.items():
            if self.optimizer != optimizer:
                object.__setattr__(self, iters, 0)
        if self.checkpoint not in CHECKPOINTS:
            raise ValueError(f"checkpoint must be one of {CHECKPOINTS}, got {self.checkpoint!r}")
        if conflict := checkpoint_conflict(self.checkpoint, self.optimizer):
            raise ValueError(conflict)
        if conflict := stages_conflict(self.to_dict()):
            raise ValueError(conflict)

    @property
    def staged(self) -> bool:
        """Whether the run finishes on the whole stack after Adam (engine/stages.py): more than one
        stage, or the matrix-free Gauss-Newton refinement."""
        return self.stages > 1 or self.optimizer == "adam+gn"

    @property
    def refine_iters(self) -> int:
        """Iterations of the refinement after Adam (0 for plain Adam)."""
        return getattr(self, REFINE_ITERS[self.optimizer]) if self.optimizer in REFINE_ITERS else 0

    @property
    def run_id(self) -> str:
        """A stable 16-hex-digit id of (protocol version, config)."""
        config = self.to_dict()
        for name in ADDED_FIELDS:
            if config[name] == _DEFAULTS[name]:
                del config[name]
        payload = json.dumps({"protocol": PROTOCOL_VERSION, "config": config}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        return cls(**data)

    def shape_key(self) -> tuple:
        """Runs with equal shape keys can be trained as one stacked model (batched engine); runs
        that finish on the whole stack (`staged`) share their stages and Gauss-Newton iterations too."""
        return (
            self.activation,
            self.width,
            self.depth,
            self.epochs,
            self.batch_size,
            self.n_points,
            self.val_fraction,
            self.dtype,
            self.staged,
            self.stages,
            self.gn_iters,
        )


CONFIG_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(RunConfig))
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunConfig)}

# The seed report's protocol: every field's default, activation and seed aside.
SEED_PROTOCOL: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(RunConfig) if f.name not in ("activation", "seed")
}


def is_seed_protocol(config: RunConfig) -> bool:
    """Whether a run follows the seed report's protocol (any activation, any seed)."""
    return all(getattr(config, k) == v for k, v in SEED_PROTOCOL.items())


@dataclass(frozen=True)
class RunResult:
    """What one run produced.

    Attributes:
        config: the run's whole config, so a stored row needs no study file to be read.
        status: "ok", "diverged" (a non-finite loss, at `diverged_epoch`) or "failed" (`error`).
        metrics: the eight vocabulary.METRICS for an ok run, empty otherwise.
        curves: per-epoch losses, float32 arrays of equal length keyed "epoch", "train_f",
            "train_df", "val_f", "val_df" (possibly downsampled, see runs/store.py); a run with
            checkpoint "best_val" adds "best_epoch", the epoch of the lowest validation loss so far
            (its last value is the epoch the run is scored at: `best_epoch`).
        predictions: f and f' of the trained network on data.plot_grid(), keys "f", "df".
        wall_s: seconds of training; for the batched engine, the group's time divided among members.
    """

    config: RunConfig
    status: Status
    metrics: dict[str, float] = field(default_factory=dict)
    curves: dict[str, np.ndarray] = field(default_factory=dict)
    predictions: dict[str, np.ndarray] = field(default_factory=dict)
    error: str | None = None
    diverged_epoch: int | None = None
    wall_s: float = 0.0
    engine: str = "reference"
    device: str = "cpu"
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return self.config.run_id

    @property
    def best_epoch(self) -> int | None:
        """The epoch whose parameters a checkpoint "best_val" run is scored with (None otherwise)."""
        best = self.curves.get("best_epoch")
        return int(best[-1]) if best is not None and len(best) else None
