"""The ``icurr`` command line: thin entry points over the libraries (``theory``, ``experiments`` and its
registry of kinds, ``reports``); no library imports this package (ARCHITECTURE.md)."""
from infra.version import package_version

__version__ = package_version()
