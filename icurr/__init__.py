"""The ``icurr`` command line: thin entry points over the ``theory``, ``simulate``, ``distill``
and ``reports`` libraries."""
from infra.version import package_version

__version__ = package_version()
