"""Teachers, students and strategy comparisons of the Transformer experiments (PCFG and parity).

Run directories as in :mod:`simulate`: ``config.json``, ``env.json``, ``metrics.jsonl`` /
``metrics.parquet``, ``ckpt/`` and ``summary.json`` (written last). Students follow a supervision
schedule of :mod:`infra.schedule` built from the teacher's checkpoints: the first checkpoint
``C_1`` is given or chosen from the teacher's log (the middle of the rapid loss drop, i.e. the
steepest rise of held-out accuracy, or the peak of ``M_robust``, Section 4.1.2), the others at its
multiples ``2 C_1, 3 C_1, ...`` (Appendix D.2).
"""
from __future__ import annotations

import dataclasses
import math
from functools import partial

import numpy as np
import pandas as pd
import torch

from infra.config import config_from_dict
from simulate import data as D
from infra import schedule as S
from infra.compare import median_reached
from infra.compare import run_compare as _run_compare
from infra.device import resolve_device
from infra.logs import log_frame, summary_from_log
from infra.seeding import Stream, generator
from infra.rundir import RunDir
from simulate.student import open_teacher
from theory._checks import ParameterError

from .checkpoints import TransformerCheckpointDir
from .config import ParityTransformerTeacherConfig, PcfgStudentConfig, PcfgTeacherConfig
from .text_config import TextStudentConfig, TextTeacherConfig
from .engine import Stage, fit
from .evaluate import Evaluator
from .extraction import AlignmentEvaluator, alignments, extract_layers
from .tasks import MaskedLMTask, NextTokenTask, ParityTask

__all__ = ["build_task", "train_teacher", "train_student", "run_compare", "build_schedule", "run_summary",
           "load_teacher_config", "bayes_ceiling"]

_TEACHERS = (PcfgTeacherConfig, ParityTransformerTeacherConfig, TextTeacherConfig)
_RELATIVE = (0.8, 0.9, 0.95)  # PCFG speed targets: fractions of the reference (teacher's final) accuracy


def build_task(tcfg, run_dir=None):
    """The task of a teacher config (students share their teacher's task). Text: the tokenizer and
    token streams live in the teacher's ``run_dir/text`` (built there on first use; in memory when None)."""
    if isinstance(tcfg, TextTeacherConfig):
        from .text_task import text_task

        return text_task(tcfg, None if run_dir is None else RunDir(run_dir).path / "text")
    if isinstance(tcfg, PcfgTeacherConfig):
        from .grammar import load_grammar

        grammar = load_grammar(tcfg.grammar)
        if tcfg.objective == "mlm":
            return MaskedLMTask(grammar, tcfg.mask_rate)
        if tcfg.boundary_level > grammar.depth:
            raise ParameterError(f"boundary_level must be in [1, {grammar.depth}] for grammar "
                                 f"{grammar.name!r}, got {tcfg.boundary_level}")
        return NextTokenTask(grammar, tcfg.boundary_level)
    gen = generator(tcfg.support_seed, Stream.SUPPORT, torch.device("cpu")) if tcfg.support == "random" else None
    support = D.first_support(tcfg.k) if gen is None else D.random_support(tcfg.d, tcfg.k, generator=gen)
    return ParityTask(tcfg.d, support, tcfg.readout)


def load_teacher_config(path):
    data = RunDir(path).read_json("config.json")
    for cls in _TEACHERS:
        if data.get("kind") == cls.__name__:
            return config_from_dict(cls, data)
    raise ParameterError(f"teacher {str(path)!r} holds no Transformer teacher config (kind {data.get('kind')!r})")


def _final(df: pd.DataFrame, column: str):
    vals = df[column].dropna() if column in df.columns else []
    return float(vals.iloc[-1]) if len(vals) else None


