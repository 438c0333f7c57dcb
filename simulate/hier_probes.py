r"""Level-wise measurements of a model of the hierarchical parity of Appendix C.3 (Figures 16-19),
exactly over ``{+-1}^d`` when ``d <= 20`` (Monte Carlo beyond: the paper's ``d = 100``), from a teacher's
saved checkpoints.

The task (:func:`simulate.data.hierarchical_labels`, paper lines 811-825): a depth-``D`` binary tree
whose ``2^D - 1`` nodes (heap order: node 0 the root, children of ``j`` are ``2j + 1`` and ``2j + 2``)
are ``k``-sparse parities ``T_j(x) = prod_{i in S_j} x_i`` on disjoint supports; the class ``c`` in
``[0, 2^D)`` is the leaf reached, the root's decision its most significant bit. **Levels** here count
from the root: level 1 is the root, level ``D`` the parents of the leaves; class ``c`` meets the node
:func:`class_paths` ``[c, l - 1]`` at level ``l``. Figure 17 numbers the levels the other way (its "tree
levels 3, 2, and 1" of class 1 are the root ``x_1..x_5``, then ``x_6..x_10``, then ``x_16..x_20`` at
``D = 3``): the paper's level is ``D + 1 - l``.

Measurements per run, with ``p_c(x)`` the model's class probabilities (softmax of its logits):

* the Fourier coefficients ``m1[c, i] = E_x p_c(x) x_i``, ``m2[c, i, j] = E_x p_c(x) x_i x_j`` and
  ``mk[c, v] = E_x p_c(x) T_v(x)`` (Figure 17's correlations, "E_{x,y}[p_T(x)]_1 x_i", exact);
* per level ``l``: the in-support correlations of the class's own node at that level, averaged over
  the classes and the node's coordinates (``corr1_in_l{l}``: ``|m1[c, i]|``, i in ``S_{v_l(c)}``;
  ``corr2_in_l{l}``: ``|m2[c, i, j]|``, ``i < j`` in ``S_{v_l(c)}``; ``corrk_in_l{l}``: ``|mk[c, v_l(c)]|``)
  against the off-support ones, averaged over the classes (``corr1_off``: the irrelevant coordinates,
  in no node's support, Figure 17's ``x_36..x_100``; ``corr2_off``: the pairs with at least one
  irrelevant coordinate, Figure 17's "rest"; NaN when every coordinate is in a support);
* per level ``l``: the decision accuracy ``acc_l{l}``: how often the most probable prefix of ``l``
  decisions (the class probabilities summed over the classes that share it) is the true one;
  ``acc_l{D}`` is the test accuracy.

For the exact labelling function ``p_c = prod_l (1 + s_l T_{v_l(c)}) / 2`` (``s_l = +-1`` its branch):
``|mk[c, v_l(c)]| = 2^-D`` at every level and ``m1 = m2 = 0`` when ``k >= 3``; every accuracy is 1.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import pandas as pd
import torch

from infra.config import config_from_dict
from theory._checks import ParameterError, check_int

from .checkpoints import CheckpointDir
from .config import TeacherConfig, eval_chunk_rows
from .data import MAX_CUBE_DIM, full_cube, hierarchical_labels, sample_cube
from .model import MLPParams, forward
from .teacher import teacher_task

__all__ = ["class_paths", "irrelevant_coords", "LevelMoments", "cube_moments", "sample_moments", "level_summary",
           "params_levels",
           "checkpoint_levels"]

ProbFn = Callable[[torch.Tensor], torch.Tensor]  # x (n, d) -> class probabilities (R, n, C)


def _depth_of(supports: torch.Tensor) -> int:
    nodes = supports.shape[0]
    depth = (nodes + 1).bit_length() - 1
    if supports.dim() != 2 or 2**depth - 1 != nodes:
        raise ParameterError(f"supports must have shape (2^D - 1, k), got {tuple(supports.shape)}")
    return depth


def class_paths(depth: int) -> torch.Tensor:
    """``(2^D, D)`` long: row ``c`` holds the heap indices of the nodes from the root to leaf ``c``
    (the bits of ``c``, most significant first, are the decisions: right = 1)."""
    depth = check_int("depth", depth, 1, 16)
    paths = torch.zeros((2**depth, depth), dtype=torch.long)
    for c in range(2**depth):
        node = 0
        for level in range(depth):
            paths[c, level] = node
            node = 2 * node + 1 + ((c >> (depth - 1 - level)) & 1)
    return paths


def irrelevant_coords(supports: torch.Tensor, d: int) -> list[int]:
    """The coordinates of ``[d]`` in no node's support (sorted)."""
    used = set(torch.as_tensor(supports).reshape(-1).tolist())
    return [i for i in range(d) if i not in used]


