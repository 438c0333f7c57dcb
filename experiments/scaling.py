"""Measured against predicted scaling: Algorithm 1's stage-1 batch ``B1*`` and samples to loss ``eps``
swept over ``d``, ``k``, supervision and widths, plus an online-SGD d-sweep (``icurr scaling run``).

A spec is a YAML data file (``experiments/sweeps/scaling/<tier>.yaml``)::

    seeds: [0, 1, 2, 3, 4]       # seed pairs: student seed i is supervised by teacher run i
    target_rate: 0.8             # success rate at which stage 1 "works" at a batch size
    factor: 1.4142135623730951   # ratio of the geometric grid of B1
    teacher: {T2: 20000, ...}    # ParityTwoStageTeacherConfig fields for every teacher
    student: {T2: 20000, ...}    # ParityTwoStageStudentConfig fields for every student
    settings:                    # each: the Cartesian product of its lists
      - {k: 2, d: [8, 16, 32], teacher_width: [64], student_width: [8], supervisions: [labels, progressive],
         B1: [16, 65536], factor: 2, teacher: {...}, student: {...}}   # B1: the grid's range; overrides
    online: scaling_online.yaml  # optional: a sweep file (relative to the spec) run into OUT/online

Layout of ``OUT`` (what :mod:`reports.scaling` reads): ``scaling.json`` (the spec, start, end, wall
time), ``teachers/<hash>/`` (one two-stage teacher per (k, d, teacher width), all seeds batched),
``runs/<hash>/`` (one student run directory per evaluated batch size), ``searches/<key>/search.json``
(one per searched point: its setting, grid, evaluations, ``B1_star``), ``online/`` (the sweep).
Every config is built (and so checked) before anything is trained; a rerun reuses finished runs and
searches, and a killed one resumes (run directories resume from their stage-1 checkpoints).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from infra.config import apply_overrides, config_hash
from infra.rundir import RunDir, atomic_write_text
from infra.yamlfile import load_yaml
from theory._checks import ParameterError, check_choice, check_int, check_real

from .batch_search import geometric_grid, search_threshold

__all__ = ["SPEC_DIR", "TIERS", "load_spec", "plan", "run_scaling"]

log = logging.getLogger(__name__)
SPEC_DIR = Path(__file__).resolve().parent / "sweeps" / "scaling"
TIERS = ("smoke", "cpu", "paper")
_SETTING_KEYS = {"k", "d", "teacher_width", "student_width", "supervisions", "B1", "factor", "teacher", "student"}
_TOP_KEYS = {"seeds", "target_rate", "factor", "teacher", "student", "settings", "online"}


def load_spec(spec: str) -> tuple[dict, Path]:
    """A spec by tier name (``smoke``, ``cpu``, ``paper``) or path; ``(data, path)``."""
    path = SPEC_DIR / f"{spec}.yaml" if spec in TIERS else Path(spec)
    if not path.is_file():
        raise ParameterError(f"spec must be one of {', '.join(TIERS)} or a YAML file, got {spec!r}")
    data = load_yaml(path.read_text(), f"scaling spec {path}") or {}
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise ParameterError(f"scaling spec {path}: unknown keys {sorted(unknown)} (allowed: {sorted(_TOP_KEYS)})")
    return data, path


@dataclasses.dataclass(frozen=True)
class Point:
    """One searched setting: the student config (its ``B1`` set per evaluation) and its grid."""

    setting: dict
    student: Any  # ParityTwoStageStudentConfig (teacher = the teacher's directory, or "" for labels)
    grid: tuple[int, ...]
    key: str


def _words(section: dict | None) -> dict[str, str]:
    from infra.config import value_text

    return {k: value_text(k, v) for k, v in (section or {}).items()}


def plan(spec: dict, out: Path) -> tuple[list, list[Point]]:
    """Every teacher config (with its directory) and every search point of ``spec``, all checked."""
    from simulate.two_stage_config import ParityTwoStageStudentConfig, ParityTwoStageTeacherConfig

    seeds = tuple(check_int("seeds", s, 0) for s in spec.get("seeds", (0, 1, 2, 3, 4)))
    target = check_real("target_rate", spec.get("target_rate", 0.8), 0, 1, lo_open=True)
    factor = check_real("factor", spec.get("factor", 2**0.5), 1, lo_open=True)
    teachers: dict[str, tuple] = {}
    points: list[Point] = []
    for i, s in enumerate(spec.get("settings") or []):
        where = f"settings[{i}]"
        unknown = set(s) - _SETTING_KEYS
        if unknown:
            raise ParameterError(f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(_SETTING_KEYS)})")
        k = check_int(f"{where}.k", s.get("k"), 1)
        lo, hi = (s.get("B1") or [None, None])[:2]
        grid = tuple(geometric_grid(lo, hi, check_real(f"{where}.factor", s.get("factor", factor), 1, lo_open=True)))
        tw = {**(spec.get("teacher") or {}), **(s.get("teacher") or {})}
        sw = {**(spec.get("student") or {}), **(s.get("student") or {})}
        for d in s.get("d") or []:
            for sup in s.get("supervisions") or []:
                check_choice(f"{where}.supervisions", sup, ("labels", "oneshot", "progressive"))
                for m in (s.get("teacher_width") or [None]) if sup != "labels" else [None]:
                    tdir = ""
                    if sup != "labels":
                        tcfg = apply_overrides(ParityTwoStageTeacherConfig(d=d, k=k, width=m, seeds=seeds), _words(tw))
                        tdir = str(out / "teachers" / config_hash(tcfg))
                        teachers[tdir] = tcfg
                    for ms in s.get("student_width") or [0]:
                        base = ParityTwoStageStudentConfig(
                            teacher=tdir, supervision=sup, d=0 if tdir else d, k=0 if tdir else k, width=ms,
                            seeds=seeds, B1=grid[-1])
                        student = apply_overrides(base, _words(sw))
                        setting = {"d": d, "k": k, "supervision": sup, "student_width": ms or 2**k * k,
                                   "teacher_width": m, "eps": student.eps, "recover_frac": student.recover_frac,
                                   "T2": student.T2, "success": student.success}
                        key = hashlib.sha256(json.dumps([setting, grid, target, seeds, _words(sw), _words(tw)],
                                                        sort_keys=True).encode()).hexdigest()[:12]
                        points.append(Point(setting, student, grid, key))
    points = list({p.key: p for p in points}.values())  # the same point listed twice: searched once
    return [(Path(d), c) for d, c in teachers.items()], points


def _evaluation(out: Path, student, b1: int) -> dict:
    from simulate.two_stage_runs import train_student

    cfg = dataclasses.replace(student, B1=b1)
    rd = train_student(cfg, out / "runs" / config_hash(cfg), progress=False)
    s = rd.read_json("summary.json")
    runs = s["runs"]
    return {"B1": b1, "success_rate": s["success_rate"], "successes": sum(r["success"] for r in runs),
            "runs": len(runs), "run_dir": f"runs/{rd.path.name}", "samples_to_eps": [r["samples_to_eps"] for r in runs],
            "recovered_frac": [r["recovered_frac"] for r in runs], "final_loss": [r["final_loss"] for r in runs]}


def _search(out: Path, point: Point, target: float, seeds) -> dict:
    path = out / "searches" / point.key / "search.json"
    if path.is_file():
        return json.loads(path.read_text())
    details: dict[int, dict] = {}

    def rate(b1: int) -> float:
        details[b1] = _evaluation(out, point.student, b1)
        return details[b1]["success_rate"]

    res = search_threshold(rate, list(point.grid), target)
    record = {"setting": point.setting, "target_rate": target, "seeds": list(seeds), "grid": list(point.grid),
              "factor": point.grid[1] / point.grid[0] if len(point.grid) > 1 else None,
              "evaluations": [details[b] for b, _ in res.evaluations], "B1_star": res.b_star,
              "censored": res.censored, "bracket": list(res.bracket), "n_evaluations": res.n_evaluations}
    atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return record


def run_scaling(spec: str, out, *, progress: bool = True) -> dict:
    """Run (or resume) the scaling experiment ``spec`` (a tier or a YAML path) into ``out``."""
    from tqdm.auto import tqdm

    from simulate.two_stage_runs import train_teacher

    data, path = load_spec(spec)
    out = Path(out)
    teachers, points = plan(data, out)
    online = (path.parent / data["online"]) if data.get("online") else None
    sweep = None
    if online is not None:
        from .sweep import expand, load_sweep

        sweep = load_sweep(online)
        expand(sweep)  # every online point checked before anything trains
    meta_path = out / "scaling.json"
    old = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    same = {k: v for k, v in data.items() if k != "online"}  # the online sweep's file may be added later
    if old and {k: v for k, v in (old.get("spec") or {}).items() if k != "online"} != same:
        raise ParameterError(f"--out {out} holds a scaling run of another spec ({old.get('source')}); use another --out")
    t0 = time.time()
    meta = {"tier": spec if spec in TIERS else path.stem, "source": str(path), "spec": data, "started": old.get("started") or time.strftime("%Y-%m-%dT%H:%M:%S"),
            "finished": None, "wall_seconds": old.get("wall_seconds")}  # wall_seconds: summed over the calls
    atomic_write_text(meta_path, json.dumps(meta, indent=2) + "\n")
    for tdir, tcfg in tqdm(teachers, desc="teachers", disable=None if progress else True, leave=False):
        train_teacher(tcfg, tdir, progress=False)
    seeds = tuple(data.get("seeds", (0, 1, 2, 3, 4)))
    results = []
    for point in tqdm(points, desc="B1* searches", disable=None if progress else True, leave=False):
        results.append(_search(out, point, float(data.get("target_rate", 0.8)), seeds))
        log.info("B1* %s: %s", point.setting, results[-1]["B1_star"])
    if sweep is not None:
        from .sweep import run_sweep

        run_sweep(sweep, out / "online", progress=progress)
    wall = time.time() - t0
    meta.update(finished=time.strftime("%Y-%m-%dT%H:%M:%S"), wall_seconds=(old.get("wall_seconds") or 0) + wall)
    atomic_write_text(meta_path, json.dumps(meta, indent=2) + "\n")
    return {"teachers": len(teachers), "searches": len(results), "wall_seconds": wall, "results": results}
