"""Model checkpoints as safetensors files, one file per training step.

A checkpoint holds the three tensors of an :class:`~simulate.model.MLPParams` for *all* runs of a
program (``W (R, m, d)``, ``b (R, m)``, ``a (R, C, m)``) and string metadata:

* ``step``: optimizer steps taken, ``samples``: training samples seen (``step x batch`` for
  fresh-sample SGD, Section 1 of the paper: "we use training steps and samples interchangeably"),
* ``config``: the program's configuration as a JSON string,
* ``version``: the version of the ``implicit-curriculum`` package that wrote it,
* ``format``, ``runs``, ``d``, ``width``, ``classes``, ``dtype``: for inspection without loading.

Teacher checkpoints are what progressive distillation (Definition 2.1/2.2) feeds to the student,
so :class:`CheckpointDir` lists the available steps, loads one step (or the ``latest``/``final``
one), validates its shape and writes atomically (temporary file + ``os.replace``, so a crash never
leaves a truncated checkpoint under a valid name). File names carry only the step
(``step_000001000.safetensors``); hyperparameters live in the metadata.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from simulate.model import MLPParams
from theory._checks import ParameterError, check_int

__all__ = [
    "FORMAT",
    "Checkpoint",
    "CheckpointDir",
    "CheckpointError",
    "CheckpointShapeError",
    "NoCheckpointsError",
    "checkpoint_name",
    "load_checkpoint",
    "package_version",
    "save_checkpoint",
    "write_safetensors",
]

FORMAT = "icurr-mlp-v1"
_NAME_RE = re.compile(r"^step_(\d+)\.safetensors$")
_TENSORS = ("W", "b", "a")


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used (missing tensors, bad metadata, wrong shape)."""


class CheckpointShapeError(CheckpointError):
    """A checkpoint whose ``d``, ``width``, ``classes`` or ``runs`` differs from the expected one."""


class NoCheckpointsError(CheckpointError, FileNotFoundError):
    """A checkpoint directory that does not exist, holds no checkpoint, or lacks a requested step."""


def package_version() -> str:
    """The installed version of ``implicit-curriculum``, else the one in ``pyproject.toml``."""
    from importlib import metadata

    try:
        return metadata.version("implicit-curriculum")
    except metadata.PackageNotFoundError:
        pass
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        import tomllib

        with open(pyproject, "rb") as fh:
            return str(tomllib.load(fh)["project"]["version"])
    except (OSError, KeyError, ImportError, ValueError):
        return "unknown"


def checkpoint_name(step: int) -> str:
    """File name of the checkpoint at ``step``: ``step_000001000.safetensors`` (9 digits, more if needed)."""
    step = check_int("step", step, lo=0)
    return f"step_{step:09d}.safetensors"


@dataclass
class Checkpoint:
    """A loaded checkpoint: parameters of all ``R`` runs and the metadata they were saved with."""

    params: MLPParams
    step: int
    samples: int
    config: dict[str, Any]
    version: str
    path: Path | None = None
    metadata: dict[str, str] = field(default_factory=dict)


def _config_json(config: Mapping[str, Any] | str | None) -> str:
    if config is None:
        return "{}"
    if isinstance(config, str):
        try:
            json.loads(config)
        except json.JSONDecodeError as exc:
            raise ParameterError(f"config must be a dict or a JSON string, got invalid JSON ({exc})") from None
        return config
    try:
        return json.dumps(dict(config), sort_keys=True, allow_nan=True)
    except TypeError as exc:
        raise ParameterError(f"config must be JSON-serializable: {exc}") from None


def _check_params(params: MLPParams) -> None:
    W, b, a = params.W, params.b, params.a
    if W.dim() != 3 or b.dim() != 2 or a.dim() != 3:
        raise ParameterError(
            f"params must have W (R,m,d), b (R,m), a (R,C,m); got shapes "
            f"{tuple(W.shape)}, {tuple(b.shape)}, {tuple(a.shape)}")
    R, m, _ = W.shape
    if tuple(b.shape) != (R, m) or a.shape[0] != R or a.shape[2] != m:
        raise ParameterError(
            f"params are inconsistent: W {tuple(W.shape)}, b {tuple(b.shape)}, a {tuple(a.shape)}")


