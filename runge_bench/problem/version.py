"""runge-bench's own version, looked up in one place."""

from importlib.metadata import PackageNotFoundError, version


def package_version() -> str:
    """The installed distribution's version (pyproject.toml's, the one place it is written);
    "unknown" in a source tree that was never installed."""
    try:
        return version("runge-bench")
    except PackageNotFoundError:
        return "unknown"
