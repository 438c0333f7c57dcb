"""Exact mathematics of the paper: Fourier analysis on {+-1}^n, the population gradient of a
ReLU neuron at symmetric initialization (Claim B.3), the Fourier gap, and the sample-complexity
bounds of Appendix B. Imports no torch. Conventions: see :mod:`theory.fourier`.

The public names below are imported from their submodules on first use (PEP 562), so that
``import theory._checks`` (the argument checks every layer uses) does not load sympy or scipy.
"""
from __future__ import annotations

import importlib

_SOURCES = {
    "_checks": ("ParameterError",),
    "algorithm1": ("paper_hyperparameters",),
    "bounds": ("Bound", "all_bounds"),
    "fourier": ("cube", "fourier_coefficients", "log_abs_zeta", "majority_coefficient", "majority_weight",
                "threshold_coefficient", "threshold_log_coefficient", "threshold_weight", "walsh_hadamard",
                "weight_by_degree", "zeta"),
    "gap": ("bound_validity", "fourier_gap", "paper_gap_bound"),
    "gradient": ("gradient_magnitudes", "paper_gradient_magnitudes", "population_gradient", "stage_one_update"),
}
_WHERE = {name: module for module, names in _SOURCES.items() for name in names}
__all__ = list(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
