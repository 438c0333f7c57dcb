"""Algorithm 1 (Appendix B) as an experiment kind: a two-stage teacher, its students under each
supervision of Theorem B.1, and their comparison (configs: :mod:`simulate.two_stage_config`).

A run directory holds the usual files (``config.json``, ``env.json``, ``metrics.parquet``,
``summary.json``, ``ckpt/``). Checkpoints: after stage 1 (step ``T1``, the progressive student's
first teacher) and at the end (step ``T1 + T2``), each with the data generators' states, so a killed
run resumes from the end of its stage 1 with the samples it would have seen. Metrics rows: step 0,
``T1`` (with the stage-1 measures: support recovery and Corollary B.6's correlations, evaluated on
all of {+-1}^d when ``2^d <= eval_size``, else on ``eval_size`` fixed random points) and every ``eval_every`` stage-2 steps; ``samples`` counts
``T1 B1`` for stage 1 plus ``B2`` per stage-2 step. The test loss is the hinge loss against the
labels, for teachers and students alike.

Student seed ``i`` is supervised by teacher run ``i`` (cycling over the teacher's runs) unless
``teacher_run`` names one, so the spread over seeds includes the teachers' randomness.
"""
from __future__ import annotations

import dataclasses
import json

import torch

from infra.compare import run_compare as _run_compare
from infra.compare import strategy_row as _strategy_row
from infra.config import config_from_dict, config_to_dict
from infra.device import resolve_device
from infra.rundir import RunDir, open_teacher
from infra.runloop import RunLoop
from infra.seeding import generator_states, restore_generators
from theory._checks import ParameterError

from . import data as D
from .blocked import train_online
from .checkpoints import CheckpointDir
from .model import MLPParams
from .runner import Evaluator, TaskStream, init_params, parity_task
from .sgd import train_sgd
from .two_stage import first_stage_correlations, hinge_targets, stage_one, support_recovery
from .two_stage_shared import shareable, train_shared
from .two_stage_config import (
    ParityTwoStageStudentConfig, ParityTwoStageTeacherConfig, resolved,
)

__all__ = ["train_teacher", "train_teachers", "train_student", "train_students", "run_compare", "load_teacher_config",
           "paired_teacher"]

_STAGE1_KEYS = ("recovered_frac", "in_min", "off_max", "corr1_in_mean", "corr1_off_max", "corrmaj_in_mean",
                "corrmaj_off_max")


def load_teacher_config(path) -> ParityTwoStageTeacherConfig:
    return config_from_dict(ParityTwoStageTeacherConfig, RunDir(path).read_json("config.json"))


def paired_teacher(params: MLPParams, runs: int, teacher_run: int) -> MLPParams:
    """The teacher runs that supervise ``runs`` student runs: run ``i mod R_T`` for student run ``i``
    (``teacher_run`` -1), or run ``teacher_run`` for all, stacked ``(runs, ...)``."""
    idx = torch.tensor([i % params.runs if teacher_run < 0 else teacher_run for i in range(runs)])
    return MLPParams(params.W[idx].clone(), params.b[idx].clone(), params.a[idx].clone())


