"""runge-bench: reproducible benchmarks of MLPs fitting the Runge function and its derivative."""

__version__ = "0.1.0"
