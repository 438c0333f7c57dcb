"""The native kernel's cache never loads a shared object another user could have written: a planted
library in the cache is not loaded (it is rebuilt), and a cache directory writable by others is refused."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess

import pytest

from simulate import _ckernel as K

CC = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler: the kernel is never built here")

_PLANTED = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void planted(void) {
    const char *p = getenv("ICURR_PLANTED_MARKER");
    if (p) { FILE *f = fopen(p, "w"); if (f) { fputs("loaded", f); fclose(f); } }
}
int block_f32(void) { return 0; }
int block_f64(void) { return 0; }
"""


def _plant(path, tmp_path):
    src = tmp_path / "planted.c"
    src.write_text(_PLANTED)
    subprocess.run([CC, "-fPIC", "-shared", "-o", str(path), str(src)], check=True, capture_output=True)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("ICURR_KERNEL_CACHE", str(d))
    monkeypatch.setenv("ICURR_PLANTED_MARKER", str(tmp_path / "marker"))
    monkeypatch.setattr(K, "_FLAG_SETS", (["-O0"],))  # a fast build: the cache logic is what is tested
    return d


def _first_path(d):
    return d / f"icurr_blocked_{K._key(CC, K._source(), list(K._FLAG_SETS[0]))}.so"


@pytest.mark.parametrize("digest", ["missing", "wrong", "right-but-group-writable"])
def test_a_planted_library_in_the_cache_is_never_loaded(cache, tmp_path, digest):
    cache.mkdir(mode=0o700)
    target = _first_path(cache)
    _plant(target, tmp_path)
    if digest == "wrong":
        (cache / (target.name + ".sha256")).write_text("0" * 64 + "\n")
    elif digest == "right-but-group-writable":
        (cache / (target.name + ".sha256")).write_text(K._digest(str(target)) + "\n")
        target.chmod(0o775)
    assert not K._trusted(str(target))
    lib = K._build()
    assert lib is not None and not (tmp_path / "marker").exists()  # the planted constructor never ran
    assert K._trusted(str(target))  # rebuilt over it, with its own digest
    assert K._digest(str(target)) == (cache / (target.name + ".sha256")).read_text().strip()


def test_a_cache_directory_writable_by_others_is_refused(cache, tmp_path):
    cache.mkdir()
    cache.chmod(0o777)
    target = _first_path(cache)
    _plant(target, tmp_path)
    (cache / (target.name + ".sha256")).write_text(K._digest(str(target)) + "\n")
    target.chmod(0o700)
    assert K._cache_dir() is None
    before = sorted(p.name for p in cache.iterdir())
    assert K._build() is not None  # built privately elsewhere
    assert not (tmp_path / "marker").exists()
    assert sorted(p.name for p in cache.iterdir()) == before  # nothing written into the shared directory


def test_a_link_is_not_a_cache_directory(cache, tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    cache.symlink_to(real)
    assert K._cache_dir() is None


def test_the_cache_is_created_private_and_reused(cache):
    assert K._cache_dir() == str(cache)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert K._build() is not None
    target = _first_path(cache)
    mtime = target.stat().st_mtime_ns
    assert K._build() is not None and target.stat().st_mtime_ns == mtime  # trusted: loaded, not rebuilt
