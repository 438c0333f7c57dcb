"""Curriculum Extraction for Transformers (Gupta & Karmalkar, 2025, Figure 1 / Definition 3.1).

From the fully trained teacher only: the student's blocks are trained in sequence so that the
residual stream after student block ``l`` matches ``A_l h_T``, where ``h_T`` is the residual stream
after the teacher block at the same relative depth (:func:`teacher_layer`) and ``A_l`` a fixed
random matrix ``(d_student, d_teacher)`` with ``N(0, scale^2 / d_teacher)`` entries, one per run
(:func:`simulate.extraction.projection`, drawn from ``(projection_seed, run seed, l)``); then the
student trains on the teacher's output logits (KL, as one-shot distillation).

The alignment loss of run ``r`` (:func:`align_loss`) is the mean squared error per model dimension
over the non-padding positions of each sequence, averaged over sequences (every position counts, as
the representation is aligned everywhere, not only where tokens are masked). Only blocks ``1..l``
run in the forward pass of stage ``l``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from simulate.extraction import projection

from .evaluate import autocast
from .model import Transformer

__all__ = ["Alignment", "teacher_layer", "alignments", "align_loss", "AlignmentEvaluator", "extract_layers"]


@dataclass(frozen=True)
class Alignment:
    """Stage ``"extract:<student_layer>"``: student block output ``~ proj @`` teacher block output."""

    student_layer: int
    teacher_layer: int
    proj: torch.Tensor  # (R, d_student, d_teacher)


def teacher_layer(student_layer: int, student_layers: int, teacher_layers: int) -> int:
    """The teacher block at the same relative depth: ``round(l * L_T / L_S)``, at least 1."""
    return max(1, round(student_layer * teacher_layers / student_layers))


def extract_layers(cfg) -> list[int]:
    """The student blocks a config extracts, in order (all of them when ``extract_layers`` is empty)."""
    return list(cfg.extract_layers) or list(range(1, cfg.layers + 1))


def alignments(cfg, student_width: int, teacher: Transformer, device) -> dict[int, Alignment]:
    """One :class:`Alignment` per extracted student layer (projections per run of ``cfg.seeds``)."""
    d_t = teacher.shape.heads * teacher.shape.head_dim
    out = {}
    for layer in extract_layers(cfg):
        proj = projection(cfg.seeds, student_width, d_t, scale=cfg.projection_scale,
                          projection_seed=cfg.projection_seed, layer=layer, device=device)
        out[layer] = Alignment(layer, teacher_layer(layer, cfg.layers, teacher.shape.layers), proj)
    return out


def _targets(teacher: Transformer, spec: Alignment, inputs: torch.Tensor, valid) -> torch.Tensor:
    """``A h_T``: ``(R, B, T, d_student)`` for per-run inputs ``(R, B, T)`` (1-run teacher)."""
    R, B, T = inputs.shape
    h = teacher.block_output(inputs.reshape(1, R * B, T), spec.teacher_layer,
                             valid=None if valid is None else valid.reshape(1, R * B, T))
    h = h.reshape(R, B * T, -1).float()
    return torch.bmm(h, spec.proj.transpose(1, 2)).reshape(R, B, T, -1)


def align_loss(model: Transformer, teacher: Transformer, spec: Alignment, batch, precision: str, device,
               full: bool = False) -> torch.Tensor:
    """Per-run alignment loss ``(R,)`` of one batch ``(R, B, T)`` (module doc)."""
    valid = None if full else batch.valid
    with torch.no_grad(), autocast(device, precision):
        target = _targets(teacher, spec, batch.inputs, valid)
    with autocast(device, precision):
        h = model.block_output(batch.inputs, spec.student_layer, valid=valid)
    err = (h.float() - target).pow(2).mean(-1)                       # (R, B, T)
    w = batch.valid.float()
    per_seq = (err * w).sum(-1) / w.sum(-1).clamp_min(1)             # (R, B)
    return per_seq.mean(-1)


class AlignmentEvaluator:
    """An :class:`~distill.evaluate.Evaluator` that adds ``extract_mse``: the alignment error of the
    stage active at each logged step (the last extracted layer once on the teacher's outputs), on a
    fixed held-out batch."""

    def __init__(self, base, teacher: Transformer, specs: dict[int, Alignment], stage_of_step, batch,
                 precision: str, device) -> None:
        self.base, self.teacher, self.specs = base, teacher, specs
        self.stage_of_step, self.batch = stage_of_step, batch
        self.precision, self.device = precision, device

    def __getattr__(self, name):
        return getattr(self.base, name)

    @torch.no_grad()
    def rows(self, model, step: int, samples: int, seeds, **extra) -> list[dict]:
        rows = self.base.rows(model, step, samples, seeds, **extra)
        layer = self.stage_of_step(step)
        spec = self.specs[layer]
        was = model.training
        model.eval()
        mse = align_loss(model, self.teacher, spec, self.batch, self.precision, self.device).tolist()
        model.train(was)
        for row, value in zip(rows, mse):
            row["extract_mse"] = value
            row["extract_layer"] = layer
        return rows
