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
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from infra import schedule as S
from infra.compare import run_compare as _run_compare
from infra.compare import strategy_row as _strategy_row
from infra.config import check_memory, config_to_dict, read_json_file, stored_config
from infra.device import resolve_device
from infra.first_checkpoint import choose_first_checkpoint
from infra.logs import log_frame, summary_from_log
from infra.rundir import RunDir, open_teacher
from infra.seeding import Stream, generator
from simulate import data as D
from theory._checks import ParameterError

from .checkpoints import TransformerCheckpointDir
from .config import (ParityTransformerTeacherConfig, PcfgStudentConfig, PcfgTeacherConfig, check_transformer_memory,
                     memory_terms)
from .engine import Stage, fit, fit_settings, model_shape
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


def build_task(tcfg, run_dir=None, *, student: bool = False):
    """The task of a teacher config (students share their teacher's task), its sizes checked against the
    machine's memory (:func:`distill.config.check_transformer_memory`) before anything is written.

    ``run_dir``: the teacher's run directory (None: everything in memory, the grammar resolved by name).
    A teacher (``student=False``) keeps there what it trains on: a PCFG teacher the resolved grammar
    (``grammar.json``, :func:`distill.grammar_copy.write_grammar_copy`; its hash goes into the task's
    description, so into the summary), a text teacher its tokenizer and token streams (``text/``, built
    on first use). A teacher resumed or restarted in its directory (a ``config.json`` there) keeps its
    stored grammar.
    ``student=True``: ``run_dir`` is only read: the teacher's stored grammar (checked against the hash
    its summary recorded) or its ``text/`` (complete, hashes checked); the teacher's copy wins over what
    the grammar name resolves to now, which only gets a one-line warning when it differs."""
    if isinstance(tcfg, TextTeacherConfig):
        from .text_task import text_task

        if student and run_dir is None:
            raise ParameterError("a text student needs its teacher's run directory (teacher=DIR)")
        return text_task(tcfg, None if run_dir is None else RunDir(run_dir).path / "text", read_only=student)
    if isinstance(tcfg, PcfgTeacherConfig):
        grammar, write = _teacher_grammar(tcfg, run_dir, student)
        if tcfg.objective == "mlm":
            task = MaskedLMTask(grammar, tcfg.mask_rate)
        else:
            if tcfg.boundary_level > grammar.depth:
                raise ParameterError(f"boundary_level must be in [1, {grammar.depth}] for grammar "
                                     f"{grammar.name!r}, got {tcfg.boundary_level}")
            task = NextTokenTask(grammar, tcfg.boundary_level)
        from .grammar_copy import grammar_sha256, write_grammar_copy

        task.description = {**task.description, "grammar_sha256": grammar_sha256(grammar)}
        if not student:
            check_transformer_memory(tcfg, **task_sizes(task))
        if write:
            write_grammar_copy(grammar, run_dir)
        return task
    gen = generator(tcfg.support_seed, Stream.SUPPORT, torch.device("cpu")) if tcfg.support == "random" else None
    support = D.first_support(tcfg.k) if gen is None else D.random_support(tcfg.d, tcfg.k, generator=gen)
    return ParityTask(tcfg.d, support, tcfg.readout)


def task_sizes(task) -> dict:
    """The sizes of ``task`` for :func:`distill.config.memory_terms`."""
    return {"seq_len": task.max_len, "vocab": task.vocab_size, "n_out": task.n_out, "seq": "T (the task's length)"}


