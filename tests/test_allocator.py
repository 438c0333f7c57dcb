"""infra.allocator: with the thresholds set, a loop that allocates and frees a 64 MiB tensor reuses the
heap instead of faulting in fresh pages every time (counted in minor page faults, not timed)."""
from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="mallopt thresholds are glibc's")

_LOOP = """
import resource, sys, torch
from infra.allocator import tune_allocator
tuned = tune_allocator() if sys.argv[1] == "tune" else False
def passes(n):
    for _ in range(n):
        x = torch.empty(16 << 20)  # 64 MiB
        x.fill_(1.0)
        del x
passes(15)  # warm-up: glibc settles its heap (tuned: within the first few passes)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
passes(10)
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str, **env) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", _LOOP, mode], capture_output=True, text=True, check=True,
                         env={**os.environ, **env})
    tuned, faults = out.stdout.split()
    return tuned, int(faults)


@pytest.mark.slow
def test_tuned_allocator_reuses_freed_blocks_instead_of_faulting_them_in_again():
    pages = (64 << 20) // 4096  # 16384 pages per pass
    tuned, few = _faults("tune")
    plain, many = _faults("plain")
    assert (tuned, plain) == ("True", "False")
    assert many > 5 * pages  # untuned: every pass maps fresh pages (about 10 * 16384 faults)
    assert few < pages // 4  # tuned: the freed block is reused, no page is faulted in again


def test_the_users_own_settings_win():
    assert _faults("tune", MALLOC_MMAP_THRESHOLD_="131072")[0] == "False"
    assert _faults("tune", ICURR_NO_MALLOPT="1")[0] == "False"
