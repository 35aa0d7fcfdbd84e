"""The seed report's published numbers: the one place they live in the code.

Source: the seed report (`shared/seed-report.md`, "Week 2 Programming assignment"), Table 1 (ReLU)
and Table 2 (Tanh): MSE and max absolute error of f and f' on the validation split, one training
run per activation, 1-64-64-1, MSE(f) + MSE(f'), Adam lr 1e-3, 1000 epochs.
"""

from __future__ import annotations

SOURCE = "seed report, Tables 1-2 (validation split, one run per activation)"

# (activation, quantity, metric) -> value; quantity "f" or "df" (f'), metric "mse" or "max".
PUBLISHED: dict[tuple[str, str, str], float] = {
    ("relu", "f", "mse"): 2.65e-5,
    ("relu", "f", "max"): 2.46e-2,
    ("relu", "df", "mse"): 3.43e-2,
    ("relu", "df", "max"): 9.38e-1,
    ("tanh", "f", "mse"): 7.24e-8,
    ("tanh", "f", "max"): 8.13e-4,
    ("tanh", "df", "mse"): 2.94e-5,
    ("tanh", "df", "max"): 1.70e-2,
}


def metric_column(quantity: str, metric: str) -> str:
    """The store's column for a published number: validation split, e.g. val_df_mse."""
    return f"val_{quantity}_{metric}"
