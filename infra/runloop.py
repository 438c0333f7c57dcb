"""The outer loop of every training program, engine-agnostic: start or resume, log, checkpoint, finish.

A *program* trains ``R`` runs at once (a leading run axis) into one run directory
(:class:`~infra.rundir.RunDir`), or into several that hold equal shares of its runs (the MLP
students of several strategies trained as one program). Around its training steps every engine
(:mod:`simulate.teacher`, :mod:`simulate.student`, :func:`distill.engine.fit`) does the same:

* **start or resume** (:meth:`RunLoop.start_or_resume`): a directory holding a run of the same
  config and a checkpoint resumes from its latest checkpoint that loads (the engine's ``restore``
  loads the latest and returns its step; a latest file that is not a complete safetensors file is
  moved aside as ``*.corrupt`` and the previous one is tried, with a warning; the metrics logged
  after the restored step are dropped, the resumed run logs them again; "resuming from step N" is
  logged); otherwise it starts afresh (old checkpoints and metrics removed, ``config.json`` and
  ``env.json`` written). A loop without checkpoints always starts afresh. The entry points claim
  their directories before (:meth:`infra.rundir.RunDir.claim_for`: a run of another config is
  refused there, a finished one is not retrained);
* **log** (:meth:`RunLoop.log`) at an evaluation step: the engine's ``evaluate(step)`` gives one
  row per run (in directory order), appended to each directory's ``metrics.jsonl``; then, when a
  checkpoint is due (every ``checkpoint_every`` steps and at ``total_steps``), the engine's
  ``save(step)`` writes it, and without ``keep_checkpoints`` the older ones are removed (only the
  latest is kept); then the progress bar moves. A step is logged once: a step already in the log
  (one kept by a resume, step 0 of a resume from step 0 included) is not logged again;
* **divergence**: a run whose row holds a non-finite ``test_loss`` or ``train_loss`` (or whose
  parameters are not all finite, by the engine's ``params_finite()``) has diverged: a warning names
  it, and its rows from then on are marked ``"diverged": true`` (:meth:`RunDir.finish` writes
  ``diverged`` and each run's ``diverged_at`` step into ``summary.json``). The other runs of the
  program go on; once every run has diverged, :meth:`log` raises :class:`AllRunsDiverged` (after
  the rows, without a checkpoint), which :meth:`RunLoop.running` catches: the engine then writes
  its summary as for a finished run;
* **close** (:meth:`RunLoop.close`, or the end of ``with loop.running():``): the progress bar and
  the sinks are closed. Summaries (``RunDir.finish``) stay with the engines, which know what a run's
  summary holds.

Progress (:class:`Progress`, also used by sweeps, ``icurr pcfg optimal|probe`` and ``icurr report``):
a tqdm bar on a terminal (below a sweep's runs bar: tqdm stacks open bars); when stderr is not a
terminal, one plain line on stderr per evaluation, ``[teacher] step 2000/40000 acc 0.713 loss 0.52
1.2k steps/s eta 31 s``, at most one per ``every_s`` seconds of wall time plus the first and the last;
nothing on stdout. ``acc`` is the best ``test_accuracy`` of the program's runs, ``loss`` the lowest
``test_loss`` (else ``train_loss``). Metrics sinks (:mod:`infra.sinks`, ``ICURR_LOG``) get the rows
appended to each directory, read once per loop; they change no file of the run.

The loop knows nothing of models or optimizers: what a checkpoint holds, how the state is
restored and what a row holds are the engine's callables. The order within :meth:`log` (rows
appended, then the checkpoint) is part of the contract: a run killed between the two resumes from
the previous checkpoint and logs the rows again.
"""
from __future__ import annotations

import logging
import math
import sys
import time
from contextlib import contextmanager
from typing import Any, Callable, Mapping, Sequence

from tqdm.auto import tqdm

from theory._checks import ParameterError, check_int

from . import sinks as _sinks
from .allocator import tune_allocator
from .checkpoints import CheckpointFiles
from .rundir import RunDir

__all__ = ["RunLoop", "AllRunsDiverged", "LOSS_KEYS", "Progress", "PLAIN_EVERY_S"]

log = logging.getLogger(__name__)

#: The row values whose non-finiteness marks a run as diverged.
LOSS_KEYS = ("test_loss", "train_loss")


class AllRunsDiverged(Exception):
    """Every run of the program has diverged (:meth:`RunLoop.log`): training stops."""