def _train(params, cfg: dict, *, d: int, k: int, stream: TaskStream, task, supervise, stage2_teacher, rd: RunDir,
           config: dict, seeds, width: int, progress: bool, desc: str, device, extra_summary: dict,
           teacher_runs=None) -> RunDir:
    """The program of one two-stage run directory (teacher or student): stage 1, then stage 2."""
    T1, B1, T2, B2 = cfg["T1"], cfg["B1"], cfg["T2"], cfg["B2"]
    support = list(range(k))
    evaluator = Evaluator(task, eval_size=config["eval_size"], probe_samples=256, probe_every=0, device=device,
                          exact_max=config["eval_size"])
    ck = CheckpointDir(rd.ckpt, d=d, width=width, classes=1, runs=len(seeds))
    state: dict = {"eta1": None}

    def samples(step: int) -> int:
        return 0 if step == 0 else T1 * B1 + (step - T1) * B2

    def evaluate(step: int) -> list[dict]:
        rows = evaluator.rows(params, step, samples(step), seeds, stage=1 if step <= T1 else 2)
        if step == T1:
            stats = {**support_recovery(params.W, support), **first_stage_correlations(params, evaluator.x, support)}
            for r, row in enumerate(rows):
                row.update({key: float(v[r]) for key, v in stats.items()}, eta1=float(state["eta1"][r]))
        return rows

    def save(step: int) -> None:
        ck.save(params, step=step, samples=samples(step), config=config,
                extra_metadata={**generator_states(stream.gens), "eta1": json.dumps(state["eta1"].tolist())})

    def restore() -> int:
        latest = ck.load("latest", device=device)
        params.W.copy_(latest.params.W), params.a.copy_(latest.params.a), params.b.copy_(latest.params.b)
        restore_generators(stream.gens, latest.metadata)
        state["eta1"] = torch.tensor(json.loads(latest.metadata["eta1"]), dtype=torch.float64)
        return latest.step

    def draw(n: int):
        x, label = stream(n)
        return x, supervise(x, label)

    loop = RunLoop(rd, config, evaluate=lambda step: evaluate(step), total_steps=T1 + T2, checkpoints=ck, save=save,
                   checkpoint_every=0, progress=progress, desc=desc)
    start = loop.start_or_resume(device, restore)
    with loop.running():
        if start == 0:
            loop.log(0)
            state["eta1"] = stage_one(params, draw, steps=T1, batch=B1, k=k, eta1=cfg["eta1"], lambda1=cfg["lambda1"])
            loop.log(T1)
            save(T1)
        if start < T1 + T2:
            common = dict(loss="hinge" if stage2_teacher is None else "hinge_distill", teacher=stage2_teacher,
                          start_step=T1, train="a", every=cfg["eval_every"],
                          on_block=lambda step, _p: loop.log(step))
            if B2 == 1:
                train_online(params, stream, T2, cfg["eta2"], **common)
            else:
                train_sgd(params, stream, T2, cfg["eta2"], batch_size=B2, **common)
            loop.log(T1 + T2)
    df = rd.metrics()
    rd.finish(_summary(df, seeds, cfg, config, d=d, k=k, width=width, extra=extra_summary,
                       teacher_runs=teacher_runs or [None] * len(seeds)))
    return rd


def _summary(df, seeds, cfg: dict, config: dict, *, d: int, k: int, width: int, extra: dict, teacher_runs) -> dict:
    eps, need = config["eps"], config["recover_frac"]
    runs = []
    for r, seed in enumerate(seeds):
        rows = df[df["run"] == r].sort_values("step")
        s1 = rows[rows["step"] == cfg["T1"]].iloc[0]
        last = rows.iloc[-1]
        hit = rows[(rows["step"] >= cfg["T1"]) & (rows["test_loss"] <= eps)]
        entry = {"run": r, "seed": seed, "teacher_run": teacher_runs[r], **{key: float(s1[key]) for key in _STAGE1_KEYS}, "eta1": float(s1["eta1"]),
                 "final_loss": float(last["test_loss"]), "final_accuracy": float(last["test_accuracy"]),
                 "samples_to_eps": int(hit["samples"].iloc[0]) if len(hit) else None}
        entry["success"] = bool(entry["recovered_frac"] >= need
                                and (config["success"] == "recovery" or entry["final_loss"] <= eps))
        runs.append(entry)
    return {**extra, "d": d, "k": k, "support": list(range(k)), "width": width, "T1": cfg["T1"], "B1": cfg["B1"],
            "T2": cfg["T2"], "B2": cfg["B2"], "eta2": cfg["eta2"], "eps": eps, "recover_frac": need,
            "success_rule": config["success"],
            "success_rate": sum(e["success"] for e in runs) / len(runs), "runs": runs}


def train_teacher(cfg: ParityTwoStageTeacherConfig, out, *, progress: bool = True, overwrite: bool = False,
                  allow_thread_change: bool = False) -> RunDir:
    """Algorithm 1 on labels for ``len(cfg.seeds)`` teachers (one batched program) into ``out``."""
    rd = RunDir(out)
    if rd.claim_for(cfg, overwrite=overwrite, allow_thread_change=allow_thread_change) == "finished":
        return rd
    device = resolve_device(cfg.device)
    task = parity_task(cfg.d, D.first_support(cfg.k))
    params = init_params(cfg.seeds, width=cfg.width, init="symmetric", output_scale=1.0, d=cfg.d, k=cfg.k, classes=1,
                         device=device)
    stages = resolved(cfg, d=cfg.d, k=cfg.k, width=cfg.width, supervision="labels")
    return _train(params, stages, d=cfg.d, k=cfg.k, stream=TaskStream(task, cfg.seeds, device), task=task,
                  supervise=lambda x, label: hinge_targets(None, x, label), stage2_teacher=None, rd=rd,
                  config=config_to_dict(cfg), seeds=cfg.seeds, width=cfg.width, progress=progress, desc="teacher",
                  device=device, extra_summary={"kind": "parity-two-stage-teacher", "supervision": "labels",
                                                "teacher_width": None})


