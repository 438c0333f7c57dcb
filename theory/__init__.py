"""Exact mathematics of the paper: Fourier analysis on {+-1}^n, the population gradient of a
ReLU neuron at symmetric initialization (Claim B.3), the Fourier gap, and the sample-complexity
bounds of Appendix B. Imports no torch. Conventions: see :mod:`theory.fourier`.
"""
from ._checks import ParameterError
from .algorithm1 import paper_hyperparameters
from .bounds import Bound, all_bounds
from .fourier import (
    cube,
    fourier_coefficients,
    log_abs_zeta,
    majority_coefficient,
    majority_weight,
    threshold_coefficient,
    threshold_log_coefficient,
    threshold_weight,
    walsh_hadamard,
    weight_by_degree,
    zeta,
)
from .gap import bound_validity, fourier_gap, paper_gap_bound
from .gradient import gradient_magnitudes, paper_gradient_magnitudes, population_gradient, stage_one_update

__all__ = [
    "ParameterError", "paper_hyperparameters", "Bound", "all_bounds", "cube", "fourier_coefficients",
    "log_abs_zeta", "majority_coefficient", "majority_weight", "threshold_coefficient",
    "threshold_log_coefficient", "threshold_weight", "walsh_hadamard", "weight_by_degree", "zeta",
    "bound_validity", "fourier_gap", "paper_gap_bound", "gradient_magnitudes", "paper_gradient_magnitudes",
    "population_gradient", "stage_one_update",
]