@dataclass
class LevelMoments:
    """Exact moments of ``R`` runs' class probabilities over the cube: ``m1 (R, C, d)``,
    ``m2 (R, C, d, d)``, ``mk (R, C, 2^D - 1)`` (node parities), ``acc (R, D)`` (level accuracies)."""

    m1: torch.Tensor
    m2: torch.Tensor
    mk: torch.Tensor
    acc: torch.Tensor


def _accumulate(prob_fn: ProbFn, batches: Iterable[torch.Tensor], sup: torch.Tensor) -> LevelMoments:
    """Mean moments of ``prob_fn`` over the points of ``batches`` (each ``(n, d)``), sums in float64."""
    depth = _depth_of(sup)
    C = 2**depth
    sums: list[torch.Tensor] | None = None
    count = 0
    for x in batches:
        with torch.no_grad():
            p = prob_fn(x).to(torch.float64)  # (R, n, C)
        if p.dim() != 3 or p.shape[1] != len(x) or p.shape[2] != C:
            raise ParameterError(f"prob_fn must return (R, {len(x)}, {C}) probabilities, got {tuple(p.shape)}")
        x64 = x.to(torch.float64)
        label = hierarchical_labels(x, sup)
        right = []
        for level in range(1, depth + 1):
            shift = depth - level
            grouped = p.reshape(p.shape[0], p.shape[1], 2**level, 2**shift).sum(-1)  # prefixes of `level` bits
            right.append((grouped.argmax(-1) == (label >> shift)).sum(1).to(torch.float64))
        parts = [torch.einsum("rnc,ni->rci", p, x64), torch.einsum("rnc,ni,nj->rcij", p, x64, x64),
                 torch.einsum("rnc,nv->rcv", p, x64[:, sup].prod(-1)), torch.stack(right, 1)]
        sums = parts if sums is None else [a + b for a, b in zip(sums, parts)]
        count += len(x)
    return LevelMoments(*(v / count for v in sums))


def _check(d: int, supports) -> torch.Tensor:
    sup = torch.as_tensor(supports).long()
    _depth_of(sup)
    if int(sup.max()) >= d or int(sup.min()) < 0:
        raise ParameterError(f"supports must index coordinates of [0, {d}), got max {int(sup.max())}")
    return sup


def cube_moments(prob_fn: ProbFn, d: int, supports, *, chunk: int = 8192) -> LevelMoments:
    """:class:`LevelMoments` of ``prob_fn`` by enumeration of ``{+-1}^d`` (``d <= 20``) in chunks of
    ``chunk`` points. ``prob_fn``: ``x (n, d) -> (R, n, 2^D)`` class probabilities; ``supports``: the
    ``(2^D - 1, k)`` node supports."""
    d = check_int("d", d, 2, MAX_CUBE_DIM)
    chunk = check_int("chunk", chunk, 1)
    sup = _check(d, supports)
    cube = full_cube(d)
    return _accumulate(prob_fn, (cube[a:a + chunk] for a in range(0, len(cube), chunk)), sup)


def sample_moments(prob_fn: ProbFn, d: int, supports, *, n_samples: int, generator: torch.Generator,
                   chunk: int = 8192) -> LevelMoments:
    """Monte Carlo :class:`LevelMoments` over ``n_samples`` uniform points of ``{+-1}^d`` drawn with
    ``generator`` (for ``d > 20``, the paper's ``d = 100``; the standard error of each coefficient is at
    most ``n_samples^-1/2``)."""
    d = check_int("d", d, 2)
    n_samples = check_int("n_samples", n_samples, 1)
    chunk = check_int("chunk", chunk, 1)
    sup = _check(d, supports)
    batches = (sample_cube(min(chunk, n_samples - a), d, generator=generator) for a in range(0, n_samples, chunk))
    return _accumulate(prob_fn, batches, sup)


