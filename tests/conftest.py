"""Shared test fixtures."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture
def one_thread():
    """One intra-op thread for tests of tiny tensors: as fast, and free of the OpenMP spin-waits that
    made them about 10x slower when the 2 cores were shared with other processes (measured)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