def _teacher_params(cfg: ParityTwoStageStudentConfig, tcfg, path, device) -> tuple[MLPParams, MLPParams]:
    """The supervising teacher's stage-1 and final parameters, paired with the student's runs."""
    teacher = RunDir(path)
    if not teacher.finished:
        raise ParameterError(f"teacher {path!r} has not finished (no summary.json): train it first")
    ck = CheckpointDir(teacher.ckpt, d=tcfg.d, width=tcfg.width, classes=1, runs=len(tcfg.seeds))
    if tcfg.T1 not in ck.steps():
        raise ParameterError(f"teacher {path!r} has no stage-1 checkpoint (step {tcfg.T1}): "
                             "progressive supervision needs it")
    runs = len(cfg.seeds)
    first = paired_teacher(ck.load(tcfg.T1, device=device).params, runs, cfg.teacher_run)
    final = paired_teacher(ck.load("final", device=device).params, runs, cfg.teacher_run)
    return first, final


def _student_task(cfg: ParityTwoStageStudentConfig):
    """``(teacher config or None, d, k, width)`` of a student, checked before anything is written."""
    cfg.check_task()
    tcfg = None
    if cfg.teacher:
        _, tcfg = open_teacher(cfg.teacher, max(cfg.teacher_run, 0), load_teacher_config)
        if cfg.d and (cfg.d, cfg.k) != (tcfg.d, tcfg.k):
            raise ParameterError(f"d, k must be the teacher's ({tcfg.d}, {tcfg.k}) or 0, got ({cfg.d}, {cfg.k})")
    d, k = (tcfg.d, tcfg.k) if tcfg is not None else (cfg.d, cfg.k)
    return tcfg, d, k, cfg.width or 2**k * k


def train_student(cfg: ParityTwoStageStudentConfig, out, *, progress: bool = True, overwrite: bool = False,
                  allow_thread_change: bool = False) -> RunDir:
    """A student of width ``m~`` under ``cfg.supervision`` (Theorem B.1) into ``out``."""
    tcfg, d, k, width = _student_task(cfg)
    rd = RunDir(out)
    if rd.claim_for(cfg, overwrite=overwrite, allow_thread_change=allow_thread_change) == "finished":
        return rd
    device = resolve_device(cfg.device)
    task = parity_task(d, D.first_support(k))
    params = init_params(cfg.seeds, width=width, init="symmetric", output_scale=1.0, d=d, k=k, classes=1, device=device)
    first = final = teacher_runs = None
    if cfg.supervision != "labels":
        teacher_runs = [i % len(tcfg.seeds) if cfg.teacher_run < 0 else cfg.teacher_run for i in range(len(cfg.seeds))]
        first, final = _teacher_params(cfg, tcfg, cfg.teacher, device)
        if cfg.supervision == "oneshot":
            first = final

    stages = resolved(cfg, d=d, k=k, width=width, supervision=cfg.supervision)
    return _train(params, stages, d=d, k=k, stream=TaskStream(task, cfg.seeds, device), task=task,
                  supervise=lambda x, label: hinge_targets(first, x, label),
                  stage2_teacher=final, rd=rd, config=config_to_dict(cfg), seeds=cfg.seeds, width=width,
                  progress=progress, desc=f"student ({cfg.supervision})", device=device,
                  extra_summary={"kind": "parity-two-stage-student", "supervision": cfg.supervision,
                                 "teacher_width": None if tcfg is None else tcfg.width}, teacher_runs=teacher_runs)


def train_students(student: ParityTwoStageStudentConfig, supervisions, dirs, *, progress: bool = True,
                   overwrite: bool = False, allow_thread_change: bool = False, configs=None) -> list[RunDir]:
    """One student per supervision (or per config of ``configs``, which then replace ``student`` and
    ``supervisions``), written to ``dirs``: ONE batched program when they differ only in supervision and
    rates and every directory to train starts afresh (:mod:`simulate.two_stage_shared`, the same bits as
    one program each); else one program each (a directory with a stage-1 checkpoint resumes from it)."""
    cfgs = list(configs) if configs is not None else [dataclasses.replace(student, supervision=s) for s in supervisions]
    claim = dict(overwrite=overwrite, allow_thread_change=allow_thread_change)
    rds, todo = _shared_plan(cfgs, dirs, claim)
    if todo is not None:
        _train_shared([cfgs[j] for j in todo], [rds[j] for j in todo], progress=progress, **claim)
        return rds
    return [train_student(c, d, progress=progress, **claim) for c, d in zip(cfgs, dirs)]


