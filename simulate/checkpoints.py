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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from infra.checkpoints import (
    CheckpointError, CheckpointFiles, CheckpointShapeError, NoCheckpointsError, write_safetensors,
)
from infra.version import package_version
from simulate.model import MLPParams
from theory._checks import ParameterError, check_int

__all__ = ["FORMAT", "Checkpoint", "CheckpointDir", "load_checkpoint", "save_checkpoint"]

FORMAT = "icurr-mlp-v1"
_TENSORS = ("W", "b", "a")


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


class CheckpointDir(CheckpointFiles):
    """A directory of checkpoints ``<root>/step_<9 digits>.safetensors`` of one training program.

    ``d``, ``width``, ``classes``, ``runs`` (optional) are the expected shape, checked on every load.
    """

    def __init__(
        self, root: str | os.PathLike, *, d: int | None = None, width: int | None = None,
        classes: int | None = None, runs: int | None = None,
    ) -> None:
        super().__init__(root)
        self.expected = {"d": d, "width": width, "classes": classes, "runs": runs}

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
