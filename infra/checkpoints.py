"""Checkpoint files: one safetensors file per training step, ``<root>/step_<9 digits>.safetensors``.

Engine-agnostic: the file names, the atomic write (temporary file, fsync, ``os.replace``, so a
crash never leaves a truncated file under a valid name), the listing of a checkpoint directory
(``latest`` / ``final`` / a given step, with the nearest available steps in the error), and the
error classes. What a file holds is the engine's business (:mod:`simulate.checkpoints` for MLPs,
:mod:`distill.checkpoints` for Transformers); hyperparameters live in the metadata, never in names.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Mapping

import torch
from safetensors.torch import save_file

from theory._checks import ParameterError, check_int

from .rundir import atomic_write

__all__ = ["CheckpointError", "CheckpointShapeError", "NoCheckpointsError", "CheckpointFiles", "checkpoint_name",
           "write_safetensors", "read_header"]

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
    ``os.replace``: :func:`infra.rundir.atomic_write`, with the umask's file mode), so a crash never
    leaves a truncated file under a valid name."""
    return atomic_write(path, lambda tmp: save_file(dict(tensors), tmp, metadata=dict(metadata)))


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

    def readable(self, step: int) -> bool:
        """Whether the file of ``step`` is a complete safetensors file (:func:`read_header`: its header
        parses and every tensor's bytes lie inside the file)."""
        try:
            read_header(self.path(step))
        except CheckpointError:
            return False
        return True

    def quarantine(self, step: int) -> Path:
        """Move the (corrupt) file of ``step`` aside as ``step_<9 digits>.safetensors.corrupt``: no longer
        listed, kept for inspection; returns its new path."""
        bad = self.path(step).with_name(self.path(step).name + ".corrupt")
        os.replace(self.path(step), bad)
        return bad

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


_HEADER_MAX = 100 << 20  # safetensors refuses headers above 100 MB too


def read_header(path: str | os.PathLike) -> tuple[dict[str, str], dict[str, tuple[str, tuple[int, ...]]]]:
    """``(metadata, {tensor name: (dtype, shape)})`` of a safetensors file, read from its header alone
    (no tensor is loaded), after checking that the file is complete: a readable header and every
    tensor's bytes inside the file. One-line :class:`CheckpointError` otherwise (a missing file:
    :class:`NoCheckpointsError`)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else -1
            if not 0 < n <= min(_HEADER_MAX, size - 8):
                raise CheckpointError(f"checkpoint {path} is not a safetensors file or is truncated "
                                      f"({size} bytes, header of {n} bytes)")
            header = json.loads(fh.read(n))
    except FileNotFoundError:
        raise NoCheckpointsError(f"no checkpoint file {path}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"checkpoint {path} has a corrupt header ({exc})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"checkpoint {path} has a corrupt header (not a JSON object)")
    meta = header.pop("__metadata__", None) or {}
    tensors, end = {}, 0
    try:
        for name, info in header.items():
            lo, hi = (int(x) for x in info["data_offsets"])
            tensors[name] = (str(info["dtype"]), tuple(int(x) for x in info["shape"]))
            end = max(end, hi)
            if not 0 <= lo <= hi:
                raise ValueError(f"tensor {name!r} has data offsets {lo}..{hi}")
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} has a corrupt header ({exc})") from None
    if 8 + n + end > size:
        raise CheckpointError(f"checkpoint {path} is truncated: its tensors need {8 + n + end} bytes, the file has "
                              f"{size}")
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise CheckpointError(f"checkpoint {path} has corrupt metadata")
    return meta, tensors
