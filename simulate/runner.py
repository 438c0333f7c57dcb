"""Shared pieces of the MLP teacher and student runs: initialization, data streams, evaluation,
probes and the training call (batch 1 through the blocked path, larger batches through
:func:`simulate.sgd.train_sgd`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from infra.seeding import Stream, generator
from theory._checks import ParameterError

from . import data as D
from . import losses as L
from .blocked import train_online
from .config import eval_chunk_rows
from .model import MLPParams, forward, init_default, init_symmetric
from .probes import model_fn, probe, probe_plan, probe_summary, summary_rows
from .sgd import train_sgd
from .train_setup import TargetSchedule

__all__ = ["init_params", "Task", "parity_task", "hierarchical_task", "TaskStream", "Evaluator", "SGDSettings",
           "sgd_settings", "train"]

def init_params(seeds, *, width: int, init: str, output_scale: float, d: int, k: int, classes: int,
                device: torch.device) -> MLPParams:
    """One run per seed, each from its own generator (:attr:`Stream.INIT`), stacked along the run axis:
    ``W (R, width, d)``, ``b (R, width)``, ``a (R, classes, width)``; ``init`` "symmetric" (Appendix B,
    mirrored pairs for a degree-``k`` parity) or "default" (PyTorch's, output layer times ``output_scale``)."""
    parts = []
    for seed in seeds:
        g = generator(seed, Stream.INIT, torch.device("cpu"))
        if init == "symmetric":
            parts.append(init_symmetric(1, width, d, k, classes, generator=g))
        else:
            parts.append(init_default(1, width, d, classes, generator=g, output_scale=output_scale))
    return MLPParams(*(torch.cat([getattr(p, n) for p in parts]).to(device) for n in ("W", "b", "a")))


@dataclass(frozen=True)
class Task:
    """What a run learns: ``labels(x)`` (long, shape ``x.shape[:-1]``) for inputs in {+-1}^d, the
    number of ``classes``, and the support the curriculum probes look at (None: no probes)."""

    d: int
    classes: int
    labels: Callable[[torch.Tensor], torch.Tensor]
    probe_support: tuple[int, ...] | None
    description: dict


def parity_task(d: int, support: torch.Tensor) -> Task:
    """(d, k)-sparse parity, 2 classes (Definition 3.1; class 0 when the product is +1)."""
    sup = support.long()
    return Task(d, 2, lambda x: D.parity_labels(x, sup.to(x.device))[1], tuple(sup.tolist()),
                {"task": "parity", "support": sup.tolist()})


def hierarchical_task(d: int, supports: torch.Tensor) -> Task:
    """Hierarchical parity of Appendix C.3: ``2^D`` classes from a depth-``D`` tree of parities."""
    sup = supports.long()
    return Task(d, sup.shape[0] + 1, lambda x: D.hierarchical_labels(x, sup.to(x.device)), None,
                {"task": "hierarchical", "supports": sup.tolist()})


class TaskStream:
    """Samples for each run from that run's own generator (:attr:`Stream.DATA`): ``(x (R, n, d), label (R, n))``.

    ``train_size = 0``: fresh samples at every call (online SGD, the paper's setting). ``train_size = n > 0``:
    a finite pool (:class:`simulate.data.TrainingPool`), the first ``n`` examples of each run's stream and
    then a 62-bit key of its epoch orders, both drawn here once; calls serve the pool epoch after epoch,
    each in a fresh random order. Runs with equal seeds draw equal samples either way. :meth:`seek` sets
    the position of a resumed run (``step * batch`` samples served)."""

    def __init__(self, task: Task, seeds, device: torch.device, train_size: int = 0) -> None:
        self.task, self.seeds = task, tuple(seeds)  # runs with equal seeds draw equal samples
        self.gens = [generator(s, Stream.DATA, device) for s in seeds]
        self.pool = self._pool(train_size) if train_size else None

    def _pool(self, n: int) -> D.TrainingPool:
        d, rows = self.task.d, max(1, (1 << 24) // self.task.d)  # drawn in chunks of <= 2^24 entries
        xs, keys = [], []
        for g in self.gens:
            xs.append(torch.cat([D.sample_cube(min(rows, n - i), d, generator=g, dtype=torch.int8)
                                 for i in range(0, n, rows)]))
            keys.append(torch.randint(0, 2**62, (1,), generator=g, device=g.device))
        x = torch.stack(xs)
        return D.TrainingPool(x, self.task.labels(x), torch.cat(keys))

    def select(self, runs: slice) -> "TaskStream":
        """The stream of the runs ``runs`` alone, drawing from the same generators (so the two streams
        advance together); fresh samples only (a finite pool is not split)."""
        if self.pool is not None:
            raise ParameterError("a stream with a finite training pool cannot be split by runs")
        sub = object.__new__(TaskStream)
        sub.task, sub.seeds, sub.gens, sub.pool = self.task, self.seeds[runs], self.gens[runs], None
        return sub

    def seek(self, samples: int) -> None:
        """Continue from sample ``samples`` (a pool's position; fresh samples follow the generators' states)."""
        if self.pool is not None:
            self.pool.seek(samples)

    def __call__(self, n: int):
        if self.pool is not None:
            return self.pool.take(n)
        x = torch.stack([D.sample_cube(n, self.task.d, generator=g) for g in self.gens])
        return x, self.task.labels(x)


@dataclass(frozen=True)
class SGDSettings:
    """What :func:`train` needs of a run's config: the base rate ``lr`` (a float, or one per run:
    shape ``(R,)`` as a tuple), ``lr_a_mult`` (rate multiplier of the output layer ``a``), the
    schedule (``schedule`` in {constant, cosine, linear}, ``warmup`` steps, over ``steps`` steps in
    all), the ``batch`` size (samples per step) and ``eval_every`` (steps between ``on_block`` calls)."""

    lr: float | tuple[float, ...]
    lr_a_mult: float = 1.0
    schedule: str = "constant"
    warmup: int = 0
    steps: int = 1
    batch: int = 1
    eval_every: int | None = None
    backend: str = "auto"  # batch-1 block backend (simulate.blocked.BACKENDS)

    def rates(self) -> float | torch.Tensor:
        """The base rate: a float, or per-run rates as a float64 tensor ``(R,)``."""
        return torch.tensor(self.lr, dtype=torch.float64) if isinstance(self.lr, tuple) else self.lr

    def multiplier(self):
        """The schedule as ``global steps -> multipliers`` (:func:`simulate.losses.lr_schedule`);
        None for a constant rate without warmup."""
        if self.schedule == "constant" and not self.warmup:
            return None
        return L.lr_schedule(self.schedule, warmup=self.warmup, total=self.steps)


def sgd_settings(cfg, *, repeat: int = 1) -> SGDSettings:
    """The :class:`SGDSettings` of a teacher or student config: ``cfg.lr`` (or its per-run
    ``run_lrs``, repeated ``repeat`` times for a program of ``repeat`` groups of ``len(cfg.seeds)``
    runs), ``lr_a_mult``, ``lr_schedule``, ``warmup``, ``steps``, ``batch``, ``eval_every`` and ``backend``."""
    lr = tuple(float(v) for v in cfg.run_lrs) * repeat if cfg.run_lrs else cfg.lr
    return SGDSettings(lr=lr, lr_a_mult=cfg.lr_a_mult, schedule=cfg.lr_schedule, warmup=cfg.warmup,
                       steps=cfg.steps, batch=cfg.batch, eval_every=cfg.eval_every,
                       backend=getattr(cfg, "backend", "auto"))


def train(params: MLPParams, stream, steps: int, sgd: SGDSettings, *, loss, teacher=None, alpha=0.0, tau=1.0,
          start_step: int = 0, on_block=None, targets: TargetSchedule | None = None) -> MLPParams:
    """``steps`` SGD steps (from global step ``start_step``) of ``sgd.batch`` samples from
    ``stream`` on the ``R`` runs of ``params`` (in place); the blocked exact path for batch 1.
    ``on_block(step, params)`` at global multiples of ``sgd.eval_every``; ``targets``: label smoothing
    and the alpha / temperature schedules of the soft targets (:class:`simulate.train_setup.TargetSchedule`)."""
    kw = dict(loss=loss, teacher=teacher, alpha=alpha, tau=tau, schedule=sgd.multiplier(),
              start_step=start_step, on_block=on_block, every=sgd.eval_every, lr_a_mult=sgd.lr_a_mult,
              targets=targets)
    if sgd.batch == 1:
        return train_online(params, stream, steps, sgd.rates(), backend=sgd.backend, **kw)
    return train_sgd(params, stream, steps, sgd.rates(), batch_size=sgd.batch, **kw)


class Evaluator:
    """Test loss and accuracy on a fixed held-out set (all of {+-1}^d when d <= 20, else ``eval_size``
    fixed samples), and the curriculum probes (``probe_samples`` samples, monomials of ``probe_degrees``)
    every ``probe_every`` steps (0: never)."""

    def __init__(self, task: Task, *, eval_size: int, probe_samples: int, probe_every: int, device, seed: int = 0,
                 exact_max: int = 1 << 20, probe_degrees=(1, 2, 3)):
        self.task, self.d, self.device = task, task.d, device
        if task.d <= D.MAX_CUBE_DIM and 2**task.d <= exact_max:  # all of {+-1}^d when it has <= exact_max points
            self.x = D.full_cube(task.d, device=device)
            self.exact = True
        else:
            gen = torch.Generator().manual_seed(D.EVAL_SEED)  # fixed, never the training stream
            self.x = D.sample_cube(eval_size, task.d, generator=gen).to(device)
            self.exact = False
        self.label = task.labels(self.x)
        self.probe_samples, self.probe_every, self.seed = probe_samples, probe_every, seed
        self.probe_degrees = tuple(probe_degrees)
        self._plan = None  # simulate.probes.probe_plan, drawn at the first probe

    @torch.no_grad()
    def __call__(self, params: MLPParams) -> list[dict]:
        """Per run: ``test_loss`` (hinge for a scalar output, else cross-entropy) and ``test_accuracy``."""
        rows = eval_chunk_rows(params.runs, params.width)  # 8192 unless wide: bounded activations
        out = torch.cat([forward(params, self.x[i:i + rows]) for i in range(0, len(self.x), rows)], 1)
        if params.classes == 1:
            y = L.labels_to_pm1(self.label, out.dtype)
            acc = ((out[..., 0] > 0) == (y > 0)).float().mean(1)
            value = L.hinge_loss(out, y)
        else:
            acc = (out.argmax(-1) == self.label).float().mean(1)
            value = L.cross_entropy(out, self.label)
        return [{"test_loss": float(v), "test_accuracy": float(a)} for v, a in zip(value.cpu(), acc.cpu())]

    def probes(self, params: MLPParams) -> list[dict]:
        """Curriculum probes (Figure 2) per run; empty rows for tasks without a parity support."""
        if self.task.probe_support is None:
            return [{} for _ in range(params.runs)]
        if self._plan is None:  # the same seed at every call: the same monomials and points, drawn once
            g = generator(self.seed, Stream.PROBE, torch.device("cpu"))
            self._plan = probe_plan(self.d, list(self.task.probe_support), generator=g, degrees=self.probe_degrees,
                                    n_samples=self.probe_samples, device=self.device)
        return summary_rows(probe_summary(probe(model_fn(params), self.d, (), plan=self._plan)))

    def rows(self, model: MLPParams, step: int, samples: int, seeds, **extra) -> list[dict]:
        """One metrics row per run of ``model`` (``R`` runs; ``seeds``: one per run) at ``step``,
        ``samples`` seen: test loss/accuracy, the probes when ``step`` is a multiple of
        ``probe_every``, then ``run, seed, step, samples`` and ``extra``."""
        rows = self(model)
        if self.probe_every and step % self.probe_every == 0:
            for row, probes in zip(rows, self.probes(model)):
                row.update(probes)
        for r, (row, seed) in enumerate(zip(rows, seeds)):
            row.update(run=r, seed=seed, step=step, samples=samples, **extra)
        return rows
