"""Teachers, students and strategy comparisons of the Transformer experiments (PCFG and parity).

Run directories as in :mod:`simulate`: ``config.json``, ``env.json``, ``metrics.jsonl`` /
``metrics.parquet``, ``ckpt/`` and ``summary.json`` (written last). Students follow a supervision
schedule of :func:`infra.schedule.build_schedule`, the same strategies as the MLP engine's: the
first checkpoint ``C_1`` of two-shot / equal-split is given or chosen from the teacher's log
(:mod:`infra.first_checkpoint`: the middle of the rapid loss drop, i.e. the steepest rise of held-out
accuracy, or the peak of ``M_robust``, Section 4.1.2), equal-split's others at its multiples ``2 C_1,
3 C_1, ...`` (Appendix D.2); progressive runs over the teacher's saved checkpoints (Definition 2.2).

Summaries: ``samples_to_95`` (60/99) is samples to 95% test accuracy (parity); on PCFG and text,
``samples_to_95pct_of_teacher`` (80/90) is samples to 95% of the supervising teacher's final accuracy
(a student) and ``samples_to_95pct_of_own_final`` the same fraction of the run's own final accuracy
(a teacher).
"""
from __future__ import annotations

import dataclasses
from functools import partial

import numpy as np
import pandas as pd
import torch

from infra import schedule as S
from infra.compare import run_compare as _run_compare
from infra.compare import strategy_row as _strategy_row
from infra.config import config_from_dict, config_to_dict
from infra.device import resolve_device
from infra.first_checkpoint import choose_first_checkpoint
from infra.logs import log_frame, summary_from_log
from infra.rundir import RunDir, open_teacher
from infra.seeding import Stream, generator
from simulate import data as D
from theory._checks import ParameterError

from .checkpoints import TransformerCheckpointDir
from .config import ParityTransformerTeacherConfig, PcfgStudentConfig, PcfgTeacherConfig
from .engine import Stage, fit, fit_settings
from .evaluate import Evaluator, eval_settings
from .extraction import AlignmentEvaluator, alignments, extract_layers
from .tasks import MaskedLMTask, NextTokenTask, ParityTask
from .text_config import TextStudentConfig, TextTeacherConfig

__all__ = ["build_task", "train_teacher", "train_student", "run_compare", "student_schedule", "run_summary",
           "load_teacher_config", "bayes_ceiling"]

_TEACHERS = (PcfgTeacherConfig, ParityTransformerTeacherConfig, TextTeacherConfig)
_RELATIVE = (0.8, 0.9, 0.95)  # PCFG / text speed targets: fractions of the reference (teacher's final) accuracy
#: The speed keys of a strategy row: parity (samples to 95/99% test accuracy), PCFG / text (to 80/90/95%
#: of the teacher's final accuracy).
PARITY_SPEED_KEYS = ("samples_to_95", "samples_to_99")
RELATIVE_SPEED_KEYS = tuple(f"samples_to_{round(q * 100)}pct_of_teacher" for q in _RELATIVE)


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
    """Speed and final numbers of one run: parity as :func:`infra.logs.summary_from_log`
    (``samples_to_60/95/99``: samples to 60/95/99% test accuracy); PCFG and text samples to 80/90/95%
    of ``reference``: ``samples_to_<p>pct_of_teacher`` (``reference``: the teacher's final accuracy)
    or, when ``reference`` is None, ``samples_to_<p>pct_of_own_final`` (the run's own final accuracy);
    plus the last logged measures and probes."""
    frame = log_frame(df.drop(columns=[c for c in ("source",) if c in df.columns]), run=run)
    if parity:
        out = summary_from_log(frame)
    else:
        acc = frame["test_accuracy"].astype(float)
        ref = float(acc.iloc[-1]) if reference is None else reference
        out = {"reference_accuracy": ref, "final_step": int(frame["step"].iloc[-1]),
               "final_accuracy": float(acc.iloc[-1])}
        of = "teacher" if reference is not None else "own_final"
        for q in _RELATIVE:
            hit = np.flatnonzero(acc.to_numpy() >= q * ref)
            out[f"samples_to_{round(q * 100)}pct_of_{of}"] = int(frame["samples"].iloc[hit[0]]) if len(hit) else None
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
    ev = Evaluator(task, eval_settings(cfg), device)
    fit(rd, fit_settings(cfg), task, device, config=config_to_dict(cfg), stages=[Stage(0, cfg.steps, "labels")],
        evaluator=ev, checkpoint_every=cfg.checkpoint_every, progress=progress, desc="teacher")
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


def student_schedule(cfg, teacher: RunDir, tcfg, available: list[int]) -> tuple[S.Schedule, dict]:
    """The student's supervision schedule and a note on how its checkpoints were chosen
    (:func:`infra.schedule.build_schedule`, the same strategies as the MLP engine's, with the first
    checkpoint of :func:`infra.first_checkpoint.choose_first_checkpoint`; the automatic choice leaves
    out the first ``first_skip * T0`` teacher steps, phase 1)."""

    def first() -> tuple[int, dict]:
        log = teacher.metrics() if cfg.first_checkpoint == "auto" else None
        return choose_first_checkpoint(log, first_checkpoint=cfg.first_checkpoint, rule=cfg.first_rule,
                                       skip=cfg.first_skip, smooth=cfg.first_smooth, teacher_steps=tcfg.steps,
                                       available=available, run=cfg.teacher_run)

    layers = extract_layers(cfg) if cfg.strategy == "extraction" else ()
    sched, note = S.build_schedule(
        cfg.strategy, steps=cfg.steps, teacher_steps=tcfg.steps, spacing=tcfg.checkpoint_every, available=available,
        first=first, stage_steps=cfg.stage_steps, n_checkpoints=cfg.n_checkpoints, kappa=cfg.kappa, split=cfg.split,
        extract_layers=layers, extract_steps=cfg.extract_steps)
    if cfg.strategy == "extraction":
        note.update(projection_scale=cfg.projection_scale, projection_seed=cfg.projection_seed)
    return sched, note


def train_student(cfg, out, *, progress: bool = True) -> RunDir:
    """Train ``len(cfg.seeds)`` students of ``cfg.teacher`` as one program into ``out`` (resumes)."""
    rd = RunDir(out)
    if rd.finished:
        return rd
    teacher, tcfg = open_teacher(cfg.teacher, cfg.teacher_run, load_teacher_config)
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
    sched, note = student_schedule(cfg, teacher, tcfg, available)
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

    ev = Evaluator(task, eval_settings(cfg), device)
    specs = {}
    if cfg.strategy == "extraction":
        specs = alignments(cfg, cfg.heads * cfg.head_dim, teacher_model("final"), device)
        ev = _alignment_evaluator(ev, cfg, sched, specs, teacher_model("final"), device)
    stages = [Stage(a, b, str(src), teacher_model(src), specs.get(S.extract_layer(src)))
              for a, b, src in sched.bounds()]
    fit(rd, fit_settings(cfg), task, device, config=config_to_dict(cfg), stages=stages, evaluator=ev,
        checkpoint_every=cfg.eval_every, keep_checkpoints=False, log_source=True, progress=progress,
        desc=f"student {cfg.strategy}")
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
    """Median and spread over seeds of the speed numbers of one strategy, from ``summary.json``
    (:func:`infra.compare.strategy_row`; parity: samples to 95/99% test accuracy, PCFG / text: to
    80/90/95% of the teacher's final accuracy), with the medians of the final measures."""
    return _strategy_row(strategy, run_dir, speed_keys=PARITY_SPEED_KEYS if parity else RELATIVE_SPEED_KEYS)


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