def _shared_plan(cfgs, dirs, claim: dict) -> tuple[list[RunDir], list[int] | None]:
    """The run directories of ``cfgs`` and, when the ones left to train can be ONE program (they differ
    only in :data:`~simulate.two_stage_config.SHARED_FIELDS` and all start afresh), their indices; else
    None. A refusal (a directory of another config) raises before any directory is touched."""
    rds = [RunDir(d) for d in dirs]
    plans = [rd.plan_for(c, **claim) for rd, c in zip(rds, cfgs)]
    todo = [j for j, plan in enumerate(plans) if plan != "finished"]
    shared = shareable([cfgs[j] for j in todo]) and all(plans[j] in ("start", "replace") for j in todo)
    return rds, todo if shared else None


def _train_shared(cfgs, rds, *, progress: bool, overwrite: bool, allow_thread_change: bool) -> None:
    cfg = cfgs[0]
    for c in cfgs[1:]:
        c.check_task()
    tcfg, d, k, width = _student_task(cfg)
    device = resolve_device(cfg.device)
    teacher = None
    if any(c.supervision != "labels" for c in cfgs):
        teacher = _teacher_params(cfg, tcfg, cfg.teacher, device)
    for rd, c in zip(rds, cfgs):
        rd.claim_for(c, overwrite=overwrite, allow_thread_change=allow_thread_change)
    teacher_runs = None if teacher is None else \
        [i % len(tcfg.seeds) if cfg.teacher_run < 0 else cfg.teacher_run for i in range(len(cfg.seeds))]

    def write_summary(rd, c, stages, df) -> None:
        extra = {"kind": "parity-two-stage-student", "supervision": c.supervision,
                 "teacher_width": None if tcfg is None else tcfg.width}
        rd.finish(_summary(df, c.seeds, stages, config_to_dict(c), d=d, k=k, width=width, extra=extra,
                           teacher_runs=teacher_runs if c.supervision != "labels" else [None] * len(c.seeds)))

    train_shared(cfgs, rds, d=d, k=k, width=width, teacher_params=teacher, device=device, progress=progress,
                 write_summary=write_summary)


def train_teachers(cfgs, dirs, *, progress: bool = True, overwrite: bool = False,
                   allow_thread_change: bool = False) -> list[RunDir]:
    """Teachers that differ only in ``B1`` and rates as ONE program when every directory to train starts
    afresh (:mod:`simulate.two_stage_shared`: the bits of one program each); else one program each."""
    claim = dict(overwrite=overwrite, allow_thread_change=allow_thread_change)
    rds, todo = _shared_plan(cfgs, dirs, claim)
    if todo is None:
        return [train_teacher(c, d, progress=progress, **claim) for c, d in zip(cfgs, dirs)]
    cfg = cfgs[todo[0]]
    for j in todo:
        rds[j].claim_for(cfgs[j], **claim)

    def write_summary(rd, c, stages, df) -> None:
        rd.finish(_summary(df, c.seeds, stages, config_to_dict(c), d=c.d, k=c.k, width=c.width,
                           extra={"kind": "parity-two-stage-teacher", "supervision": "labels", "teacher_width": None},
                           teacher_runs=[None] * len(c.seeds)))

    train_shared([cfgs[j] for j in todo], [rds[j] for j in todo], d=cfg.d, k=cfg.k, width=cfg.width,
                 teacher_params=None, device=resolve_device(cfg.device), progress=progress,
                 write_summary=write_summary)
    return rds


def strategy_row(supervision: str, run_dir) -> dict:
    """Median and spread over seeds of the samples to test hinge loss ``eps`` (``samples_to_eps``),
    with the success rate and the median support recovery after stage 1."""
    row = _strategy_row(supervision, run_dir, speed_keys=("samples_to_eps",))
    summary = RunDir(run_dir).read_json("summary.json")
    row["success_rate"] = summary["success_rate"]
    row["recovered_frac"] = float(torch.tensor([r["recovered_frac"] for r in summary["runs"]]).median())
    return row


def run_compare(cfg, out, *, progress: bool = True, overwrite: bool = False,
                allow_thread_change: bool = False) -> list[dict]:
    """The teacher, then a student per supervision, below ``out`` (:func:`infra.compare.run_compare`)."""
    return _run_compare(cfg, out, train_teacher=train_teacher, train_students=train_students, row=strategy_row,
                        choice="supervision", progress=progress, overwrite=overwrite,
                        allow_thread_change=allow_thread_change)
