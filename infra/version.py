"""The package version: one source, the installed distribution's metadata (``pyproject.toml``)."""
from __future__ import annotations

from importlib import metadata

__all__ = ["package_version", "DISTRIBUTION"]

DISTRIBUTION = "implicit-curriculum"


def package_version() -> str:
    """The installed version of ``implicit-curriculum``; ``"0+unknown"`` when it is not installed."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "0+unknown"
