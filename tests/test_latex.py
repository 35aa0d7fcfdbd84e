"""Every .tex table a report writes compiles in a small document (where pdflatex is installed), and
renders to an image (where MuPDF's mutool is); numbers have one format per table."""

import shutil
import subprocess

import pytest

from .helpers import ROOT, jitter, synthetic_runs

PREAMBLE = r"""\documentclass{article}
\usepackage[margin=1.5cm]{geometry}
\usepackage{booktabs}
\usepackage{longtable}
\usepackage{graphicx}
\begin{document}
"""


@pytest.mark.slow
@pytest.mark.parametrize("study", ["smoke", "seed-replication", "ablation"])
def test_every_tex_table_compiles(study, tmp_path):
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed (Debian: texlive-latex-base, texlive-latex-recommended)")
    tables = ROOT / "results" / study / "tables"
    texs = sorted(tables.glob("*.tex"))
    assert {"summary.tex", "cells_val_f_mse.tex", "comparisons.tex"} <= {p.name for p in texs}
    body = "\n\\clearpage\n".join(p.read_text() for p in texs)
    (tmp_path / "doc.tex").write_text(PREAMBLE + body + "\n\\end{document}\n")
    for _ in range(2):  # longtable settles its column widths on the second pass
        done = subprocess.run(
            ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout[-3000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 5_000
    assert "Undefined control sequence" not in done.stdout
    assert "Overfull" not in done.stdout or study != "ablation", "a table is wider than the page"
    if shutil.which("mutool"):  # a page as a PNG, to be looked at (the paper tables' typesetting)
        subprocess.run(["mutool", "draw", "-r", "100", "-o", "page.png", "doc.pdf", "1"], cwd=tmp_path, check=True)
        assert (tmp_path / "page.png").stat().st_size > 10_000


def test_the_cell_table_marks_the_best_and_only_a_significant_best():
    from runge_bench.analysis import tables
    from runge_bench.outputs import latex

    # tanh is 10x lower than relu everywhere but at width 16, λ = 0, where the two are equal
    # up to seed jitter that favours neither.
    def error(act, width, lam, seed):
        if width == 16 and lam == 0.0:
            return 1e-3 * (1.0 + 0.01 * ((seed * 7 + (act == "tanh") * 3) % 5))
        return (1e-4 if act == "tanh" else 1e-3) * jitter(seed)

    df = synthetic_runs(error)
    cells = latex.cell_table(tables.summary_table(df), tables.comparisons_table(df), "grid_f_mse", ["relu", "tanh"])
    cells = cells.set_index(["width", "deriv_weight"])
    assert (cells.best == "tanh").sum() >= 3
    assert cells.loc[(64, 1.0), "best_significant"] and not cells.loc[(16, 0.0), "best_significant"]
    tex = latex.cell_tex(cells.reset_index(), ["relu", "tanh"], "grid_f_mse", "synthetic")
    assert r"\underline{$" in tex and r"^{\dagger}$" in tex and r"\label{tab:synthetic-grid_f_mse}" in tex
    assert "ReLU" in tex and "Tanh" in tex and "relu" not in tex.split(r"\label")[1]  # names as papers write them
    assert tex.index(r"\caption") < tex.index(r"\begin{tabular}")  # caption above


def test_one_number_format_per_table_with_intervals_in_their_estimates_power_of_ten():
    from runge_bench.outputs import latex

    assert latex.num(0.00426) == r"$4.26 \times 10^{-3}$" and latex.num(8.85e-4) == r"$8.85 \times 10^{-4}$"
    assert latex.num(9.996e-5) == r"$1.00 \times 10^{-4}$"  # rounding carries into the exponent
    assert latex.num_ci(1.7e-4, 7.23e-5, 5.9e-4) == r"$1.70$\,{\scriptsize (0.723--5.90)}\,$\times 10^{-4}$"
    assert latex.num_ci(140.0, 4.3, 4880.0) == r"$1.40$\,{\scriptsize (0.0430--48.8)}\,$\times 10^{2}$"
    assert latex.name("leaky_relu") == "Leaky ReLU" and latex.name("z*x_1") == r"\texttt{z*x\_1}"