def _teacher_grammar(tcfg, run_dir, student: bool):
    """``(grammar, write)``: the grammar of a PCFG teacher config and whether to store it in ``run_dir``
    (see :func:`build_task`)."""
    import warnings

    from infra.config import IcurrWarning, read_json_file

    from .grammar import load_grammar
    from .grammar_copy import GRAMMAR_COPY, grammar_sha256, read_grammar_copy

    if run_dir is None:
        return load_grammar(tcfg.grammar), False
    rd = RunDir(run_dir)
    if student:
        summary = read_json_file(rd.path / "summary.json", "teacher summary") if rd.finished else {}
        expect = summary.get("grammar_sha256") if isinstance(summary, dict) else None
        stored = read_grammar_copy(rd.path, expect)
        try:
            now = load_grammar(tcfg.grammar)
        except (ParameterError, OSError):  # the name need not resolve here: the stored copy is the grammar
            now = None
        if now is not None and grammar_sha256(now) != grammar_sha256(stored):
            warnings.warn(f"grammar {tcfg.grammar!r} resolves here to another grammar than the one teacher "
                          f"{str(rd.path)!r} trained on; the teacher's copy ({GRAMMAR_COPY}) is used",
                          IcurrWarning, stacklevel=3)
        return stored, False
    grammar = load_grammar(tcfg.grammar)
    # train_teacher claims the directory first (infra.rundir.RunDir.claim_for): a config.json there is
    # this config's run, resumed or restarted; without one (a new run, or one cleared by overwrite) the
    # grammar is stored as the name resolves now
    if not ((rd.path / GRAMMAR_COPY).is_file() and (rd.path / "config.json").is_file()):
        return grammar, True
    stored = read_grammar_copy(rd.path)
    if grammar_sha256(stored) != grammar_sha256(grammar):
        warnings.warn(f"grammar {tcfg.grammar!r} now resolves to another grammar than the one this teacher "
                      f"({str(rd.path)!r}) started on; it continues on its copy ({GRAMMAR_COPY})", IcurrWarning,
                      stacklevel=3)
    return stored, False


def load_teacher_config(path):
    """The Transformer teacher config stored in ``path/config.json`` (one-line errors naming the file)."""
    file = Path(path) / "config.json"
    data = read_json_file(file, "teacher config")
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind not in {cls.__name__ for cls in _TEACHERS}:
        raise ParameterError(f"teacher {str(path)!r} holds no Transformer teacher config (kind {kind!r})")
    return stored_config(_TEACHERS, file, "teacher config")


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
        if col.startswith(("m_robust_", "m_close_", "probe_level_", "probe_base_level_", "attn_")):
            out[f"final_{col}"] = _final(frame, col)
    return out


def train_teacher(cfg, out, *, progress: bool = True, overwrite: bool = False,
                  allow_thread_change: bool = False) -> RunDir:
    """Train ``len(cfg.seeds)`` teachers as one program into ``out``: claimed first
    (:meth:`infra.rundir.RunDir.claim_for`): a finished run of ``cfg`` is kept, an unfinished one
    resumes (under its thread count unless ``allow_thread_change``), another config's run is
    refused unless ``overwrite``."""
    rd = RunDir(out)
    if rd.claim_for(cfg, overwrite=overwrite, allow_thread_change=allow_thread_change) == "finished":
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
        extract_layers=layers, extract_steps=cfg.extract_steps, checkpoints=cfg.checkpoints)
    if cfg.strategy == "extraction":
        note.update(projection_scale=cfg.projection_scale, projection_seed=cfg.projection_seed)
    return sched, note


def train_student(cfg, out, *, progress: bool = True, overwrite: bool = False,
                  allow_thread_change: bool = False) -> RunDir:
    """Train ``len(cfg.seeds)`` students of ``cfg.teacher`` as one program into ``out`` (claimed and
    resumed as :func:`train_teacher`'s)."""
    rd = RunDir(out)
    if rd.claim_for(cfg, overwrite=overwrite, allow_thread_change=allow_thread_change) == "finished":
        return rd
    teacher, tcfg = open_teacher(cfg.teacher, cfg.teacher_run, load_teacher_config)
    want = {PcfgStudentConfig: PcfgTeacherConfig, TextStudentConfig: TextTeacherConfig}.get(
        type(cfg), ParityTransformerTeacherConfig)
    if not isinstance(tcfg, want):
        raise ParameterError(f"teacher {cfg.teacher!r} is a {type(tcfg).__name__}, not a {want.__name__}")
    device = resolve_device(cfg.device)
    task = build_task(tcfg, teacher.path, student=True)  # reads the teacher's grammar / text, writes nothing
    shape = model_shape(fit_settings(tcfg), task)
    ck = TransformerCheckpointDir(teacher.ckpt, shape=shape, runs=len(tcfg.seeds))
    available = ck.steps()
    if not available:
        from infra.checkpoints import NoCheckpointsError

        raise NoCheckpointsError(f"teacher {cfg.teacher!r} has no checkpoints in {ck.root}")
    _check_teacher_checkpoints(ck, available, shape, len(tcfg.seeds))
    if teacher.finished:  # read at the end for the teacher's final accuracy
        read_json_file(teacher.path / "summary.json", "teacher summary")
    if cfg.first_checkpoint == "auto":
        _check_teacher_metrics(cfg, teacher)
    sched, note = student_schedule(cfg, teacher, tcfg, available)
    used = {"final" if S.extract_layer(src) is not None else src for _, _, src in sched.bounds()} - {"labels"}
    check_memory(memory_terms(cfg, **task_sizes(task), extra_params=len(used) * _param_count(shape)), cfg.device)
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


