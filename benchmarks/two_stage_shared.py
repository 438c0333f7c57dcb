"""Algorithm 1's students of several supervisions: one batched program against one program each
(:mod:`simulate.two_stage_shared`), measured alternately in one run on the same teacher.

    python benchmarks/two_stage_shared.py            # the default compare's students (~1-2 minutes)
    python benchmarks/two_stage_shared.py --reps 3 --T2 40000
"""
from __future__ import annotations

import argparse
import dataclasses
import shutil
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=2, help="repetitions of each variant (alternating; best is shown)")
    ap.add_argument("--T2", type=int, default=0, help="the students' stage-2 steps (0: the default config's)")
    args = ap.parse_args()
    from simulate.two_stage_config import SUPERVISIONS, ParityTwoStageCompareConfig
    from simulate.two_stage_runs import train_student, train_students, train_teacher

    cfg = ParityTwoStageCompareConfig()
    root = Path(tempfile.mkdtemp(prefix="icurr_two_stage_"))
    try:
        train_teacher(dataclasses.replace(cfg.teacher, device="cpu"), root / "teacher", progress=False)
        student = dataclasses.replace(cfg.student, teacher=str(root / "teacher"), device="cpu",
                                      **({"T2": args.T2} if args.T2 else {}))
        cfgs = [dataclasses.replace(student, supervision=s) for s in SUPERVISIONS]
        times = {"one program": [], "a program each": []}
        for rep in range(args.reps):
            start = time.perf_counter()
            train_students(None, None, [root / f"shared{rep}_{s}" for s in SUPERVISIONS], progress=False, configs=cfgs)
            times["one program"].append(time.perf_counter() - start)
            start = time.perf_counter()
            for c in cfgs:
                train_student(c, root / f"alone{rep}_{c.supervision}", progress=False)
            times["a program each"].append(time.perf_counter() - start)
        same = all((root / f"shared0_{s}" / "metrics.parquet").read_bytes() ==
                   (root / f"alone0_{s}" / "metrics.parquet").read_bytes() for s in SUPERVISIONS)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; teacher d={cfg.teacher.d} k={cfg.teacher.k} "
              f"width={cfg.teacher.width}; students: {len(SUPERVISIONS)} supervisions x {len(student.seeds)} seeds, "
              f"width {student.width or 2**cfg.teacher.k * cfg.teacher.k}, T2 = {student.T2}")
        for name, ts in times.items():
            print(f"{name:>15}: best {min(ts):.2f} s of {len(ts)}")
        print(f"one program / a program each: {min(times['one program']) / min(times['a program each']):.2f}; "
              f"metrics files byte-identical: {same}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
