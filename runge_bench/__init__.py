"""runge-bench: reproducible benchmarks of MLPs fitting the Runge function and its derivative.

The package is layered, each layer importing only those before it (tests/test_layers.py):
problem -> engine -> runs -> analysis -> outputs -> cli, api. README, Development, has the map.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("runge-bench")  # pyproject.toml's, the one place it is written
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "unknown"
