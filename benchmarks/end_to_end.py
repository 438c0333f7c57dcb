"""End to end against the kernel: a whole ``icurr parity compare`` (or ``icurr demo``) command, its wall,
user and system time, page faults and peak memory, beside the rate of the training kernel alone on the
same student program.

The command runs in a child process, ``--reps`` times per variant, the variants alternating so that
their ratios are measured in one run: as shipped; without the students' curriculum probes
(``student.probe_every=0``); "training only" (the students without probes and with one evaluation, at
the end: the teacher as shipped, whose evaluations and probes choose two-shot's checkpoint, then the
students' training program with its teacher outputs and file writes); and with ``ICURR_NO_MALLOPT=1`` (glibc's default allocator
thresholds, :mod:`infra.allocator`). The kernel rate is :func:`simulate.blocked.train_online` on the students' program alone
(``R = strategies x seeds`` width-64 runs on the default (24, 5)-parity, cross-entropy, one chunk of
steps, no evaluations): student samples per second. The command's rate counts every student sample
of the command (``strategies x seeds x steps``) over its whole wall time, the teacher, evaluations,
probes and file writes included.

    python benchmarks/end_to_end.py                    # the default compare, twice each (~3-4 minutes)
    python benchmarks/end_to_end.py --demo --reps 1    # icurr demo instead
    python benchmarks/end_to_end.py --wide-teacher     # also the peak memory of a width-50000 teacher
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import torch


def run_command(args: list[str], env: dict) -> dict:
    """Wall, user, system seconds, minor faults and peak RSS (GB) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "icurr", *args], check=True, env=env, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"wall": wall, "user": after.ru_utime - before.ru_utime, "sys": after.ru_stime - before.ru_stime,
            "minflt": after.ru_minflt - before.ru_minflt, "maxrss_gb": after.ru_maxrss / 2**20}


def kernel_rate(runs: int, steps: int) -> float:
    """Student samples/s of the blocked batch-1 path alone: ``runs`` width-64 students, (24, 5)-parity."""
    from infra.allocator import tune_allocator
    from simulate.blocked import train_online
    from simulate.data import first_support, parity_labels, sample_cube
    from simulate.model import init_default

    tune_allocator()
    g = torch.Generator().manual_seed(0)
    params = init_default(runs, 64, 24, 2, generator=g)
    support = first_support(5)

    def sampler(n):
        x = torch.stack([sample_cube(n, 24, generator=g) for _ in range(runs)])
        return x, parity_labels(x, support)[1]

    train_online(params, sampler, 2000, 0.05, loss="ce", chunk=4096)  # warm-up (kernel build, thread tuner)
    start = time.perf_counter()
    train_online(params, sampler, steps, 0.05, loss="ce", chunk=4096)
    return runs * steps / (time.perf_counter() - start)


VARIANTS = {  # name -> (command words after the output options, extra environment)
    "shipped": ([], {}),
    "no probes": (["student.probe_every=0"], {}),
    "training only": (["student.probe_every=0", "student.eval_every={S}"], {}),
    "glibc defaults": ([], {"ICURR_NO_MALLOPT": "1"}),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", action="store_true", help="time icurr demo instead of icurr parity compare")
    ap.add_argument("--reps", type=int, default=2, help="repetitions of each variant (alternating)")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS),
                    help="which variants of the command to time (default: all; 'no probes' and 'training only' "
                         "apply to the compare)")
    ap.add_argument("--wide-teacher", action="store_true",
                    help="also time a width-50000 teacher (5000 steps, an evaluation every 1000) and its peak memory")
    args = ap.parse_args()
    from simulate.config import CompareConfig

    cfg = CompareConfig()
    runs = len(cfg.strategies) * len(cfg.student.seeds)
    samples = runs * cfg.student.steps  # batch 1
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
          f"command: icurr {'demo' if args.demo else 'parity compare'} (defaults: {len(cfg.strategies)} strategies x "
          f"{len(cfg.student.seeds)} seeds x {cfg.student.steps} steps = {samples / 1e6:.1f}M student samples)")
    variants = [v for v in args.variants if not (args.demo and v in ("no probes", "training only"))]
    results: dict[str, list[dict]] = {v: [] for v in variants}
    for _ in range(args.reps):
        for name in variants:
            words, extra = VARIANTS[name]
            words = [w.format(S=cfg.student.steps) for w in words]
            out = tempfile.mkdtemp(prefix="icurr_e2e_")
            cmd = ["demo", "--out", out, "--no-progress"] if args.demo else \
                ["parity", "compare", "--out", out, "--no-progress", *words]
            try:
                results[name].append(run_command(cmd, {**os.environ, **extra}))
            finally:
                shutil.rmtree(out, ignore_errors=True)
    print(f"{'variant':>15} {'wall s':>8} {'user s':>8} {'sys s':>8} {'sys/user':>9} {'minflt':>10} {'peak GB':>8} "
          f"{'student samples/s':>18}")
    best = {}
    for name, rows in results.items():
        r = min(rows, key=lambda row: row["wall"])
        best[name] = r
        print(f"{name:>15} {r['wall']:8.1f} {r['user']:8.1f} {r['sys']:8.1f} {r['sys'] / r['user']:9.2f} "
              f"{r['minflt']:10d} {r['maxrss_gb']:8.2f} {samples / r['wall']:18,.0f}")
    k = kernel_rate(runs - len(cfg.student.seeds), 20000)  # the checkpoint strategies' program (extraction apart)
    print(f"kernel alone (train_online, R = {runs - len(cfg.student.seeds)}, width 64, cross-entropy, no teacher): "
          f"{k:,.0f} student samples/s")
    line = f"whole command / kernel: {samples / best['shipped']['wall'] / k:.2f}" if "shipped" in best else ""
    if "shipped" in best and "training only" in best:
        t, w = best["training only"]["wall"], best["shipped"]["wall"]
        line += (f"; training only / kernel: {samples / t / k:.2f}; evaluations and probes: {w - t:.1f} s of "
                 f"{w:.1f} s ({(w - t) / w:.0%}), probes alone: {w - best['no probes']['wall']:.1f} s"
                 if "no probes" in best else "")
    if "shipped" in best and "glibc defaults" in best:
        line += f"; shipped vs glibc defaults: {best['glibc defaults']['wall'] / best['shipped']['wall']:.2f}x faster"
    print(line)
    if args.wide_teacher:
        words = ["width=50000", "steps=5000", "eval_every=1000", "checkpoint_every=5000", "probe_every=0",
                 "lr=0.005", "lr_a_mult=0.002"]
        out = tempfile.mkdtemp(prefix="icurr_e2e_")
        try:
            r = run_command(["parity", "teacher", "--out", out, "--no-progress", *words], dict(os.environ))
        finally:
            shutil.rmtree(out, ignore_errors=True)
        print(f"width-50000 teacher ({' '.join(words)}): {r['wall']:.1f} s wall, {r['user']:.1f} s user, "
              f"{r['sys']:.1f} s sys, {r['minflt']} minor faults, peak {r['maxrss_gb']:.2f} GB "
              f"(parameters 2 x 50000 x 24 floats: {2 * 50000 * 24 * 4 / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