def _nonfinite(v) -> bool:
    if v is None or isinstance(v, (bool, str)):
        return False
    try:
        return not math.isfinite(float(v))
    except (TypeError, ValueError):
        return False

Rows = list[dict[str, Any]]

_monotonic = time.monotonic  # the clock of the plain lines' rates and throttling

#: Plain progress lines (stderr not a terminal): at most one per this many seconds, plus the first and last.
PLAIN_EVERY_S = 2.0


def _si(x: float) -> str:
    """``1234.5`` -> ``"1.2k"``; small values with 2 significant digits."""
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{x / div:.1f}{suffix}"
    return f"{x:.2g}" if x < 10 else f"{x:.0f}"


def _duration(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    return f"{s / 60:.0f} min" if s < 7200 else f"{s / 3600:.1f} h"


class Progress:
    """Progress over ``total`` units (``unit``: ``step``, ``run``, ...) starting at ``initial``: a tqdm
    bar labelled ``desc`` when stderr is a terminal (``leave``: keep it when closed; ``position``:
    tqdm's row, None: below the bars already open); else plain lines on stderr (module doc), at
    most one per ``every_s`` seconds (None: :data:`PLAIN_EVERY_S`) plus the first and the last update. ``enabled`` False: nothing.
    ``rate`` False leaves the rate and the eta out of the plain lines (parts of unequal cost, e.g. a report's sections)."""

    def __init__(self, total: int | None, *, desc: str, unit: str = "step", initial: int = 0, enabled: bool = True,
                 leave: bool = False, position: int | None = None, every_s: float | None = None,
                 rate: bool = True) -> None:
        self.total, self.desc, self.unit, self.rate = total, desc, unit, rate
        self.every_s = PLAIN_EVERY_S if every_s is None else every_s
        self.bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, leave=leave, position=position,
                        disable=None if enabled else True)
        self.plain = enabled and bool(self.bar.disable)  # tqdm declined: stderr is not a terminal
        self.n, self._n0, self._t0 = initial, initial, _monotonic()
        self._printed_at: float | None = None
        self._printed_n: int | None = None
        self._pending: str | None = None  # the newest line not printed (throttled)

    def update_to(self, n: int, **values) -> None:
        """Move to ``n`` units done; ``values`` (e.g. ``acc=0.713``, None left out) follow the count."""
        self.n = n
        values = {k: v for k, v in values.items() if v is not None}
        if not self.bar.disable:
            self.bar.n = n
            if values:
                self.bar.set_postfix({k: _fmt(v) for k, v in values.items()}, refresh=False)
            self.bar.refresh()
        elif self.plain:
            now = _monotonic()
            self._pending = self._line(n, values, now)
            last = self.total is not None and n >= self.total and n != self._printed_n
            if self._printed_at is None or last or now - self._printed_at >= self.every_s:
                self._emit(now)

    def update(self, k: int = 1, **values) -> None:
        """``k`` more units done."""
        self.update_to(self.n + k, **values)

    def note(self, text: str) -> None:
        """One line for people (above the bar on a terminal, on stderr otherwise)."""
        if not self.bar.disable:
            self.bar.write(text, file=sys.stderr)
        elif self.plain:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()

    def _line(self, n: int, values: dict, now: float) -> str:
        of = f"/{self.total}" if self.total is not None else ""
        parts = [f"[{self.desc}] {self.unit} {n}{of}", *(f"{k} {_fmt(v)}" for k, v in values.items())]
        dt = now - self._t0
        if self.rate and dt > 0 and n > self._n0:
            rate = (n - self._n0) / dt
            parts.append(f"{_si(rate)} {self.unit}s/s")
            if self.total is not None:
                parts.append(f"eta {_duration(max(self.total - n, 0) / rate)}")
        return " ".join(parts)

    def _emit(self, now: float) -> None:
        sys.stderr.write(self._pending + "\n")
        sys.stderr.flush()
        self._printed_at, self._printed_n, self._pending = now, self.n, None

    def close(self) -> None:
        """Print the last throttled line (plain mode) and close the bar."""
        if self.plain and self._pending is not None and self.n != self._printed_n:
            self._emit(_monotonic())
        self.bar.close()


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) <= 1 else f"{v:.3g}"
    return str(v)


