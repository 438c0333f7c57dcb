"""Argument validation shared by every public function of the package.

Every check raises :class:`ParameterError` (a ``ValueError``) whose message names the
parameter, the value received and the allowed range, so that the command line can turn
it into a one-line error with exit code 2 before any work starts.
"""
from __future__ import annotations

import math
import numbers
from fractions import Fraction

__all__ = ["ParameterError", "check_int", "check_real", "check_choice"]


class ParameterError(ValueError):
    """A parameter outside its allowed range. The message names the parameter."""


def check_int(name: str, value, lo: int | None = None, hi: int | None = None) -> int:
    """Return ``value`` as an int, or raise if it is not an integer in ``[lo, hi]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and float(value).is_integer() and not isinstance(value, bool):
            value = int(value)
        else:
            raise ParameterError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ParameterError(f"{name} must be an integer in {_range(lo, hi)}, got {value}")
    return value


def check_real(
    name: str,
    value,
    lo: float | None = None,
    hi: float | None = None,
    *,
    lo_open: bool = False,
    hi_open: bool = False,
):
    """Return ``value`` unchanged if it is a finite real in the given interval, else raise.

    Fractions are kept as fractions so that exact computations stay exact.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ParameterError(f"{name} must be a real number, got {value!r}")
    if not isinstance(value, Fraction) and not math.isfinite(float(value)):
        raise ParameterError(f"{name} must be finite, got {value!r}")
    bad_lo = lo is not None and (value <= lo if lo_open else value < lo)
    bad_hi = hi is not None and (value >= hi if hi_open else value > hi)
    if bad_lo or bad_hi:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        lo_s = "-inf" if lo is None else f"{lo:g}"
        hi_s = "inf" if hi is None else f"{hi:g}"
        raise ParameterError(f"{name} must lie in {left}{lo_s}, {hi_s}{right}, got {value}")
    return value


def check_choice(name: str, value, choices) -> object:
    if value not in choices:
        raise ParameterError(f"{name} must be one of {', '.join(map(str, choices))}; got {value!r}")
    return value


def _range(lo, hi) -> str:
    if lo is None and hi is None:
        return "(-inf, inf)"
    if hi is None:
        return f"[{lo}, inf)"
    if lo is None:
        return f"(-inf, {hi}]"
    return f"[{lo}, {hi}]"
