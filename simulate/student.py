"""Training students of a saved teacher under a supervision schedule (Definition 2.2, App. D.2).

The schedule is a list of ``(source, steps)`` stages (``source``: ``"labels"``, a teacher step, or
``"final"``); between stage boundaries the training loop runs with the teacher checkpoints frozen,
their outputs computed once per block of samples. Loss: cross-entropy on labels for ``"labels"``,
else ``alpha * CE + (1 - alpha) * KL(p_T^tau || p_S)``. :func:`train_strategies` trains several
strategies' students as one batched program (each run with its own schedule); :func:`train_student`
is its one-strategy case. Curriculum Extraction (``"extract:1"`` stages, :mod:`simulate.extraction`)
trains with its own loss, so its students form a program of their own.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from infra import schedule as S
from infra.checkpoints import CheckpointError, CheckpointShapeError, NoCheckpointsError, read_header
from infra.config import config_to_dict, stored_config
from infra.device import resolve_device
from infra.first_checkpoint import choose_first_checkpoint
from infra.logs import summary_from_log
from infra.rundir import RunDir, open_teacher
from infra.runloop import RunLoop
from infra.seeding import Stream, generator
from theory._checks import ParameterError

from .checkpoints import CheckpointDir
from .config import StudentConfig, TeacherConfig, check_mlp_memory, check_probe_degrees
from .data import sample_cube
from .extraction import (
    correlation_summary, hidden_mse, match_hidden, projected_targets, projection, projection_correlations,
)
from .model import MLPParams, forward
from .runner import Evaluator, TaskStream, init_params, sgd_settings, train
from .teacher import finite_runs, teacher_task
from .train_setup import TargetSchedule, teacher_rows

__all__ = ["student_schedule", "train_student", "train_strategies", "SharedTeacher"]

def student_schedule(cfg: StudentConfig, teacher: RunDir, tcfg: TeacherConfig, available) -> tuple[S.Schedule, dict]:
    """The student's schedule and a note on how its checkpoints were chosen (:func:`infra.schedule.build_schedule`
    with the first checkpoint of :func:`infra.first_checkpoint.choose_first_checkpoint`)."""

    def first() -> tuple[int, dict]:
        log = teacher.metrics() if cfg.first_checkpoint == "auto" else None
        return choose_first_checkpoint(log, first_checkpoint=cfg.first_checkpoint, rule=cfg.first_rule,
                                       skip=cfg.first_skip, smooth=cfg.first_smooth, teacher_steps=tcfg.steps,
                                       available=available, run=cfg.teacher_run)

    sched, note = S.build_schedule(
        cfg.strategy, steps=cfg.steps, teacher_steps=tcfg.steps, spacing=tcfg.checkpoint_every, available=available,
        first=first, stage_steps=cfg.stage_steps, n_checkpoints=cfg.n_checkpoints, kappa=cfg.kappa, split=cfg.split,
        extract_layers=(1,), extract_steps=cfg.extract_steps, checkpoints=cfg.checkpoints)  # the MLP has one hidden layer
    if cfg.strategy == "extraction":
        note.update(projection_scale=cfg.projection_scale, projection_seed=cfg.projection_seed)
    return sched, note


def _setup(cfg: StudentConfig):
    """The teacher, its config, the device, the task and the teacher's checkpoints, all checked before
    anything is written: the teacher's ``config.json`` (one-line errors naming the file), the student's
    memory with the teacher's d, every checkpoint file's header (complete, tensors ``W (R, m, d)``,
    ``b (R, m)``, ``a (R, C, m)`` of the teacher's config) and, for an automatic first checkpoint, the
    teacher's metrics."""
    if not cfg.teacher and cfg.strategy == "ce":
        raise ParameterError("teacher must name a teacher run directory (teacher=DIR): a ce student takes its task "
                             "(d, k, support, training pool) from it; labels-only training without a teacher is "
                             "`icurr parity teacher` (online SGD on labels) with the student's width, lr and steps")
    teacher, tcfg = open_teacher(cfg.teacher, cfg.teacher_run,
                                 lambda path: stored_config(TeacherConfig, Path(path) / "config.json", "teacher config"))
    device = resolve_device(cfg.device)
    task = teacher_task(tcfg)
    check_mlp_memory(cfg, tcfg.d, task.classes)
    check_probe_degrees(cfg.probe_degrees, tcfg.d)  # probed degrees up to the teacher's d
    ck = CheckpointDir(teacher.ckpt, d=tcfg.d, width=tcfg.width, classes=task.classes, runs=len(tcfg.seeds))
    available = ck.steps()
    if not available:
        raise NoCheckpointsError(f"teacher {cfg.teacher!r} has no checkpoints in {ck.root}")
    want = {"runs": len(tcfg.seeds), "width": tcfg.width, "d": tcfg.d, "classes": task.classes}
    for step in available:
        path = ck.path(step)
        meta, tensors = read_header(path)
        missing = [k for k in ("step", "samples", "config") if k not in meta]
        missing += [f"tensor {k}" for k in ("W", "b", "a") if k not in tensors]
        if missing:
            raise CheckpointError(f"teacher checkpoint {path} lacks {', '.join(missing)}")
        W, b, a = (tensors[k][1] for k in ("W", "b", "a"))
        if len(W) != 3 or len(a) != 3 or b != W[:2] or (a[0], a[2]) != W[:2]:
            raise CheckpointError(f"teacher checkpoint {path} has inconsistent tensors W {W}, b {b}, a {a}")
        got = {"runs": W[0], "width": W[1], "d": W[2], "classes": a[1]}
        for name, value in want.items():  # the wording of simulate.checkpoints' shape errors
            if got[name] != value:
                raise CheckpointShapeError(f"teacher checkpoint of another shape: {name} {got[name]} != expected "
                                           f"{value} (the teacher's config.json) ({path})")
    if cfg.first_checkpoint == "auto":
        try:
            teacher.metrics()
        except (OSError, ValueError) as exc:
            raise ParameterError(f"teacher {cfg.teacher!r}: its metrics (the automatic first checkpoint reads "
                                 f"them) cannot be read: {str(exc).splitlines()[0] if str(exc) else exc!r}") from None
    return teacher, tcfg, device, task, ck, available


def _finish(rd: RunDir, cfg: StudentConfig, sched: S.Schedule, note: dict, extra: dict | None = None) -> None:
    df = rd.metrics()
    runs = [dict(summary_from_log(df.drop(columns=["source"]), run=r), run=r, seed=s)
            for r, s in enumerate(cfg.seeds)]
    rd.finish({"kind": "student", "strategy": cfg.strategy, "schedule": sched.to_list(),
               "checkpoint_choice": note, "runs": runs, **(extra or {})})


def _split_extraction(cfg: StudentConfig, strategies, outs, progress: bool, **claim):
    """Extraction students train with another loss (hidden alignment): their own program."""
    groups = ([i for i, s in enumerate(strategies) if s != "extraction"],
              [i for i, s in enumerate(strategies) if s == "extraction"])
    for i, (s, o) in enumerate(zip(strategies, outs)):  # every directory checked before any is trained
        RunDir(o).plan_for(dataclasses.replace(cfg, strategy=s), **claim)
    done = {}
    for idx in groups:
        rds = train_strategies(cfg, [strategies[i] for i in idx], [outs[i] for i in idx], progress=progress, **claim)
        done.update(zip(idx, rds))
    return [done[i] for i in range(len(strategies))]


def train_student(cfg: StudentConfig, out, *, progress: bool = True, overwrite: bool = False,
                  allow_thread_change: bool = False) -> RunDir:
    """Train ``len(cfg.seeds)`` students of ``cfg.teacher`` as one batched program into ``out``.

    A finished directory of ``cfg`` is left as it is; an unfinished one is trained again from the
    start (students keep no checkpoints); one of another config is refused unless ``overwrite``
    (:meth:`infra.rundir.RunDir.claim_for`).
    """
    return train_strategies(cfg, [cfg.strategy], [out], progress=progress, overwrite=overwrite,
                            allow_thread_change=allow_thread_change)[0]


def train_strategies(cfg: StudentConfig, strategies, outs, *, progress: bool = True, overwrite: bool = False,
                     allow_thread_change: bool = False) -> list[RunDir]:
    """Students of every strategy in ``strategies`` (same seeds, so the same inits and samples) as ONE
    batched program of ``len(strategies) * len(cfg.seeds)`` runs, written to ``outs`` (one run
    directory per strategy, as :func:`train_student` writes it).

    Run ``j * len(seeds) + r`` is strategy ``j``, seed ``r``. Training goes through the union of the
    schedules' stage boundaries; within a segment each run has its own supervision: its teacher
    checkpoint (a stacked multi-run teacher, outputs computed per run on the run's own samples) or
    the labels (per-run ``alpha = 1`` in the mixed loss). Every directory is claimed first
    (:meth:`infra.rundir.RunDir.claim_for`; all checked before any is changed): finished ones of
    their config are left as they are, the others are trained again from the start; one of another
    config is refused unless ``overwrite``.
    """
    claim = dict(overwrite=overwrite, allow_thread_change=allow_thread_change)
    if "extraction" in strategies and len(set(strategies)) > 1:
        return _split_extraction(cfg, list(strategies), list(outs), progress, **claim)
    rds = [RunDir(o) for o in outs]
    every = [dataclasses.replace(cfg, strategy=s) for s in strategies]
    for rd, c in zip(rds, every):
        rd.plan_for(c, **claim)  # refusals before any directory is touched
    todo = [j for j, (rd, c) in enumerate(zip(rds, every)) if rd.claim_for(c, **claim) != "finished"]
    if not todo:
        return rds
    strategies = [strategies[j] for j in todo]
    cfgs = [every[j] for j in todo]
    teacher, tcfg, device, task, ck, available = _setup(cfg)
    scheds = [student_schedule(c, teacher, tcfg, available) for c in cfgs]
    n, m = len(cfg.seeds), len(cfgs)
    parts = [init_params(cfg.seeds, width=cfg.width, init=cfg.init, output_scale=cfg.output_scale, d=tcfg.d, k=tcfg.k,
                         classes=task.classes, device=device) for _ in cfgs]
    params = MLPParams(*(torch.cat([getattr(p, k) for p in parts]) for k in ("W", "b", "a")))
    stream = TaskStream(task, tuple(cfg.seeds) * m, device, train_size=cfg.train_size)
    evaluator = Evaluator(task, eval_size=cfg.eval_size, probe_samples=cfg.probe_samples,
                          probe_every=cfg.probe_every, device=device, probe_degrees=cfg.probe_degrees)
    extract = _Extraction(cfg, task, ck, tcfg, device, n * m) if "extraction" in strategies else None

    def evaluate(step: int) -> list[dict]:
        """Rows of all ``n * m`` runs, strategy by strategy, each numbered within its strategy."""
        rows = evaluator.rows(params, step, step * cfg.batch, tuple(cfg.seeds) * m)
        if extract is not None:
            for row, mse in zip(rows, extract.mse(params)):
                row["extract_mse"] = mse
        for k in range(m):
            source = str(scheds[k][0].source_at(max(step - 1, 0)))
            for row in rows[k * n:(k + 1) * n]:
                row.update(run=row["run"] - k * n, source=source)
        return rows

    desc = f"student {strategies[0]}" if m == 1 else f"students ({m} strategies)"
    loop = RunLoop([rds[j] for j in todo], [config_to_dict(c) for c in cfgs], evaluate=evaluate,
                   total_steps=cfg.steps, progress=progress, desc=desc, params_finite=lambda: finite_runs(params))
    loop.start_or_resume(device)  # no checkpoints: every directory starts afresh

    def log(step: int, _params) -> None:
        loop.log(step)

    teachers: dict = {}

    def teacher_of(source):
        if source not in teachers:
            teachers[source] = ck.load(source, device=device).params.select(cfg.teacher_run)
        return teachers[source]

    with loop.running():  # stops early when every run diverged
        loop.log(0)
        cuts = sorted({0} | {stop for sched, _ in scheds for _, stop, _ in sched.bounds()})
        tau = torch.tensor(cfg.run_temperatures * m) if cfg.run_temperatures else cfg.temperature
        sgd = sgd_settings(cfg, repeat=m)
        for start, stop in zip(cuts[:-1], cuts[1:]):
            sources = [sched.source_at(start) for sched, _ in scheds]
            if S.extract_layer(sources[0]) is not None:  # extraction programs hold extraction runs only
                match_hidden(params, stream, stop - start, cfg.extract_lr or sgd.rates(), teacher=extract.teacher,
                             proj=extract.proj, batch=sgd.batch, schedule=sgd.multiplier(), start_step=start,
                             every=sgd.eval_every, on_block=log)
                continue
            alpha_end = cfg.alpha_end
            if all(src == "labels" for src in sources):
                teacher_params, loss, alpha, alpha_end = None, "ce", cfg.alpha, None
            else:
                run_sources = [src for src in sources for _ in range(n)]
                teacher_params = SharedTeacher([None if src == "labels" else teacher_of(src) for src in run_sources],
                                               [str(src) for src in run_sources], stream.seeds)
                if "labels" in sources:  # labels-supervised runs: alpha = 1 in the mixed loss (and at its end)
                    loss = "mix"
                    alpha = torch.tensor([1.0 if src == "labels" else cfg.alpha for src in sources for _ in range(n)])
                    if alpha_end is not None:
                        alpha_end = torch.tensor([1.0 if src == "labels" else alpha_end for src in sources
                                                  for _ in range(n)])
                else:
                    loss, alpha = ("mix" if cfg.alpha > 0 or (alpha_end or 0) > 0 else "kl"), cfg.alpha
            targets = TargetSchedule(alpha_end=alpha_end, tau_end=cfg.temperature_end, total=cfg.steps,
                                     smoothing=cfg.label_smoothing)
            train(params, stream, stop - start, sgd, loss=loss, teacher=teacher_params, alpha=alpha, tau=tau,
                  start_step=start, on_block=log, targets=targets)
        if cfg.steps % cfg.eval_every:
            loop.log(cfg.steps)
    extra = extract.summary() if extract is not None else None
    for k, j in enumerate(todo):
        _finish(rds[j], cfgs[k], *scheds[k], extra)
    return rds


class SharedTeacher:
    """The teacher logits of a multi-run student program, computed once per distinct (sample stream,
    teacher checkpoint) instead of once per run.

    Runs with the same seed draw the same samples (:class:`~simulate.runner.TaskStream`), so the runs of
    several strategies supervised by one checkpoint at once need its outputs only once; runs supervised
    by the labels (``teachers[r]`` None) need none: they get zeros, which their ``alpha = 1`` ignores.
    ``teachers``: one 1-run :class:`MLPParams` or None per run; ``keys``: the teachers' names (equal
    names, equal teachers); ``seeds``: each run's sample stream. Rows are chunked as for the stacked
    teacher of all ``R`` runs (:meth:`simulate.train_setup.TrainSetup.teacher_out`), so every output is
    bit-identical to that one's (a batched product computes each run's matrix on its own).
    """

    def __init__(self, teachers: list[MLPParams | None], keys: list[str], seeds) -> None:
        index: dict[tuple, int] = {}  # (seed, teacher) -> its row among the distinct pairs
        rep, assign = [], []  # the first run of each distinct pair; each run's row (-1: labels)
        for r, (t, key, seed) in enumerate(zip(teachers, keys, seeds)):
            if t is not None and (seed, key) not in index:
                index[seed, key] = len(rep)
                rep.append(r)
            assign.append(-1 if t is None else index[seed, key])
        self.runs, self.rep, self.assign = len(teachers), torch.tensor(rep), torch.tensor(assign)
        unique = [teachers[r] for r in rep]
        self.teacher = MLPParams(*(torch.cat([getattr(t, k) for t in unique]) for k in ("W", "b", "a")))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(R, N, C)`` for the runs' samples ``x`` ``(R, N, d)``."""
        t = self.teacher
        rows = teacher_rows(t.width, self.runs)  # the stacked teacher's chunks: the same shapes
        xs = x[self.rep.to(x.device)].to(t.W.dtype)
        out = torch.cat([forward(t, xs[:, i:i + rows]) for i in range(0, x.shape[1], rows)], 1)
        full = out.new_zeros(self.runs, *out.shape[1:])
        mine = self.assign >= 0
        full[mine.to(out.device)] = out[self.assign[mine].to(out.device)]
        return full


class _Extraction:
    """The final teacher, the fixed projections ``(R, m_s, m_T)`` and the held-out alignment error
    of an extraction program (:mod:`simulate.extraction`)."""

    def __init__(self, cfg: StudentConfig, task, ck, tcfg: TeacherConfig, device, runs: int) -> None:
        self.teacher = ck.load("final", device=device).params.select(cfg.teacher_run)
        seeds = (tuple(cfg.seeds) * (runs // len(cfg.seeds)))[:runs]
        self.proj = projection(seeds, cfg.width, self.teacher.width, scale=cfg.projection_scale,
                               projection_seed=cfg.projection_seed, device=device)
        gen = generator(cfg.projection_seed, Stream.EXTRACT_HELD_OUT, torch.device("cpu"))
        self.x = sample_cube(min(cfg.eval_size, 4096), tcfg.d, generator=gen).to(device)
        self.support, self.d, self.probe_samples = task.probe_support, tcfg.d, cfg.probe_samples
        self.seed = cfg.projection_seed
        # A relu(W_T x + b_T) on the fixed held-out inputs: the same at every evaluation, so computed once
        self.targets = projected_targets(self.teacher, self.proj, self.x.expand(runs, -1, -1))

    def mse(self, params: MLPParams) -> list[float]:
        return hidden_mse(params, self.teacher, self.proj, self.x, targets=self.targets).tolist()

    def summary(self) -> dict:
        if self.support is None:
            return {}
        corr = projection_correlations(self.teacher, self.proj, self.d, n_samples=self.probe_samples,
                                       generator=generator(self.seed, Stream.EXTRACT_CORRELATION, torch.device("cpu")))
        return {"projection_correlations": correlation_summary(corr, self.support)}