def _headline(rows: Rows) -> dict[str, float | None]:
    """The best accuracy and the lowest loss of the program's runs at one evaluation (finite only)."""
    def vals(key):
        out = []
        for r in rows:
            v = r.get(key)
            if v is not None and not isinstance(v, (bool, str)):
                try:
                    out.append(float(v))
                except (TypeError, ValueError):
                    continue
        return [v for v in out if math.isfinite(v)]
    acc = vals("test_accuracy")
    loss = vals("test_loss") or vals("train_loss")
    return {"acc": max(acc) if acc else None, "loss": min(loss) if loss else None}


class _NoCheckpoints:
    """The empty checkpoint set of a program that writes none: :meth:`RunDir.resume_or_start` starts afresh."""

    def __len__(self) -> int:
        return 0

    def steps(self) -> list[int]:
        return []


class RunLoop:
    """The outer loop of one training program over ``total_steps`` steps.

    ``rd``: the run directory, or a list of them holding equal shares of the program's runs (run
    ``j * (R // K) + r`` is run ``r`` of directory ``j``); ``config``: the config dict of each
    (``config.json``; a resume needs it unchanged), one mapping or a list parallel to ``rd``.
    ``evaluate(step, **context) -> rows``: one metrics row per run of the program at ``step``
    (``context``: what the engine passes to :meth:`log`).
    ``checkpoints``: the program's checkpoint files (one directory only; None: no checkpoints, no
    resume); ``save(step)`` writes the checkpoint of ``step`` into them, due every
    ``checkpoint_every`` steps (0: only at the end) and at ``total_steps``; ``keep_checkpoints``
    False keeps only the latest. ``progress``: show the progress labelled ``desc`` (:class:`Progress`).
    The metrics sinks of ``ICURR_LOG`` are read here (:func:`infra.sinks.requested_sinks`: an unknown
    name or a missing package raises before any work).
    """

    def __init__(
        self, rd: RunDir | Sequence[RunDir], config: Mapping[str, Any] | Sequence[Mapping[str, Any]], *,
        evaluate: Callable[..., Rows], total_steps: int, checkpoints: CheckpointFiles | None = None,
        save: Callable[[int], Any] | None = None, checkpoint_every: int = 0, keep_checkpoints: bool = True,
        progress: bool = True, desc: str = "train", params_finite: Callable[[], Sequence[bool]] | None = None,
    ) -> None:
        tune_allocator()  # chunk-sized tensors reuse the heap instead of fresh pages (infra.allocator)
        self.rds = [rd] if isinstance(rd, RunDir) else list(rd)
        self.configs = [dict(config)] * len(self.rds) if isinstance(config, Mapping) else [dict(c) for c in config]
        if not self.rds or len(self.configs) != len(self.rds):
            raise ParameterError(f"RunLoop needs one config per run directory; got {len(self.rds)} "
                                 f"directories and {len(self.configs)} configs")
        if checkpoints is not None and (save is None or len(self.rds) != 1):
            raise ParameterError("a RunLoop with checkpoints needs save(step) and exactly one run directory")
        self.evaluate, self.save = evaluate, save
        self.checkpoints = checkpoints
        self.total_steps = check_int("total_steps", total_steps, lo=0)
        self.checkpoint_every = check_int("checkpoint_every", checkpoint_every, lo=0)
        self.keep_checkpoints = keep_checkpoints
        self.progress, self.desc = progress, desc
        self.params_finite = params_finite
        self.start = 0
        self.diverged: dict[int, int] = {}  # run of the program -> the step it diverged at
        self._logged_through = -1  # the last step in the log: a step is logged once
        self._bar: Progress | None = None
        self._sink_names = _sinks.requested_sinks()
        self._sinks: _sinks.MetricsSinks | None = None

    def start_or_resume(self, device, restore: Callable[[], int] | None = None) -> int:
        """Resume or start every directory (see the module doc); returns the step training goes on from.

        ``device`` is recorded in ``env.json``; ``restore()`` loads the latest checkpoint into the
        engine's state (model, optimizer, data generators) and returns its step (needed with checkpoints).
        """
        ck = self.checkpoints if self.checkpoints is not None else _NoCheckpoints()
        for rd, config in zip(self.rds, self.configs):
            if rd.resume_or_start(config, ck, device):  # only with checkpoints: one directory
                if restore is None:
                    raise ParameterError(f"{rd.path} holds checkpoints to resume from but no restore() was given")
                start = self._restore(rd, config, device, restore)
                if start is None:
                    continue
                self.start = start
                rd.truncate_metrics(self.start)
                rd.note_resume(self.start)
                kept = rd.metrics()  # up to the restored step's rows (rows, then checkpoint): not logged again
                self._logged_through = int(kept["step"].max()) if len(kept) else -1
                self.diverged = rd.divergence(kept)
                log.info("resuming from step %d: %s", self.start, rd.path)
        self._bar = Progress(self.total_steps, initial=self.start, desc=self.desc, enabled=self.progress)
        if self._sink_names:
            self._sinks = _sinks.open_sinks(self._sink_names, [rd.path for rd in self.rds], self.configs,
                                            start=self.start)
        return self.start

    def _restore(self, rd: RunDir, config, device, restore: Callable[[], int]) -> int | None:
        """``restore()`` of the latest checkpoint; a latest file that is not a complete safetensors
        file is moved aside and the previous one tried (a warning says which); when none is left the
        directory starts afresh (None). An error of a readable file is raised as it is."""
        ck = self.checkpoints
        while len(ck):
            latest = ck.latest()
            try:
                return check_int("restored step", restore(), lo=0)
            except Exception as exc:  # noqa: BLE001 - judged by the file itself below
                if ck.readable(latest):
                    raise
                bad = ck.quarantine(latest)
                left = ck.steps()
                log.warning("checkpoint %s is corrupt (%s): moved to %s; %s", ck.path(latest), _one_line(exc),
                            bad.name, f"trying step {left[-1]}" if left else "no checkpoint left, starting afresh")
        rd.start_afresh(config, device)
        return None

    def checkpoint_due(self, step: int) -> bool:
        """Whether ``step`` gets a checkpoint: a multiple of ``checkpoint_every``, or the last step."""
        if self.checkpoints is None:
            return False
        return (self.checkpoint_every > 0 and step % self.checkpoint_every == 0) or step == self.total_steps

    def log(self, step: int, **context) -> Rows:
        """Evaluate at ``step`` (``evaluate(step, **context)``, e.g. the active stage's source), mark
        diverged runs, append the rows to the directories, write the checkpoint when due, move the
        bar; returns the rows (none for a step already logged). Raises :class:`AllRunsDiverged`
        once every run has diverged (the rows are written, the checkpoint is not)."""
        if step <= self._logged_through:
            return []
        rows = self.evaluate(step, **context)
        share, rem = divmod(len(rows), len(self.rds))
        if rem:
            raise ParameterError(f"evaluate gave {len(rows)} rows for {len(self.rds)} run directories")
        self._mark_divergence(step, rows, share)
        for j, rd in enumerate(self.rds):
            rd.append_metrics(rows[j * share:(j + 1) * share])
            if self._sinks is not None:
                self._sinks.write(j, rows[j * share:(j + 1) * share])
        self._logged_through = step
        stop = bool(rows) and len(self.diverged) == len(rows)
        if self.checkpoint_due(step) and not stop:
            self.save(step)
            if not self.keep_checkpoints:
                for old in self.checkpoints.steps():
                    if old != step:
                        self.checkpoints.path(old).unlink()
        if self._bar is not None:
            self._bar.update_to(step, **_headline(rows))
        if stop:
            raise AllRunsDiverged(f"every run diverged by step {step}")
        return rows

    def _mark_divergence(self, step: int, rows: Rows, share: int) -> None:
        finite = list(self.params_finite()) if self.params_finite is not None else None
        new: list[tuple[int, str, str]] = []
        for i, row in enumerate(rows):
            if i not in self.diverged:
                bad = [k for k in LOSS_KEYS if _nonfinite(row.get(k))]
                if finite is not None and not finite[i]:
                    bad.append("parameters")
                if bad:
                    self.diverged[i] = step
                    j = i // share
                    new.append((row.get("run", i - j * share), str(self.rds[j].path), ", ".join(bad)))
            if i in self.diverged:
                row["diverged"] = True
        if new:
            runs = "; ".join(f"run {r} of {d} (non-finite {what})" for r, d, what in new)
            end = "; every run diverged: training stopped" if len(self.diverged) == len(rows) else ""
            log.warning("diverged at step %d: %s%s", step, runs, end)

    @contextmanager
    def running(self):
        """``with loop.running():`` around the training: stops quietly when every run diverged
        (:class:`AllRunsDiverged`) and closes the progress bar however the block ends."""
        try:
            yield self
        except AllRunsDiverged:
            pass
        finally:
            self.close()

    def close(self) -> None:
        """Close the progress bar and the sinks (the metrics and checkpoints are already on disk)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self._sinks is not None:
            self._sinks.close()
            self._sinks = None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}"
