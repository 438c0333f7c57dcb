"""Explicit random streams: one ``torch.Generator`` per (seed, stream), never global seeding.

Every random stream of every engine is named in :class:`Stream`; a run's seed and a stream's salt
give that stream's generator through ``numpy.random.SeedSequence([seed, salt])``, so streams are
independent across salts and identical across engines, processes and devices' CPU generators.
The values are part of the results' identity: changing one changes every run that uses it.
"""
from __future__ import annotations

import base64
from enum import IntEnum

import numpy as np
import torch

__all__ = ["Stream", "generator", "generator_states", "restore_generators"]


class Stream(IntEnum):
    """Salts of the random streams of one seed (MLP engine 0-6, Transformer engine 11-15)."""

    SUPPORT = 0  # a random parity support (of ``support_seed``)
    INIT = 1  # model initialization
    DATA = 2  # training samples
    PROBE = 3  # Monte Carlo correlation probes of the MLP engine
    PROJECTION = 4  # Curriculum Extraction's fixed projections A
    EXTRACT_HELD_OUT = 5  # held-out inputs of the extraction alignment error
    EXTRACT_CORRELATION = 6  # Monte Carlo samples of the extraction projection correlations
    EVAL = 11  # Transformer held-out evaluation batch
    PROBE_TRAIN = 12  # non-terminal probe: training sentences
    PROBE_TEST = 13  # non-terminal probe: test sentences
    MEASURE = 14  # n-gram measures M_robust / M_close
    SEGMENTS = 15  # text measure windows


def generator(seed: int, salt: int, device) -> torch.Generator:
    """An explicit generator for stream ``salt`` (a :class:`Stream`) of ``seed`` (independent across salts)."""
    state = int(np.random.SeedSequence([int(seed), int(salt)]).generate_state(1, dtype=np.uint64)[0] >> 1)
    return torch.Generator(device=device).manual_seed(state)


def generator_states(gens) -> dict[str, str]:
    """The states of ``gens`` as checkpoint metadata strings (``gen_0``, ``gen_1``, ...)."""
    return {f"gen_{i}": base64.b64encode(g.get_state().numpy().tobytes()).decode() for i, g in enumerate(gens)}


def restore_generators(gens, meta: dict[str, str]) -> None:
    """Set ``gens`` to the states saved by :func:`generator_states`."""
    for i, g in enumerate(gens):
        raw = np.frombuffer(base64.b64decode(meta[f"gen_{i}"]), dtype=np.uint8).copy()
        g.set_state(torch.from_numpy(raw))
