"""Native CPU kernel for the serial part of the blocked rank-one SGD (see ``simulate.blocked``).

About 150 lines of C, compiled once with the system C compiler into a shared library cached
under ``$ICURR_KERNEL_CACHE`` (default ``~/.cache/implicit_curriculum``) and called through
``ctypes`` (which releases the GIL). No Python headers, ninja or torch headers are needed, so a
build takes about a second. :func:`load` returns ``None`` when no compiler is available or the
build fails (``ICURR_NO_CKERNEL=1`` disables it); callers then fall back to the pure-torch block.

The cache never loads code that another user could have written: the directory must be a real
directory owned by this user and writable by nobody else (it is created with mode 0700); a cached
library is loaded only if it is a regular file owned by this user, writable by nobody else, whose
SHA-256 equals the digest recorded beside it (``<name>.so.sha256``) when this package built it.
On any doubt the library is rebuilt; without a private cache it is built in a fresh private
temporary directory (``mkdtemp``) and not reused.
Threads come from OpenMP: the library links ``libgomp.so.1``, which resolves to the copy torch
has already loaded, so the kernel and torch's GEMMs share one thread pool instead of two pools
spinning against each other (measured: 2x slower kernel with a separate pthread pool).

The kernel runs, for each run ``r`` (OpenMP threads split the runs, or the width of a single
wide run), the recurrence of one block of
``T`` batch-1 SGD steps of ``f(x) = a relu(W x + b)``: with ``P[t] = W_0 x_t`` and
``G[s, t] = x_s . x_t`` precomputed by GEMMs, step ``t`` computes

    z_t = Gam_t (P[t] + sum_{s<t} G[s, t] U[s]) + b_t,   f_t = a_t relu(z_t),
    g_t = dloss/df_t,  u_t = -eta_t (a_t^T g_t) * 1[z_t > 0],
    U[t] = u_t / Gam_{t+1},  b_{t+1} = b_t + u_t,
    a_{t+1} = (1 - 2 eta^a_t lambda_a) a_t - eta^a_t g_t relu(z_t)^T,   eta^a_t = eta_t * lr_a_mult,

where ``Gam_t = prod_{s<t} (1 - 2 eta_s lambda_W)`` folds the weight decay of Algorithm 1 into
the rank-one terms; at the end ``U`` is multiplied by ``Gam_T`` so that
``W_T = Gam_T W_0 + U^T X``. Loss 0 is the hinge ``max(0, 1 - t f)`` (``C = 1``, target value
``t``); ``lr_a_mult`` is the per-layer rate multiplier of the output layer (1: plain SGD);
loss 1 is soft cross-entropy with target distribution ``q`` (gradient ``softmax(f) - q``); loss 2 is
Curriculum Extraction's hidden-layer alignment ``1/2 ||relu(z_t) - t_t||^2`` with per-step targets
``t_t`` of width ``m`` (``u_t = -eta_t (relu(z_t) - t_t) 1[z_t > 0]``, no output layer, ``a`` untouched).
The sum over ``s < t`` is split at sub-blocks of ``SUB = 8`` steps: the earlier sub-blocks'
share of the next 8 pre-activations is summed in one cache-friendly pass (each row of ``U`` read
once per sub-block, not once per step), the rest step by step. Measured per step at width 1000,
``T = 64``: 3.8 us without sub-blocks, 2.6 us with; at width 50000: 450 -> 222 us.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import stat
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import torch

__all__ = ["load", "available", "MAX_CLASSES"]

MAX_CLASSES = 64

_TEMPLATE = (Path(__file__).parent / "_ckernel_template.c").read_text()

_HEADER = (Path(__file__).parent / "_ckernel_header.c").read_text()


def _source() -> str:
    parts = [_HEADER, f"#define MAXC {MAX_CLASSES}\n"]
    for real, sfx, exp in (("float", "f32", "expf"), ("double", "f64", "exp")):
        parts.append(_TEMPLATE.replace("REAL", real).replace("SFX", sfx).replace("EXP", exp))
    return "".join(parts)


_BASE_FLAGS = ["-fPIC", "-shared", "-std=gnu99"]
#: tried in order: OpenMP threads (sharing torch's libgomp, which is already loaded), then
#: single-threaded builds for compilers without OpenMP or -march=native.
_FLAG_SETS = (["-O3", "-march=native", "-fopenmp"], ["-O3", "-march=native"], ["-O2"])
_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_tried = False


def _cpu_id() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            return "".join(line for line in fh if line.startswith(("model name", "flags")))[:4000]
    except OSError:
        return platform.processor()


def _private_dir(path: str) -> bool:
    """Whether ``path`` is a real directory (not a link) owned by this user that nobody else can write."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o022


