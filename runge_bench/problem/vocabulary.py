"""The suite's vocabulary, each word defined once: metrics and their labels, the metric sets the
reports single out, the kinds of axis a study can vary, the engines and the optimizers.

Words that mean one thing across the package:

- **target**: the function a run fits (problem.targets); never a store or a tensor.
- **engine**: what trained a run, as its result records it: one of ENGINES. The CLI's `--engine
  batched` picks the batched family; `--kernels` and `--compile` then pick which batched engine.
- **cell**: one combination of the varying axes other than activation (and seed).
- **regime**: a cell's training regime, named by its dtype and optimizer.
"""

from __future__ import annotations

# ----------------------------------------------------------------------------- metrics

# Every run is scored on its validation split ("val") and on the dense grid ("grid"), for f and f'.
METRICS: tuple[str, ...] = (
    "val_f_mse",
    "val_f_max",
    "val_df_mse",
    "val_df_max",
    "grid_f_mse",
    "grid_f_max",
    "grid_df_mse",
    "grid_df_max",
)

METRIC_LABELS = {  # for figures and findings (plain text)
    "val_f_mse": "f MSE (validation)",
    "val_f_max": "f max error (validation)",
    "val_df_mse": "f′ MSE (validation)",
    "val_df_max": "f′ max error (validation)",
    "grid_f_mse": "f MSE (dense grid)",
    "grid_f_max": "f max error (dense grid)",
    "grid_df_mse": "f′ MSE (dense grid)",
    "grid_df_max": "f′ max error (dense grid)",
}
METRIC_LABELS_TEX = {  # for LaTeX tables
    "val_f_mse": r"MSE of $f$ (validation)",
    "val_f_max": r"max error of $f$ (validation)",
    "val_df_mse": r"MSE of $f'$ (validation)",
    "val_df_max": r"max error of $f'$ (validation)",
    "grid_f_mse": r"MSE of $f$ (dense grid)",
    "grid_f_max": r"max error of $f$ (dense grid)",
    "grid_df_mse": r"MSE of $f'$ (dense grid)",
    "grid_df_max": r"max error of $f'$ (dense grid)",
}

# The four a report's tables, paper tables and `show` single out: the seed report's two MSEs and
# the dense grid's sup-norm estimates.
KEY_METRICS = ["val_f_mse", "val_df_mse", "grid_f_max", "grid_df_max"]
# The two the findings, rankings, heatmaps and compact tables rank and compare on: f and f' on the
# dense grid, mean squared.
GRID_MSE = ["grid_f_mse", "grid_df_mse"]
GRID_MAX = ["grid_f_max", "grid_df_max"]
GRID_METRICS = [*GRID_MSE, *GRID_MAX]
FLOOR_METRICS = (*GRID_MAX, *GRID_MSE)  # the networks against the classical baselines

# ----------------------------------------------------------------------------- axes

# Axes whose levels lie on a scale: a step along one is an effect to measure (tables.axis_effects).
NUMERIC_AXES = ("width", "depth", "deriv_weight", "lr", "epochs", "n_points", "val_fraction", "noise")
# Axes whose levels are different questions, not points on a scale: rankings are compared across them.
CATEGORICAL_AXES = ("target", "dtype", "optimizer", "checkpoint")
# The axes that name a cell's training regime.
REGIME_AXES = ("dtype", "optimizer")
# The config fields that decide a run's training data: its split, and the noise on its targets (and
# so what a baseline is fitted to).
SPLIT_FIELDS = ("n_points", "val_fraction", "noise")

# ----------------------------------------------------------------------------- engines and optimizers

# The batched engines, by the kernels doing a step's elementwise work (engine/batched.py): torch
# ops (the specification, any device), torch ops through torch.compile, fused C++ (CPU).
BATCHED_ENGINES = {"batched": "torch", "batched+compile": "compile", "batched+native": "native"}
ENGINES = ("reference", *BATCHED_ENGINES)  # what a result's `engine` records


def engine_family(engine: str) -> str:
    """ "reference" or "batched": how an engine cuts runs into tasks and what memory it needs."""
    return "reference" if engine == "reference" else "batched"


# How a run's Adam epochs may be followed by a second-order refinement (engine/refine.py), and the
# iteration count field each refinement reads.
OPTIMIZERS = ("adam", "adam+lbfgs", "adam+lm", "adam+gn")
REFINE_ITERS = {"adam+lbfgs": "lbfgs_iters", "adam+lm": "lm_iters", "adam+gn": "gn_iters"}
# The optimizers a multi-stage run (stages > 1, engine/stages.py) trains each stage with: those
# refined on the whole stack at once.
STAGED_OPTIMIZERS = ("adam", "adam+gn")
MAX_STAGES = 8

# Which parameters a run is scored with: its last epoch's, or its best epoch's by validation loss.
CHECKPOINTS = ("last", "best_val")