def _param_count(shape) -> int:
    """Parameters of one run of a Transformer of ``shape``."""
    from .model import _param_specs

    return sum(int(np.prod(shp)) for _, shp, _ in _param_specs(shape))


def _check_teacher_checkpoints(ck, steps, shape, runs: int) -> None:
    """Every teacher checkpoint in ``steps`` read from its header alone (:func:`infra.checkpoints.read_header`):
    complete, a Transformer checkpoint, of the teacher config's ``shape`` and ``runs``, with every model
    tensor of that shape; one-line :class:`~infra.checkpoints.CheckpointError` otherwise."""
    import json

    from infra.checkpoints import CheckpointError, CheckpointShapeError, read_header

    from .checkpoints import FORMAT
    from .model import TransformerShape, _param_specs

    want = {f"model.{name}": (runs, *shp) for name, shp, _ in _param_specs(shape)}
    for step in steps:
        path = ck.path(step)
        meta, tensors = read_header(path)
        if meta.get("format") != FORMAT:
            raise CheckpointError(f"teacher checkpoint {path} is not a Transformer checkpoint (format "
                                  f"{meta.get('format')!r})")
        try:
            got, got_runs = TransformerShape(**json.loads(meta["shape"])), int(meta["runs"])
            int(meta["step"]), int(meta["samples"]), json.loads(meta["config"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"teacher checkpoint {path} has corrupt metadata ({type(exc).__name__}: "
                                  f"{exc})") from None
        if got != shape or got_runs != runs:
            diff = [f"{f.name} {getattr(got, f.name)} != {getattr(shape, f.name)}"
                    for f in dataclasses.fields(shape) if getattr(got, f.name) != getattr(shape, f.name)]
            diff += [f"runs {got_runs} != {runs}"] if got_runs != runs else []
            raise CheckpointShapeError(f"teacher checkpoint {path} is of another shape than the teacher's config "
                                       f"and task give: {', '.join(diff)}")
        for name, shp in want.items():
            have = tensors.get(name, (None, None))[1]
            if have != shp:
                raise CheckpointShapeError(f"teacher checkpoint {path}: tensor {name} has shape {have}, the teacher's "
                                           f"config gives {shp}")


def _check_teacher_metrics(cfg, teacher: RunDir) -> None:
    """The teacher's metrics, which the automatic first checkpoint reads, must be readable."""
    try:
        teacher.metrics()
    except (OSError, ValueError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ParameterError(f"teacher {cfg.teacher!r}: its metrics (the automatic first checkpoint reads them) "
                             f"cannot be read: {first}") from None


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


def run_compare(cfg, out, *, progress: bool = True, overwrite: bool = False,
                allow_thread_change: bool = False) -> list[dict]:
    """Train (or reuse) the teacher and every strategy's students below ``out``; one row per strategy
    (the layout of :func:`infra.compare.run_compare`: run directories named by config hash, and
    ``compare.json``; every directory claimed as :func:`train_teacher`'s); each strategy's students
    are one program."""
    parity = isinstance(cfg.teacher, ParityTransformerTeacherConfig)

    def train_students(student, strategies, dirs, *, progress, **claim):
        for strategy, d in zip(strategies, dirs):
            train_student(dataclasses.replace(student, strategy=strategy), d, progress=progress, **claim)

    return _run_compare(cfg, out, train_teacher=train_teacher, train_students=train_students,
                        row=partial(strategy_row, parity=parity), progress=progress, overwrite=overwrite,
                        allow_thread_change=allow_thread_change)