def save_checkpoint(
    path: str | os.PathLike,
    params: MLPParams,
    *,
    step: int,
    samples: int,
    config: Mapping[str, Any] | str | None = None,
    extra_metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write ``params`` (all runs) and metadata to ``path`` atomically; return the path.

    The tensors are written as they are (dtype kept, moved to CPU), so that loading gives a
    bit-exact copy. ``config`` is a dict (serialized with sorted keys) or a JSON string.
    """
    _check_params(params)
    step = check_int("step", step, lo=0)
    samples = check_int("samples", samples, lo=0)
    path = Path(path)
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in params.tensors().items()}
    meta = {str(k): str(v) for k, v in (extra_metadata or {}).items()}
    meta.update({
        "format": FORMAT,
        "step": str(step),
        "samples": str(samples),
        "config": _config_json(config),
        "version": package_version(),
        "runs": str(params.runs),
        "d": str(params.dim),
        "width": str(params.width),
        "classes": str(params.classes),
        "dtype": str(params.W.dtype).replace("torch.", ""),
    })
    return write_safetensors(path, tensors, meta)


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


def _expect_shape(params: MLPParams, expected: Mapping[str, int | None], where: str) -> None:
    actual = {"runs": params.runs, "d": params.dim, "width": params.width, "classes": params.classes}
    for name, want in expected.items():
        if want is not None and actual[name] != want:
            raise CheckpointShapeError(
                f"checkpoint of another shape: {name} {actual[name]} != expected {want} ({where})")


def load_checkpoint(
    path: str | os.PathLike,
    *,
    device: str | torch.device | None = None,
    d: int | None = None,
    width: int | None = None,
    classes: int | None = None,
    runs: int | None = None,
) -> Checkpoint:
    """Load one checkpoint file and check it against the expected shape (``None`` = any).

    Raises :class:`NoCheckpointsError` when the file is missing, :class:`CheckpointError` when it
    lacks a tensor or metadata field, :class:`CheckpointShapeError` naming the first field that
    differs ("checkpoint of another shape: width 100 != expected 1000 (...)").
    """
    path = Path(path)
    if not path.is_file():
        raise NoCheckpointsError(f"no checkpoint file {path}")
    tensors = load_file(str(path), device="cpu")
    with safe_open(str(path), framework="pt") as fh:
        meta = dict(fh.metadata() or {})
    missing = [k for k in _TENSORS if k not in tensors]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks tensor(s) {', '.join(missing)}")
    for key in ("step", "samples", "config"):
        if key not in meta:
            raise CheckpointError(f"checkpoint {path} lacks metadata field {key!r}")
    params = MLPParams(*(tensors[k] for k in _TENSORS))
    try:
        _check_params(params)
    except ParameterError as exc:
        raise CheckpointError(f"checkpoint {path}: {exc}") from None
    _expect_shape(params, {"d": d, "width": width, "classes": classes, "runs": runs}, str(path))
    if device is not None:
        params = MLPParams(*(t.to(device) for t in (params.W, params.b, params.a)))
    try:
        config = json.loads(meta["config"])
        step, samples = int(meta["step"]), int(meta["samples"])
    except ValueError as exc:
        raise CheckpointError(f"checkpoint {path} has malformed metadata: {exc}") from None
    return Checkpoint(params, step, samples, config, meta.get("version", "unknown"), path, meta)


class CheckpointDir:
    """A directory of checkpoints ``<root>/step_<9 digits>.safetensors`` of one training program.

    ``d``, ``width``, ``classes``, ``runs`` (optional) are the expected shape, checked on every load.
    """

    def __init__(
        self, root: str | os.PathLike, *, d: int | None = None, width: int | None = None,
        classes: int | None = None, runs: int | None = None,
    ) -> None:
        self.root = Path(root)
        self.expected = {"d": d, "width": width, "classes": classes, "runs": runs}

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

    def load(self, step: int | str = "latest", *, device: str | torch.device | None = None) -> Checkpoint:
        """Load the checkpoint at ``step`` (int, ``"latest"`` or ``"final"``), checking the expected shape."""
        return load_checkpoint(self.path(self.resolve(step)), device=device, **self.expected)

    def save(
        self, params: MLPParams, *, step: int, samples: int,
        config: Mapping[str, Any] | str | None = None, extra_metadata: Mapping[str, str] | None = None,
    ) -> Path:
        """Write the checkpoint of ``step`` atomically (replacing an existing one of the same step)."""
        _check_params(params)
        _expect_shape(params, self.expected, f"saving to {self.root}")
        return save_checkpoint(self.path(step), params, step=step, samples=samples, config=config,
                               extra_metadata=extra_metadata)
