"""Measures and probes of a saved PCFG run, checkpoint by checkpoint (``icurr pcfg probe``)."""
from __future__ import annotations

import contextlib
import dataclasses

import numpy as np

from infra.checkpoints import read_header
from infra.config import apply_overrides, read_json_file, stored_config
from infra.rundir import RunDir
from infra.device import resolve_device
from infra.runloop import Progress
from theory._checks import ParameterError

from .checkpoints import TransformerCheckpointDir
from .config import PcfgStudentConfig, PcfgTeacherConfig
from .engine import fit_settings, model_shape
from .evaluate import Evaluator, eval_settings
from .runs import build_task, load_teacher_config

__all__ = ["probe_run"]

_PROBE_KEYS = ("eval_size", "measure_ns", "measure_positions", "probe_train", "probe_test", "probe_steps", "device")


def _run_config(rd: RunDir):
    """``(config, teacher config, teacher directory)`` of a PCFG run (a teacher is its own teacher)."""
    data = read_json_file(rd.path / "config.json", "config")
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind == PcfgTeacherConfig.__name__:
        cfg = stored_config(PcfgTeacherConfig, rd.path / "config.json")
        return cfg, cfg, rd.path
    if kind == PcfgStudentConfig.__name__:
        cfg = stored_config(PcfgStudentConfig, rd.path / "config.json")
        tcfg = load_teacher_config(cfg.teacher)
        if not isinstance(tcfg, PcfgTeacherConfig):
            raise ParameterError(f"run {str(rd.path)!r}: its teacher {cfg.teacher!r} is not a PCFG teacher")
        return cfg, tcfg, cfg.teacher
    raise ParameterError(f"run {str(rd.path)!r} is not a PCFG run (config kind {kind!r})")


def probe_run(run, *, steps="all", overrides=(), device=None, progress: bool = False) -> list[dict]:
    """One row per checkpoint step and run: held-out loss/accuracy, ``m_robust_{n}``, ``m_close_{n}``
    (eqs. (5)-(6) or (11)-(12)) and ``probe_level_{l}`` (Appendix D.3). ``overrides``: KEY=VALUE
    words for the probe settings of the run's config (``measure_positions``, ``probe_train``, ...).
    ``progress``: a bar over the checkpoints (plain lines on stderr when it is not a terminal)."""
    rd = RunDir(run)
    if not (rd.path / "config.json").is_file():
        raise ParameterError(f"run {str(run)!r} is not a run directory (no config.json)")
    cfg, tcfg, teacher_dir = _run_config(rd)
    words = dict(w.split("=", 1) for w in overrides if "=" in w)
    bad = sorted(set(words) - set(_PROBE_KEYS)) + [w for w in overrides if "=" not in w]
    if bad:
        raise ParameterError(f"probe overrides must be KEY=VALUE with KEY in {', '.join(_PROBE_KEYS)}; got {bad}")
    if device:
        words["device"] = device
    cfg = apply_overrides(cfg, words)
    cfg = dataclasses.replace(cfg, measure_every=cfg.eval_every, probe_every=cfg.eval_every)
    ck = TransformerCheckpointDir(rd.ckpt)
    available = ck.steps()
    if not available:
        raise ParameterError(f"run {str(run)!r} has no checkpoints in {ck.root}")
    if steps == "all":
        chosen = available
    else:
        words = [w.strip() for w in str(steps).split(",") if w.strip()]
        if not words or not all(w.isdigit() for w in words):
            raise ParameterError(f"steps must be 'all' or comma-separated integers >= 0, got {steps!r}")
        chosen = [ck.resolve(int(w)) for w in words]
    # the grammar the run was trained on: its teacher's stored copy (distill.runs.build_task)
    task = build_task(tcfg, teacher_dir, student=True)
    ck = TransformerCheckpointDir(rd.ckpt, shape=model_shape(fit_settings(cfg), task), runs=len(cfg.seeds))
    for step in chosen:
        read_header(ck.path(step))  # complete files, before any work
    dev = resolve_device(cfg.device)
    ev = Evaluator(task, eval_settings(cfg), dev)
    rows = []
    bar = Progress(len(chosen), desc=f"probe {rd.path.name}", unit="checkpoint", enabled=progress)
    with contextlib.closing(bar):
        for step in chosen:
            model = ck.load(step, device=dev).model
            cols = ev.basic(model)
            cols.update(ev.measures(model))
            cols.update(ev.nonterminal_probe(model))
            for r, seed in enumerate(cfg.seeds):
                rows.append({"step": step, "run": r, "seed": seed,
                             **{k: float(np.asarray(v).reshape(-1)[r]) for k, v in cols.items()}})
            bar.update(1, step=step)
    return rows