def run_summary(df: pd.DataFrame, run: int, *, parity: bool, reference: float | None = None) -> dict:
    """Speed and final numbers of one run: parity as :func:`simulate.probes.summary_from_log`
    (samples to 60/95/99% accuracy); PCFG samples to 80/90/95% of ``reference`` (the teacher's final
    accuracy; the run's own when None), plus the last logged measures and probes."""
    frame = log_frame(df.drop(columns=[c for c in ("source",) if c in df.columns]), run=run)
    if parity:
        out = summary_from_log(frame)
    else:
        acc = frame["test_accuracy"].astype(float)
        ref = float(acc.iloc[-1]) if reference is None else reference
        out = {"reference_accuracy": ref, "final_step": int(frame["step"].iloc[-1]),
               "final_accuracy": float(acc.iloc[-1])}
        for q in _RELATIVE:
            hit = np.flatnonzero(acc.to_numpy() >= q * ref)
            out[f"samples_to_{round(q * 100)}pct"] = int(frame["samples"].iloc[hit[0]]) if len(hit) else None
    out["final_loss"] = float(frame["test_loss"].iloc[-1])
    for col in frame.columns:
        if col.startswith(("m_robust_", "m_close_", "probe_level_", "attn_")):
            out[f"final_{col}"] = _final(frame, col)
    return out


def train_teacher(cfg, out, *, progress: bool = True) -> RunDir:
    """Train ``len(cfg.seeds)`` teachers as one program into ``out`` (resumes; a finished one is kept)."""
    rd = RunDir(out)
    if rd.finished:
        return rd
    device = resolve_device(cfg.device)
    task = build_task(cfg, rd.path)
    ev = Evaluator(task, cfg, device)
    fit(rd, cfg, task, device, stages=[Stage(0, cfg.steps, "labels")], evaluator=ev,
        checkpoint_every=cfg.checkpoint_every, progress=progress, desc="teacher")
    df = rd.metrics()
    parity = isinstance(task, ParityTask)
    runs = [dict(run_summary(df, r, parity=parity), run=r, seed=s) for r, s in enumerate(cfg.seeds)]
    rd.finish({"kind": "transformer-teacher", **task.description, "runs": runs,
               "checkpoints": TransformerCheckpointDir(rd.ckpt).steps(), **bayes_ceiling(cfg, task, ev)})
    return rd


def bayes_ceiling(cfg, task, ev: Evaluator) -> dict:
    """``{"bayes_optimal": {...}}``: the exact Bayes-optimal accuracy and loss (with standard errors)
    on the evaluator's held-out sentences and masks (:func:`distill.optimal.bayes_optimal_metrics`),
    for a PCFG masked-LM teacher with ``bayes_eval``; ``{}`` otherwise."""
    if not (isinstance(cfg, PcfgTeacherConfig) and cfg.objective == "mlm" and cfg.bayes_eval):
        return {}
    from .optimal import bayes_optimal_metrics

    return {"bayes_optimal": bayes_optimal_metrics(task, ev.batch, replacement="bert").to_dict()}


def _first_checkpoint(cfg, teacher: RunDir, tcfg, inner: list[int]) -> tuple[int, dict]:
    if cfg.first_checkpoint != "auto":
        step = S.snap_steps([int(cfg.first_checkpoint)], inner)[0]
        return step, {"rule": "given", "step": step}
    log = teacher.metrics()
    log = log_frame(log[log["run"] == cfg.teacher_run])
    skip = cfg.first_skip * tcfg.steps
    log = log[log["step"] >= skip].reset_index(drop=True)
    inner = [s for s in inner if s >= skip] or inner[-1:]
    if cfg.first_rule == "accuracy":
        if len(log) < 2:
            raise ParameterError(f"first_skip = {cfg.first_skip} leaves fewer than 2 logged teacher steps")
        # 3-point smoothing: the drop spans only a few evaluations at CPU scale (5 points moved the
        # choice to the end of the drop on the default teacher)
        choice = S.choose_intermediate(log, "accuracy", smooth=3, available=inner)
        return choice.step, {"rule": "accuracy", "step": choice.step, "criterion": choice.value}
    cols = sorted((c for c in log.columns if c.startswith("m_robust_")), key=lambda c: int(c.rsplit("_", 1)[1]))
    if not cols:
        raise ParameterError("first_rule 'm_robust' needs a teacher log with M_robust (measure_every > 0)")
    sub = log[log["step"].isin(inner)].dropna(subset=[cols[0]])
    if sub.empty:
        raise ParameterError(f"no teacher checkpoint step has a logged {cols[0]}; checkpoints: {inner}")
    i = sub[cols[0]].astype(float).idxmax()
    step = int(sub.loc[i, "step"])
    return step, {"rule": "m_robust", "step": step, "criterion": float(sub.loc[i, cols[0]]), "column": cols[0]}


