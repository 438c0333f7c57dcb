"""Training students of a saved teacher under a supervision schedule (Definition 2.2, App. D.2).

The schedule is a list of ``(source, steps)`` stages (``source``: ``"labels"``, a teacher step, or
``"final"``); each stage is one call of the training loop with that teacher checkpoint frozen,
its outputs computed once per block of samples and shared by the batched student runs. Loss:
cross-entropy on labels for ``"labels"``, else ``alpha * CE + (1 - alpha) * KL(p_T^tau || p_S)``.
"""
from __future__ import annotations

import torch
from tqdm.auto import tqdm

from icurr.config import config_to_dict
from theory._checks import ParameterError

from . import schedule as S
from .checkpoints import CheckpointDir, NoCheckpointsError
from .config import StudentConfig, TeacherConfig
from .probes import summary_from_log
from .rundir import RunDir, env_info
from .runner import Evaluator, TaskStream, init_params, resolve_device, train
from .teacher import load_teacher_config, teacher_task

__all__ = ["build_schedule", "open_teacher", "train_student"]


def _choose_first(cfg: StudentConfig, teacher: RunDir, tcfg: TeacherConfig, available) -> tuple[int, dict]:
    if cfg.intermediate != "auto":
        step = S.snap_steps([int(cfg.intermediate)], available)[0]
        return step, {"rule": "given", "step": step}
    log = teacher.metrics()
    log = log[log["run"] == cfg.teacher_run]
    inner = [s for s in available if 0 < s < tcfg.steps]
    choice = S.choose_intermediate(log, cfg.intermediate_rule, available=inner)
    return choice.step, {"rule": choice.rule, "step": choice.step, "criterion": choice.value}


def build_schedule(cfg: StudentConfig, teacher: RunDir, tcfg: TeacherConfig, available) -> tuple[S.Schedule, dict]:
    """The student's schedule and a note on how its checkpoints were chosen."""
    T0, spacing = tcfg.steps, tcfg.checkpoint_every
    if cfg.strategy == "ce":
        return S.cross_entropy(cfg.steps), {}
    if cfg.strategy == "oneshot":
        return S.one_shot(cfg.steps), {}
    if cfg.strategy == "progressive":
        n = cfg.n_checkpoints or max(1, T0 // spacing)
        t = cfg.stage_steps or spacing
        if n * t > cfg.steps:
            raise ParameterError(
                f"progressive needs steps >= n_checkpoints * stage_steps = {n} * {t}; got steps = {cfg.steps}")
        sched = S.progressive(n, t, cfg.steps, teacher_steps=T0, spacing=T0 // n if cfg.n_checkpoints else spacing)
        return sched.snap(available), {"n_checkpoints": n, "stage_steps": t}
    first, note = _choose_first(cfg, teacher, tcfg, available)
    if cfg.strategy == "two-shot":
        t = cfg.stage_steps or cfg.steps // 4
        return S.two_shot(first, t, cfg.steps), dict(note, stage_steps=t)
    n = cfg.n_checkpoints or max(1, T0 // first)
    cks = S.checkpoint_multiples(first, n, teacher_steps=T0) if n * first <= T0 else [first]
    sched = S.kappa_equal_split(cks, cfg.steps, teacher_steps=T0, kappa=cfg.kappa)
    return sched.snap(available), dict(note, n_checkpoints=len(cks), kappa=cfg.kappa)


def open_teacher(cfg, load_config):
    """The teacher run directory named by ``cfg.teacher`` and its config (``load_config(path)``);
    raises ParameterError, before any work, when it is missing or ``cfg.teacher_run`` is not one of its runs."""
    if not cfg.teacher:
        raise ParameterError("teacher must name a teacher run directory (teacher=DIR)")
    teacher = RunDir(cfg.teacher)
    if not (teacher.path / "config.json").exists():
        raise ParameterError(f"teacher {cfg.teacher!r} is not a teacher run directory (no config.json)")
    tcfg = load_config(teacher.path)
    if cfg.teacher_run >= len(tcfg.seeds):
        raise ParameterError(f"teacher_run must be in [0, {len(tcfg.seeds) - 1}], got {cfg.teacher_run}")
    return teacher, tcfg


def train_student(cfg: StudentConfig, out, *, progress: bool = True) -> RunDir:
    """Train ``len(cfg.seeds)`` students of ``cfg.teacher`` as one batched program into ``out``.

    A finished directory is left as it is; an unfinished one is trained again from the start.
    """
    rd = RunDir(out)
    if rd.finished:
        return rd
    teacher, tcfg = open_teacher(cfg, load_teacher_config)
    device = resolve_device(cfg.device)
    task = teacher_task(tcfg)
    ck = CheckpointDir(teacher.ckpt, d=tcfg.d, width=tcfg.width, classes=task.classes)
    available = ck.steps()
    if not available:
        raise NoCheckpointsError(f"teacher {cfg.teacher!r} has no checkpoints in {ck.root}")
    sched, note = build_schedule(cfg, teacher, tcfg, available)
    params = init_params(cfg, tcfg.d, tcfg.k, task.classes, device)
    stream = TaskStream(task, cfg.seeds, device)
    evaluator = Evaluator(task, eval_size=cfg.eval_size, probe_samples=cfg.probe_samples, device=device)
    rd.path.mkdir(parents=True, exist_ok=True)
    rd.reset_metrics()
    config = config_to_dict(cfg)
    rd.write_json("config.json", config)
    rd.write_json("env.json", env_info(device))
    bar = tqdm(total=cfg.steps, desc=f"student {cfg.strategy}", unit="step", disable=None if progress else True, leave=False)

    def log(step: int, p) -> None:
        rows = evaluator.rows(p, cfg, step, source=str(sched.source_at(max(step - 1, 0))))
        rd.append_metrics(rows)
        bar.n = step
        bar.set_postfix(acc=f"{max(r['test_accuracy'] for r in rows):.3f}")

    log(0, params)
    for start, stop, source in sched.bounds():
        if source == "labels":
            teacher_params, loss = None, "ce"
        else:
            teacher_params = ck.load(source, device=device).params.select(cfg.teacher_run)
            loss = "mix" if cfg.alpha > 0 else "kl"
        train(params, stream, stop - start, cfg, loss=loss, teacher=teacher_params, alpha=cfg.alpha,
              tau=torch.tensor(cfg.run_temperatures) if cfg.run_temperatures else cfg.temperature,
              start_step=start, on_block=log)
    if cfg.steps % cfg.eval_every:
        log(cfg.steps, params)
    bar.close()
    df = rd.metrics()
    runs = [dict(summary_from_log(df.drop(columns=["source"]), run=r), run=r, seed=s)
            for r, s in enumerate(cfg.seeds)]
    rd.finish({"kind": "student", "strategy": cfg.strategy, "schedule": sched.to_list(),
               "checkpoint_choice": note, "runs": runs})
    return rd