def level_summary(moments: LevelMoments, supports) -> list[dict[str, float]]:
    """One row per run (module doc): ``acc_l{l}``, ``corr1_in_l{l}``, ``corr2_in_l{l}``, ``corrk_in_l{l}``
    for ``l = 1..D``, and ``corr1_off``, ``corr1_off_max``, ``corr2_off`` (NaN without irrelevant coordinates)."""
    sup = torch.as_tensor(supports).long()
    depth = _depth_of(sup)
    R, C, d = moments.m1.shape
    paths = class_paths(depth)
    a1, a2, ak = moments.m1.abs(), moments.m2.abs(), moments.mk.abs()
    k = sup.shape[1]
    iu = torch.triu_indices(k, k, offset=1)
    out: dict[str, torch.Tensor] = {}
    cls = torch.arange(C)
    for level in range(1, depth + 1):
        nodes = paths[:, level - 1]  # (C,)
        coords = sup[nodes]  # (C, k)
        out[f"acc_l{level}"] = moments.acc[:, level - 1]
        out[f"corr1_in_l{level}"] = a1[:, cls[:, None], coords].mean((1, 2))
        if k >= 2:
            pairs = a2[:, cls[:, None], coords[:, iu[0]], coords[:, iu[1]]]  # (R, C, k(k-1)/2)
            out[f"corr2_in_l{level}"] = pairs.mean((1, 2))
        else:
            out[f"corr2_in_l{level}"] = torch.full((R,), float("nan"), dtype=torch.float64)
        out[f"corrk_in_l{level}"] = ak[:, cls, nodes].mean(1)
    off = irrelevant_coords(sup, d)
    nan = torch.full((R,), float("nan"), dtype=torch.float64)
    if off:
        out["corr1_off"] = a1[:, :, off].mean((1, 2))
        out["corr1_off_max"] = a1[:, :, off].amax((1, 2))
        irr = torch.zeros(d, dtype=torch.bool)
        irr[off] = True
        i, j = torch.triu_indices(d, d, offset=1)
        rest = irr[i] | irr[j]
        out["corr2_off"] = a2[:, :, i[rest], j[rest]].mean((1, 2))
    else:
        out["corr1_off"] = out["corr1_off_max"] = out["corr2_off"] = nan
    return [{key: float(v[r]) for key, v in out.items()} for r in range(R)]


def params_levels(params: MLPParams, supports, *, n_samples: int = 1 << 16, seed: int = 0) -> list[dict[str, float]]:
    """:func:`level_summary` of the ``R`` runs of an MLP (its logits' softmax): exact over ``{+-1}^d`` when
    ``d <= 20``, else over ``n_samples`` uniform points of a CPU generator seeded with ``seed``."""
    rows = eval_chunk_rows(params.runs, params.width)
    fn = lambda x: torch.softmax(forward(params, x.to(params.W.dtype)).to(torch.float64), dim=-1)  # noqa: E731
    if params.dim <= MAX_CUBE_DIM:
        moments = cube_moments(fn, params.dim, supports, chunk=rows)
    else:
        moments = sample_moments(fn, params.dim, supports, n_samples=n_samples, chunk=rows,
                                 generator=torch.Generator().manual_seed(seed))
    return level_summary(moments, supports)


def checkpoint_levels(run_dir, *, steps: Sequence[int] | None = None, n_samples: int = 1 << 16) -> pd.DataFrame:
    """The level-wise measurements of a hierarchical teacher's saved checkpoints (``run_dir`` of
    :func:`simulate.teacher.train_teacher` with ``task="hierarchical"``): one row per (checkpoint ``step``,
    ``run``) with ``seed`` and the columns of :func:`level_summary`; exact when ``d <= 20``, else Monte
    Carlo over the same ``n_samples`` points at every checkpoint. ``steps``: the checkpoints to measure
    (default: every saved one)."""
    run_dir = Path(run_dir)
    cfg = config_from_dict(TeacherConfig, json.loads((run_dir / "config.json").read_text()))
    if cfg.task != "hierarchical":
        raise ParameterError(f"teacher {run_dir} must be of task hierarchical, got {cfg.task!r}")
    supports = torch.tensor(teacher_task(cfg).description["supports"])
    ck = CheckpointDir(run_dir / "ckpt", d=cfg.d, width=cfg.width, classes=2**cfg.depth, runs=len(cfg.seeds))
    saved = ck.steps()
    todo = saved if steps is None else sorted(set(int(s) for s in steps))
    missing = sorted(set(todo) - set(saved))
    if missing:
        raise ParameterError(f"steps must be saved checkpoints of {run_dir}; missing {missing[:5]}")
    rows = []
    for step in todo:
        params = ck.load(step, device="cpu").params
        for run, row in enumerate(params_levels(params, supports, n_samples=n_samples)):
            rows.append({"step": step, "run": run, "seed": cfg.seeds[run], **row})
    return pd.DataFrame(rows)
