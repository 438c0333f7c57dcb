"""The outer loop of every training program, engine-agnostic: start or resume, log, checkpoint, finish.

A *program* trains ``R`` runs at once (a leading run axis) into one run directory
(:class:`~infra.rundir.RunDir`), or into several that hold equal shares of its runs (the MLP
students of several strategies trained as one program). Around its training steps every engine
(:mod:`simulate.teacher`, :mod:`simulate.student`, :func:`distill.engine.fit`) does the same:

* **start or resume** (:meth:`RunLoop.start_or_resume`): a directory holding a run of the same
  config and a checkpoint resumes from its latest checkpoint (the engine's ``restore`` loads it and
  returns its step; the metrics logged after that step are dropped, the resumed run logs them
  again); otherwise it starts afresh (old checkpoints and metrics removed, ``config.json`` and
  ``env.json`` written). A loop without checkpoints always starts afresh;
* **log** (:meth:`RunLoop.log`) at an evaluation step: the engine's ``evaluate(step)`` gives one
  row per run (in directory order), appended to each directory's ``metrics.jsonl``; then, when a
  checkpoint is due (every ``checkpoint_every`` steps and at ``total_steps``), the engine's
  ``save(step)`` writes it, and without ``keep_checkpoints`` the older ones are removed (only the
  latest is kept); then the progress bar moves;
* **close** (:meth:`RunLoop.close`): the progress bar is closed. Summaries (``RunDir.finish``)
  stay with the engines, which know what a run's summary holds.

The loop knows nothing of models or optimizers: what a checkpoint holds, how the state is
restored and what a row holds are the engine's callables. The order within :meth:`log` (rows
appended, then the checkpoint) is part of the contract: a run killed between the two resumes from
the previous checkpoint and logs the rows again.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from tqdm.auto import tqdm

from theory._checks import ParameterError, check_int

from .checkpoints import CheckpointFiles
from .rundir import RunDir

__all__ = ["RunLoop"]

Rows = list[dict[str, Any]]


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
    False keeps only the latest. ``progress``: show a tqdm bar labelled ``desc``.
    """

    def __init__(
        self, rd: RunDir | Sequence[RunDir], config: Mapping[str, Any] | Sequence[Mapping[str, Any]], *,
        evaluate: Callable[..., Rows], total_steps: int, checkpoints: CheckpointFiles | None = None,
        save: Callable[[int], Any] | None = None, checkpoint_every: int = 0, keep_checkpoints: bool = True,
        progress: bool = True, desc: str = "train",
    ) -> None:
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
        self.start = 0
        self._bar = None

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
                self.start = check_int("restored step", restore(), lo=0)
                rd.truncate_metrics(self.start)
        self._bar = tqdm(total=self.total_steps, initial=self.start, desc=self.desc, unit="step",
                         disable=None if self.progress else True, leave=False)
        return self.start

    def checkpoint_due(self, step: int) -> bool:
        """Whether ``step`` gets a checkpoint: a multiple of ``checkpoint_every``, or the last step."""
        if self.checkpoints is None:
            return False
        return (self.checkpoint_every > 0 and step % self.checkpoint_every == 0) or step == self.total_steps

    def log(self, step: int, **context) -> Rows:
        """Evaluate at ``step`` (``evaluate(step, **context)``, e.g. the active stage's source), append
        the rows to the directories, write the checkpoint when due, move the bar; returns the rows."""
        rows = self.evaluate(step, **context)
        share, rem = divmod(len(rows), len(self.rds))
        if rem:
            raise ParameterError(f"evaluate gave {len(rows)} rows for {len(self.rds)} run directories")
        for j, rd in enumerate(self.rds):
            rd.append_metrics(rows[j * share:(j + 1) * share])
        if self.checkpoint_due(step):
            self.save(step)
            if not self.keep_checkpoints:
                for old in self.checkpoints.steps():
                    if old != step:
                        self.checkpoints.path(old).unlink()
        if self._bar is not None:
            self._bar.n = step
            acc = [r["test_accuracy"] for r in rows if r.get("test_accuracy") is not None]
            if acc:
                self._bar.set_postfix(acc=f"{max(acc):.3f}")
        return rows

    def close(self) -> None:
        """Close the progress bar (the metrics and checkpoints are already on disk)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