def _cache_dir() -> str | None:
    """The private kernel cache ``$ICURR_KERNEL_CACHE`` (default ``~/.cache/implicit_curriculum``), created
    with mode 0700; None when it cannot be had or is not private (another owner, a link, writable by
    group or others): the kernel is then built in a fresh private temporary directory, never cached in
    a shared one."""
    base = os.environ.get("ICURR_KERNEL_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "implicit_curriculum")
    try:
        os.makedirs(base, mode=0o700, exist_ok=True)
    except OSError:
        return None
    if not _private_dir(base):
        return None
    try:
        if stat.S_IMODE(os.lstat(base).st_mode) != 0o700:
            os.chmod(base, 0o700)  # ours and not writable by others: keep it private from now on
    except OSError:
        return None
    return base


def _digest(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def _trusted(so: str) -> bool:
    """Whether the cached library ``so`` may be loaded: a regular file (not a link) owned by this user,
    writable by nobody else, whose SHA-256 equals the digest recorded beside it when it was built."""
    try:
        st = os.lstat(so)
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid() or st.st_mode & 0o022:
            return False
        with open(so + ".sha256") as fh:
            recorded = fh.read().strip()
        return recorded == _digest(so)
    except OSError:
        return False


def _key(cc: str, src: str, flags: list[str]) -> str:
    return hashlib.sha256("\0".join([src, " ".join(flags), cc, _cpu_id(), platform.machine()]).encode()).hexdigest()[:16]


def _compile(cc: str, src: str, flags: list[str], cache: str) -> str | None:
    """The library built from ``src`` with ``flags`` in the private directory ``cache``: the cached
    copy when :func:`_trusted`, else a fresh build (with its digest recorded)."""
    out = os.path.join(cache, f"icurr_blocked_{_key(cc, src, flags)}.so")
    if _trusted(out):
        return out
    fd, tmp_so = tempfile.mkstemp(suffix=".so", dir=cache)
    os.close(fd)
    tmp_c, tmp_sum = tmp_so[:-3] + ".c", tmp_so + ".sha256"
    try:
        with open(tmp_c, "w") as fh:
            fh.write(src)
        proc = subprocess.run([cc, *flags, *_BASE_FLAGS, "-o", tmp_so, tmp_c, "-lm"], capture_output=True, text=True)
        if proc.returncode != 0:
            return None
        os.chmod(tmp_so, 0o700)
        with open(tmp_sum, "w") as fh:
            fh.write(_digest(tmp_so) + "\n")
        os.replace(tmp_sum, out + ".sha256")  # digest first: a reader never trusts a library without its own
        os.replace(tmp_so, out)  # atomic: concurrent builders agree on the result
        return out if _trusted(out) else None
    except OSError:
        return None
    finally:
        for p in (tmp_c, tmp_so, tmp_sum):
            if os.path.exists(p):
                os.remove(p)


def _build() -> ctypes.CDLL | None:
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc") or shutil.which("clang")
    if cc is None:
        return None
    src = _source()
    cache = _cache_dir() or tempfile.mkdtemp(prefix="icurr_kernel_")  # mkdtemp: private (0700), unique
    for flags in _FLAG_SETS:
        out = _compile(cc, src, flags, cache)
        if out is None:
            continue
        try:
            lib = ctypes.CDLL(out)
        except OSError:
            continue
        L, I, D, V = ctypes.c_long, ctypes.c_int, ctypes.c_double, ctypes.c_void_p
        for name in ("block_f32", "block_f64"):
            fn = getattr(lib, name)
            fn.restype = I
            fn.argtypes = [I] * 8 + [V, L, L, V, L, V, V, V, L, L, V, L, V, D, D, V, V, I, I, D]
        return lib
    return None


def load() -> ctypes.CDLL | None:
    """The compiled library (built on first use), or ``None`` if it cannot be built here."""
    global _lib, _tried
    with _lock:
        if not _tried:
            _tried = True
            if os.environ.get("ICURR_NO_CKERNEL"):
                _lib = None
            else:
                _lib = _build()
        return _lib


def available() -> bool:
    """Whether the native CPU kernel can be used in this process."""
    return load() is not None


def call(
    dtype: torch.dtype, R: int, T: int, m: int, C: int, loss: int, train_W: bool, train_b: bool, train_a: bool,
    P: torch.Tensor, p_r: int, p_t: int, G: torch.Tensor, g_r: int, b: torch.Tensor, a: torch.Tensor,
    U: torch.Tensor, u_r: int, u_t: int, tgt: torch.Tensor, tg_r: int, lr: torch.Tensor, wd_W: float,
    wd_a: float, F: torch.Tensor, gam: torch.Tensor, nthreads: int, split_width: bool = False,
    lr_a_mult: float = 1.0,
) -> None:
    """Run one block (all tensors CPU, of ``dtype``; ``b``, ``a``, ``lr``, ``F`` contiguous; strides in
    elements). ``nthreads`` OpenMP threads split the runs, or with ``split_width`` the width of
    every run (one barrier per step to sum the partial outputs). ``lr_a_mult``: the output layer
    ``a`` steps with ``lr * lr_a_mult`` (its decay factor too)."""
    lib = load()
    fn = lib.block_f32 if dtype == torch.float32 else lib.block_f64
    rc = fn(R, T, m, C, loss, int(train_W), int(train_b), int(train_a),
            P.data_ptr(), p_r, p_t, G.data_ptr(), g_r, b.data_ptr(), a.data_ptr(),
            U.data_ptr(), u_r, u_t, tgt.data_ptr(), tg_r, lr.data_ptr(), wd_W, wd_a,
            F.data_ptr(), gam.data_ptr(), nthreads, int(split_width), float(lr_a_mult))
    if rc != 0:
        raise RuntimeError(f"native blocked-SGD kernel failed with code {rc}")
