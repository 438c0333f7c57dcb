"""Checkpoint files: one safetensors file per training step, ``<root>/step_<9 digits>.safetensors``.

Engine-agnostic: the file names, the atomic write (temporary file, fsync, ``os.replace``, so a
crash never leaves a truncated file under a valid name), the listing of a checkpoint directory
(``latest`` / ``final`` / a given step, with the nearest available steps in the error), and the
error classes. What a file holds is the engine's business (:mod:`simulate.checkpoints` for MLPs,
:mod:`distill.checkpoints` for Transformers); hyperparameters live in the metadata, never in names.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Mapping

import torch
from safetensors.torch import save_file

from theory._checks import ParameterError, check_int

__all__ = ["CheckpointError", "CheckpointShapeError", "NoCheckpointsError", "CheckpointFiles", "checkpoint_name",
           "write_safetensors"]

_NAME_RE = re.compile(r"^step_(\d+)\.safetensors$")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used (missing tensors, bad metadata, wrong shape)."""


class CheckpointShapeError(CheckpointError):
    """A checkpoint whose ``d``, ``width``, ``classes`` or ``runs`` differs from the expected one."""


class NoCheckpointsError(CheckpointError, FileNotFoundError):
    """A checkpoint directory that does not exist, holds no checkpoint, or lacks a requested step."""


def checkpoint_name(step: int) -> str:
    """File name of the checkpoint at ``step``: ``step_000001000.safetensors`` (9 digits, more if needed)."""
    step = check_int("step", step, lo=0)
    return f"step_{step:09d}.safetensors"


def write_safetensors(path: str | os.PathLike, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> Path:
    """Write ``tensors`` with string ``metadata`` to ``path`` atomically (temporary file, fsync,
    ``os.replace``), so a crash never leaves a truncated file under a valid name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(dict(tensors), tmp, metadata=dict(metadata))
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


class CheckpointFiles:
    """The checkpoint files of one training program below ``root`` (which need not exist yet)."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"CheckpointDir({str(self.root)!r})"

    def path(self, step: int) -> Path:
        """Path of the checkpoint at ``step`` (whether or not it exists)."""
        return self.root / checkpoint_name(step)

    def steps(self) -> list[int]:
        """Available steps, ascending (empty when the directory is missing or empty)."""
        if not self.root.is_dir():
            return []
        found = (_NAME_RE.match(p.name) for p in self.root.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def __contains__(self, step: object) -> bool:
        return isinstance(step, int) and self.path(step).is_file()

    def __len__(self) -> int:
        return len(self.steps())

    def latest(self) -> int:
        """The largest available step; :class:`NoCheckpointsError` when there is none."""
        steps = self.steps()
        if not steps:
            what = "does not exist" if not self.root.exists() else "holds no step_*.safetensors checkpoint"
            raise NoCheckpointsError(f"checkpoint directory {self.root} {what}")
        return steps[-1]

    def resolve(self, step: int | str) -> int:
        """``step`` as an available int step; ``"latest"`` and ``"final"`` mean the largest one."""
        if isinstance(step, str):
            if step not in ("latest", "final"):
                raise ParameterError(f"step must be an int, 'latest' or 'final'; got {step!r}")
            return self.latest()
        step = check_int("step", step, lo=0)
        if step not in self:
            steps = self.steps()
            if not steps:
                self.latest()  # raises the empty-directory error
            below = [s for s in steps if s < step][-1:]
            above = [s for s in steps if s > step][:1]
            near = ", ".join(map(str, below + above))
            raise NoCheckpointsError(
                f"no checkpoint at step {step} in {self.root}; nearest available: {near} "
                f"({len(steps)} steps from {steps[0]} to {steps[-1]})")
        return step