def build_schedule(cfg, teacher: RunDir, tcfg, available: list[int]) -> tuple[S.Schedule, dict]:
    """The student's supervision schedule and a note on how its checkpoints were chosen.

    The automatic first checkpoint leaves out the first ``first_skip * T0`` teacher steps (phase 1).
    """
    T0 = tcfg.steps
    if cfg.strategy == "ce":
        return S.cross_entropy(cfg.steps), {}
    if cfg.strategy == "oneshot":
        return S.one_shot(cfg.steps), {}
    if cfg.strategy == "extraction":
        layers = extract_layers(cfg)
        return S.extraction(layers, cfg.extract_steps, cfg.steps), {
            "extract_layers": layers, "extract_steps": cfg.extract_steps,
            "projection_scale": cfg.projection_scale, "projection_seed": cfg.projection_seed}
    inner = [s for s in available if 0 < s < T0]
    if not inner:
        raise ParameterError(f"strategy {cfg.strategy!r} needs an intermediate teacher checkpoint; the teacher "
                             f"has only {available}")
    first, note = _first_checkpoint(cfg, teacher, tcfg, inner)
    t = cfg.stage_steps or cfg.steps // 4
    if cfg.strategy == "two-shot":
        return S.two_shot(first, t, cfg.steps), dict(note, stage_steps=t)
    n = cfg.n_checkpoints or max(1, T0 // first)
    n = min(n, T0 // first)
    if cfg.strategy == "progressive":
        n = max(2, min(n, cfg.steps // t))
        sched = S.progressive(n, t, cfg.steps, teacher_steps=T0, spacing=first) if (n - 1) * first < T0 else \
            S.two_shot(first, t, cfg.steps)
        return sched.snap(available), dict(note, n_checkpoints=n, stage_steps=t)
    cks = S.checkpoint_multiples(first, n, teacher_steps=T0)
    if cfg.split == "teacher":
        sched = S.kappa_equal_split(cks, cfg.steps, teacher_steps=T0, kappa=cfg.kappa)
    else:
        sched = S.equal_split(cks, cfg.steps)
    return sched.snap(available), dict(note, n_checkpoints=len(cks), kappa=cfg.kappa, split=cfg.split)


def train_student(cfg, out, *, progress: bool = True) -> RunDir:
    """Train ``len(cfg.seeds)`` students of ``cfg.teacher`` as one program into ``out`` (resumes)."""
    rd = RunDir(out)
    if rd.finished:
        return rd
    teacher, tcfg = open_teacher(cfg, load_teacher_config)
    want = {PcfgStudentConfig: PcfgTeacherConfig, TextStudentConfig: TextTeacherConfig}.get(
        type(cfg), ParityTransformerTeacherConfig)
    if not isinstance(tcfg, want):
        raise ParameterError(f"teacher {cfg.teacher!r} is a {type(tcfg).__name__}, not a {want.__name__}")
    device = resolve_device(cfg.device)
    task = build_task(tcfg, teacher.path)
    ck = TransformerCheckpointDir(teacher.ckpt)
    available = ck.steps()
    if not available:
        from infra.checkpoints import NoCheckpointsError

        raise NoCheckpointsError(f"teacher {cfg.teacher!r} has no checkpoints in {ck.root}")
    sched, note = build_schedule(cfg, teacher, tcfg, available)
    models: dict = {}

    def teacher_model(source):
        if source == "labels":
            return None
        if S.extract_layer(source) is not None:  # extraction aligns to the final teacher
            source = "final"
        if source not in models:
            m = ck.load(source, device=device).model.select_run(cfg.teacher_run).eval()
            models[source] = m.requires_grad_(False)
        return models[source]

    ev = Evaluator(task, cfg, device)
    specs = {}
    if cfg.strategy == "extraction":
        specs = alignments(cfg, cfg.heads * cfg.head_dim, teacher_model("final"), device)
        ev = _alignment_evaluator(ev, cfg, sched, specs, teacher_model("final"), device)
    stages = [Stage(a, b, str(src), teacher_model(src), specs.get(S.extract_layer(src)))
              for a, b, src in sched.bounds()]
    fit(rd, cfg, task, device, stages=stages, evaluator=ev, checkpoint_every=cfg.eval_every,
        keep_checkpoints=False, log_source=True, progress=progress, desc=f"student {cfg.strategy}")
    df = rd.metrics()
    parity = isinstance(task, ParityTask)
    tsum = teacher.read_json("summary.json") if teacher.finished else {"runs": []}
    ref = next((r.get("final_accuracy") for r in tsum["runs"] if r.get("run") == cfg.teacher_run), None)
    runs = [dict(run_summary(df, r, parity=parity, reference=ref), run=r, seed=s) for r, s in enumerate(cfg.seeds)]
    rd.finish({"kind": "transformer-student", "strategy": cfg.strategy, "schedule": sched.to_list(),
               "checkpoint_choice": note, "teacher_final_accuracy": ref, "runs": runs})
    return rd


def _alignment_evaluator(ev: Evaluator, cfg, sched, specs, teacher, device) -> AlignmentEvaluator:
    """``ev`` plus the held-out alignment error (64 of its sequences) of the active extraction stage."""
    R = len(cfg.seeds)
    held = type(ev.batch)(*(getattr(ev.batch, f)[:64].expand(R, *getattr(ev.batch, f)[:64].shape)
                            for f in ("inputs", "valid", "targets", "selected", "weights")))
    last = extract_layers(cfg)[-1]

    def layer_at(step: int) -> int:
        layer = S.extract_layer(sched.source_at(min(max(step - 1, 0), cfg.steps - 1)))
        return last if layer is None else layer

    return AlignmentEvaluator(ev, teacher, specs, layer_at, held, cfg.precision, device)


def strategy_row(strategy: str, run_dir, *, parity: bool) -> dict:
    """Median and spread over seeds of the speed numbers of one strategy, from ``summary.json``."""
    summary = RunDir(run_dir).read_json("summary.json")
    runs = summary["runs"]
    keys = ("samples_to_95", "samples_to_99") if parity else tuple(f"samples_to_{round(q * 100)}pct" for q in _RELATIVE)
    row = {"strategy": strategy}
    for key in keys:
        vals = [r.get(key) for r in runs]
        row[key] = median_reached(vals)
    row["seeds"] = len(runs)
    row["final_accuracy"] = float(np.median([r["final_accuracy"] for r in runs]))
    for key in sorted(runs[0]):
        if key.startswith(("final_m_robust_", "final_m_close_", "final_probe_level_")):
            vals = [r[key] for r in runs if r.get(key) is not None and not math.isnan(r[key])]
            row[key[len("final_"):]] = float(np.median(vals)) if vals else None
    choice = summary.get("checkpoint_choice") or {}
    if "step" in choice:
        row["checkpoint"] = f"{choice['step']} ({choice['rule']})"
    return row


def run_compare(cfg, out, *, progress: bool = True) -> list[dict]:
    """Train (or reuse) the teacher and every strategy's students below ``out``; one row per strategy
    (the layout of :func:`infra.compare.run_compare`: run directories named by config hash, and
    ``compare.json``); each strategy's students are one program."""
    parity = isinstance(cfg.teacher, ParityTransformerTeacherConfig)

    def train_students(student, strategies, dirs, *, progress):
        for strategy, d in zip(strategies, dirs):
            train_student(dataclasses.replace(student, strategy=strategy), d, progress=progress)

    return _run_compare(cfg, out, train_teacher=train_teacher, train_students=train_students,
                        row=partial(strategy_row, parity=parity), progress=progress)
