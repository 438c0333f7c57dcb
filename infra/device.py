"""The device a run trains on, from a config's ``device`` field (``auto``, ``cpu`` or ``cuda``)."""
from __future__ import annotations

import torch

from theory._checks import ParameterError

__all__ = ["resolve_device"]


def resolve_device(name: str) -> torch.device:
    """``auto``: CUDA when torch sees a device, else the CPU; ``cuda`` without one is refused."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ParameterError("device 'cuda' was asked for but torch sees no CUDA device; use device=cpu or auto")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
