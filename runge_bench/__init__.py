"""runge-bench: reproducible benchmarks of MLPs fitting the Runge function and its derivative.

The package is layered, each layer importing only those before it (tests/test_layers.py):
problem -> engine -> runs -> analysis -> outputs -> cli, api. README, Development, has the map.
"""

from .problem.version import package_version

__version__ = package_version()
