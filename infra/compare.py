"""The layout of a strategy comparison: one teacher, then students of every strategy, one row each.

Engine-agnostic: the engine passes its training functions. Run directories below ``out`` are named
by the hash of their config (:func:`infra.config.config_hash`), so a rerun reuses finished runs;
``out/compare.json`` holds the compare's config, the index (teacher and student directories) and
the rows. A rerun checks every directory before it trains (another config is refused, unless
``overwrite``).
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Callable

import numpy as np

from .config import config_hash, config_to_dict
from .rundir import RunConflictError, RunDir, atomic_write_text, config_difference
from .store import summary_role, upgrade_summary_entry

__all__ = ["run_compare", "median_reached", "ratio_interval", "strategy_row", "MEASURE_PREFIXES"]

#: Per-run finals of the Transformer's measures summarized by :func:`strategy_row` when present.
MEASURE_PREFIXES = ("final_m_robust_", "final_m_close_", "final_probe_level_")


def median_reached(values):
    """Median of samples-to-accuracy values with ``None``/NaN (never reached) counted as +infinity;
    ``None`` if the median itself was never reached."""
    arr = np.array([math.inf if v is None or v != v else v for v in values], dtype=float)
    med = float(np.median(arr))
    return None if math.isinf(med) else med


def ratio_interval(base, faster, *, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """``median(base) / median(faster)`` over paired runs (the same seed pair trained both; a run that never
    reached the target is +infinity) and its percentile bootstrap interval over the pairs (resampled jointly,
    ``numpy.random.default_rng(seed)``). A resample whose two medians are both infinite has no ratio: it
    counts as 0 for the lower bound and as +infinity for the upper one (either is possible), so undefined
    resamples widen the interval instead of being dropped. The percentiles interpolate linearly between
    order statistics, reading ``a + (inf - a) t`` as ``inf`` for ``t > 0`` (numpy gives NaN there)."""
    b = np.array([math.inf if v is None or v != v else v for v in base], float)
    f = np.array([math.inf if v is None or v != v else v for v in faster], float)
    if b.shape != f.shape or b.size == 0:
        raise ValueError("base and faster must be paired, non-empty")
    ratio = lambda i: np.median(b[i]) / np.median(f[i])  # noqa: E731
    rng = np.random.default_rng(seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        boots = np.array([ratio(rng.integers(0, b.size, b.size)) for _ in range(n_boot)])
        est = float(ratio(np.arange(b.size)))
    undefined = np.isnan(boots)
    tail = 100 * (1 - level) / 2
    return (est, _percentile(np.sort(np.where(undefined, 0.0, boots)), tail),
            _percentile(np.sort(np.where(undefined, math.inf, boots)), 100 - tail))


def _percentile(s: np.ndarray, q: float) -> float:
    """The ``q``-th percentile of the sorted ``s`` (non-empty) by linear interpolation (numpy's default
    method), with ``a + (inf - a) t = inf`` for ``t > 0``."""
    i, t = divmod(q / 100 * (s.size - 1), 1)
    a, c = s[int(i)], s[min(int(i) + 1, s.size - 1)]
    return float(a if t == 0 or a == c else a + (c - a) * t)


def strategy_row(strategy: str, run_dir, *, speed_keys=("samples_to_95", "samples_to_99")) -> dict:
    """One strategy's row of a comparison, from its students' ``summary.json`` (one entry per seed).

    For every key of ``speed_keys`` (samples to a target; ``samples_to_95``: to 95% test accuracy,
    ``samples_to_95pct_of_teacher``: to 95% of the teacher's final accuracy): the median over seeds
    with a run that never got there counted as +infinity (None when the median did not get there,
    :func:`median_reached`), ``<key>_min`` (the fastest run; None if none got there) and ``<key>_max``
    (the slowest; None unless every run got there). Then ``samples_to_loss_eps`` (samples to test
    loss <= eps, the median as above; unless in ``speed_keys``), ``seeds``, the median
    ``final_accuracy``, the median ``final_loss`` (the last logged test loss), the medians of the
    runs' ``final_m_robust_<n>`` / ``final_m_close_<n>`` / ``final_probe_level_<l>``
    when present (as ``m_robust_<n>`` ...), and ``checkpoint`` (``"<step> (<rule>)"``) when the schedule
    used a first checkpoint, and ``diverged`` (how many seeds' runs diverged) when any did. Old summaries
    load with their keys renamed (:mod:`infra.store`). The loss columns appear only when every run's
    summary holds its key (:func:`infra.logs.summary_from_log`; summaries written before did not),
    so the row of an old run directory has the columns it always had.
    """
    summary = RunDir(run_dir).read_json("summary.json")
    role = summary_role(summary)
    runs = [upgrade_summary_entry(r, role) for r in summary["runs"]]
    row = {"strategy": strategy}
    for key in speed_keys:
        vals = [r.get(key) for r in runs]
        row[key] = median_reached(vals)
        reached = [v for v in vals if v is not None and v == v]
        row[f"{key}_min"] = min(reached) if reached else None
        row[f"{key}_max"] = max(reached) if len(reached) == len(vals) else None
    if runs and all("samples_to_loss_eps" in r for r in runs) and "samples_to_loss_eps" not in speed_keys:
        row["samples_to_loss_eps"] = median_reached([r["samples_to_loss_eps"] for r in runs])
    row["seeds"] = len(runs)
    row["final_accuracy"] = float(np.median([r["final_accuracy"] for r in runs]))
    losses = [r.get("final_loss") for r in runs]
    if runs and all(isinstance(v, (int, float)) for v in losses):  # NaN (a diverged run) makes the median NaN
        row["final_loss"] = float(np.median(losses))
    for key in sorted(runs[0]) if runs else ():
        if key.startswith(MEASURE_PREFIXES):
            vals = [r[key] for r in runs if r.get(key) is not None and not math.isnan(r[key])]
            row[key[len("final_"):]] = float(np.median(vals)) if vals else None
    diverged = sum(1 for r in runs if r.get("diverged_at") is not None)
    if diverged:  # a column only where some run diverged (its summary.json says at which step)
        row["diverged"] = diverged
    choice = summary.get("checkpoint_choice") or {}
    if "step" in choice:
        row["checkpoint"] = f"{choice['step']} ({choice['rule']})"
    return row


def run_compare(cfg, out, *, train_teacher: Callable, train_students: Callable, row: Callable,
                choice: str = "strategy", progress: bool = True, overwrite: bool = False,
                allow_thread_change: bool = False) -> list[dict]:
    """Train (or reuse) ``cfg.teacher`` and the students of every strategy in ``cfg.strategies``.

    ``train_teacher(teacher_cfg, dir, progress=, overwrite=, allow_thread_change=)``;
    ``train_students(student_cfg, strategies, dirs, progress=, overwrite=, allow_thread_change=)`` with
    ``student_cfg.teacher`` set to the teacher's directory; ``row(strategy, dir)`` gives the strategy's
    row of the returned table, to which the supervising teacher run's (``student.teacher_run``)
    ``teacher_final_loss`` and ``teacher_samples_to_loss_eps`` are added (when its summary has them).

    Every directory is checked before anything is trained or changed
    (:meth:`infra.rundir.RunDir.plan_for`): ``out`` itself must not be a run directory, its
    ``compare.json`` (which records the compare's config) must be of ``cfg``, and the teacher's and
    students' directories must hold runs of their configs (or nothing); otherwise
    :class:`~infra.rundir.RunConflictError` names the first differing field, unless ``overwrite``
    (which retrains everything: the teacher and students of ``cfg`` are replaced).
    """
    out = Path(out)
    claim = dict(overwrite=overwrite, allow_thread_change=allow_thread_change)
    tdir = out / config_hash(cfg.teacher)
    choices = list(getattr(cfg, {"strategy": "strategies"}.get(choice, f"{choice}s")))
    configs = [dataclasses.replace(cfg.student, teacher=tdir.name, **{choice: s}) for s in choices]
    dirs = [out / config_hash(c) for c in configs]
    student = dataclasses.replace(cfg.student, teacher=str(tdir))
    _check_compare_dir(out, cfg, overwrite)
    RunDir(tdir).plan_for(cfg.teacher, **claim)
    for s, d in zip(choices, dirs):
        RunDir(d).plan_for(dataclasses.replace(student, **{choice: s}), **claim)
    if overwrite and (out / "config.json").is_file():
        RunDir(out).clear()
    train_teacher(cfg.teacher, tdir, progress=progress, **claim)
    index = {"teacher": tdir.name, "students": {}}
    train_students(student, choices, dirs, progress=progress, **claim)
    teacher = _teacher_columns(tdir, getattr(cfg.student, "teacher_run", 0))
    rows = []
    for strategy, d in zip(choices, dirs):
        index["students"][strategy] = d.name
        rows.append({**row(strategy, d), **teacher})
    text = json.dumps({"config": config_to_dict(cfg), "index": index, "rows": rows}, indent=2) + "\n"
    atomic_write_text(out / "compare.json", text)
    return rows


def _teacher_columns(tdir: Path, run: int) -> dict:
    """The supervising teacher run's ``teacher_final_loss`` and ``teacher_samples_to_loss_eps`` (its
    ``summary.json``, as :func:`infra.logs.summary_from_log` wrote them), for every strategy's row;
    empty when the teacher's summary has neither (written before they were measured)."""
    runs = (RunDir(tdir).read_json("summary.json") or {}).get("runs") or []
    entry = runs[run] if 0 <= run < len(runs) and isinstance(runs[run], dict) else {}
    return {f"teacher_{k}": entry[k] for k in ("final_loss", "samples_to_loss_eps") if k in entry}


def _check_compare_dir(out: Path, cfg, overwrite: bool) -> None:
    """``out`` must not hold a run directory's ``config.json``, nor a ``compare.json`` of another
    compare config (files written before the config was recorded there pass), unless ``overwrite``."""
    if overwrite:
        return
    if (out / "config.json").is_file():
        diff = RunDir(out).config_difference(cfg)
        raise RunConflictError(f"--out {out} holds a run, not a comparison: {diff} (use --overwrite to replace it)")
    path = out / "compare.json"
    if path.is_file():
        try:
            stored = json.loads(path.read_text()).get("config")
        except (OSError, ValueError, AttributeError) as exc:
            raise RunConflictError(f"--out {out} holds an unreadable compare.json ({exc}) "
                                   f"(use --overwrite to replace it)") from None
        diff = config_difference(stored, cfg) if stored is not None else None
        if diff is not None:
            raise RunConflictError(f"--out {out} holds a comparison of another config: {diff} "
                                   f"(use --overwrite to replace it)")
