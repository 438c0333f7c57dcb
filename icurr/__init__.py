"""The ``icurr`` command line: thin entry points over the ``theory``, ``simulate``, ``distill``
and ``reports`` libraries."""
__version__ = "0.1.0"
