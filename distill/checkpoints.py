"""Transformer checkpoints: one safetensors file per step, with what a bit-exact resume needs.

A file ``step_<9 digits>.safetensors`` holds the model's tensors (all runs, names ``model.<name>``),
Adam's state (``opt.<index>.exp_avg`` / ``exp_avg_sq`` / ``step``) and string metadata: ``format``,
``step``, ``samples``, ``config`` (JSON), ``shape`` (the :class:`~distill.model.TransformerShape`
as JSON), ``runs``, ``version`` and the data generators' states. Writes are atomic
(`infra.checkpoints.write_safetensors`). Listing, ``latest``/``final`` and error messages
are those of :class:`infra.checkpoints.CheckpointFiles`.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from infra.checkpoints import CheckpointError, CheckpointFiles, CheckpointShapeError, write_safetensors
from infra.version import package_version
from theory._checks import check_int

from .model import Transformer, TransformerShape

__all__ = ["FORMAT", "TransformerCheckpoint", "TransformerCheckpointDir"]

FORMAT = "icurr-transformer-v1"


@dataclass
class TransformerCheckpoint:
    """A loaded checkpoint: the model (all runs), the optimizer tensors and the metadata."""

    model: Transformer
    step: int
    samples: int
    config: dict[str, Any]
    optimizer: dict[str, torch.Tensor] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    path: Path | None = None


def _optimizer_tensors(opt: torch.optim.Optimizer | None) -> dict[str, torch.Tensor]:
    if opt is None:
        return {}
    out = {}
    for i, state in opt.state_dict()["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                out[f"opt.{i}.{key}"] = value.detach().to("cpu").contiguous().clone()
    return out


def restore_optimizer(opt: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor]) -> None:
    """Load Adam's per-parameter state saved by :meth:`TransformerCheckpointDir.save` into ``opt``."""
    sd = opt.state_dict()
    state: dict[int, dict[str, torch.Tensor]] = {}
    for name, value in tensors.items():
        _, i, key = name.split(".", 2)
        state.setdefault(int(i), {})[key] = value
    sd["state"] = state
    opt.load_state_dict(sd)


class TransformerCheckpointDir(CheckpointFiles):
    """A directory of Transformer checkpoints; ``shape`` / ``runs`` (optional) are checked on load."""

    def __init__(self, root, *, shape: TransformerShape | None = None, runs: int | None = None) -> None:
        super().__init__(root)
        self.shape, self.runs = shape, runs

    def save(self, model: Transformer, *, step: int, samples: int, config: Mapping[str, Any],
             optimizer: torch.optim.Optimizer | None = None, extra_metadata: Mapping[str, str] | None = None) -> Path:
        """Write the checkpoint of ``step`` (the model of every run, and Adam's state when given)."""
        step = check_int("step", step, lo=0)
        tensors = {f"model.{k}": v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
        tensors.update(_optimizer_tensors(optimizer))
        meta = {str(k): str(v) for k, v in (extra_metadata or {}).items()}
        meta.update({"format": FORMAT, "step": str(step), "samples": str(check_int("samples", samples, lo=0)),
                     "config": json.dumps(dict(config), sort_keys=True), "version": package_version(),
                     "shape": json.dumps(dataclasses.asdict(model.shape), sort_keys=True), "runs": str(model.runs)})
        return write_safetensors(self.path(step), tensors, meta)

    def load(self, step: int | str = "latest", *, device=None) -> TransformerCheckpoint:  # type: ignore[override]
        """Load ``step`` (int, ``"latest"`` or ``"final"``) as a model on ``device``, checking its shape."""
        path = self.path(self.resolve(step))
        tensors = load_file(str(path), device="cpu")
        with safe_open(str(path), framework="pt") as fh:
            meta = dict(fh.metadata() or {})
        if meta.get("format") != FORMAT:
            raise CheckpointError(f"checkpoint {path} is not a Transformer checkpoint (format {meta.get('format')!r})")
        shape = TransformerShape(**json.loads(meta["shape"]))
        runs = int(meta["runs"])
        if self.shape is not None and shape != self.shape:
            diff = [f"{f.name} {getattr(shape, f.name)} != expected {getattr(self.shape, f.name)}"
                    for f in dataclasses.fields(shape) if getattr(shape, f.name) != getattr(self.shape, f.name)]
            raise CheckpointShapeError(f"checkpoint of another shape: {', '.join(diff)} ({path})")
        if self.runs is not None and runs != self.runs:
            raise CheckpointShapeError(f"checkpoint of another shape: runs {runs} != expected {self.runs} ({path})")
        model = Transformer(shape, runs=runs)
        model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
        if device is not None:
            model = model.to(device)
        opt = {k: v for k, v in tensors.items() if k.startswith("opt.")}
        return TransformerCheckpoint(model, int(meta["step"]), int(meta["samples"]), json.loads(meta["config"]),
                                     opt, meta, path)
