"""Training objectives of the Transformer experiments, as small pure functions.

* Masked prediction (Definition 4.1): every valid position is masked with probability ``p``; a
  masked position's input becomes ``[mask]`` (80%), a uniformly random terminal (10%) or stays
  (10%). :func:`mask_tokens`.
* Every loss is a weighted sum over positions, ``sum_{b,t} w[b,t] loss(b,t)``, with the weights
  of :func:`per_sequence_weights`: ``1 / (|M_b| N)`` on the selected positions ``M_b`` of sequence
  ``b`` (the masked ones, eq. (3)-(4); the level-l boundary tokens, eq. (9)-(10); the read-out
  position of parity), so each sequence counts equally and the result is the batch mean of the
  per-sequence averages of the paper.
* :func:`weighted_ce` is eq. (3)/(9) (``KL(e_y || p_S) = CE``); :func:`weighted_kl` is eq. (4)/(10),
  ``KL(p_T^tau || p_S)`` with the teacher's temperature ``tau`` (0: its argmax label) and an
  optional top-k truncation of the teacher's logits (the memory-saving form for large vocabularies).

Shapes: runs ``R``, sequences ``B``, positions ``T``, classes ``C``.
"""
from __future__ import annotations

import torch

from simulate.losses import cross_entropy, distill_kl
from theory._checks import ParameterError, check_int, check_real

__all__ = ["mask_tokens", "per_sequence_weights", "weighted_ce", "weighted_kl", "weighted_accuracy",
           "truncate_top_k"]


def mask_tokens(
    tokens: torch.Tensor, valid: torch.Tensor, *, rate: float, n_terminals: int, mask_id: int,
    generator: torch.Generator, replace: tuple[float, float] = (0.8, 0.1),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Definition 4.1: ``(inputs, masked)`` for ``tokens`` / ``valid`` of shape ``(B, T)``.

    ``masked[b, t]`` (bool) with probability ``rate`` on valid positions; a masked input is
    ``mask_id`` with probability ``replace[0]``, a uniform terminal in ``[0, n_terminals)`` with
    probability ``replace[1]``, else unchanged. Drawn on the generator's device.
    """
    rate = check_real("mask_rate", rate, 0, 1, lo_open=True)
    n_terminals = check_int("n_terminals", n_terminals, 1)
    p_mask, p_rand = replace
    if p_mask < 0 or p_rand < 0 or p_mask + p_rand > 1:
        raise ParameterError(f"replace must be two probabilities with sum <= 1, got {replace}")
    dev = generator.device
    u = torch.rand(tokens.shape, generator=generator, device=dev)
    v = torch.rand(tokens.shape, generator=generator, device=dev)
    rand_tok = torch.randint(0, n_terminals, tokens.shape, generator=generator, device=dev)
    tokens, valid = tokens.to(dev), valid.to(dev)
    masked = (u < rate) & valid
    inputs = torch.where(masked & (v < p_mask), torch.full_like(tokens, mask_id), tokens)
    inputs = torch.where(masked & (v >= p_mask) & (v < p_mask + p_rand), rand_tok, inputs)
    return inputs, masked


def per_sequence_weights(selected: torch.Tensor) -> torch.Tensor:
    """``w[..., b, t] = selected / (|M_b| * B)`` (0 for a sequence with nothing selected); float32.

    ``selected``: bool ``(..., B, T)``. Summing ``w * loss`` gives the mean over sequences of the
    per-sequence average over selected positions (eqs. (3), (4), (9), (10)).
    """
    sel = selected.to(torch.float32)
    count = sel.sum(-1, keepdim=True).clamp_min(1.0)
    return sel / count / selected.shape[-2]


def _check(logits: torch.Tensor, weights: torch.Tensor) -> None:
    if logits.dim() != 4:
        raise ParameterError(f"logits must have shape (R, B, T, C), got {tuple(logits.shape)}")
    if weights.shape[-2:] != logits.shape[1:3]:
        raise ParameterError(f"weights of shape {tuple(weights.shape)} do not match logits {tuple(logits.shape)}")


def weighted_ce(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per-run ``sum_{b,t} w[b,t] (-log softmax(logits)[b,t,y])`` (eq. (3)); returns ``(R,)``.

    ``targets`` long ``(B, T)`` or ``(R, B, T)`` (any value where the weight is 0), ``weights``
    ``(B, T)`` or ``(R, B, T)``.
    """
    _check(logits, weights)
    nll = cross_entropy(logits.float(), targets.clamp(0, logits.shape[-1] - 1), reduction="none")
    return (nll * weights).sum((-2, -1))


def truncate_top_k(logits: torch.Tensor, k: int) -> torch.Tensor:
    """The logits with all but the ``k`` largest per position set to ``-inf`` (``k = 0``: unchanged)."""
    k = check_int("top_k", k, 0)
    if k == 0 or k >= logits.shape[-1]:
        return logits
    kth = logits.topk(k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def weighted_kl(
    logits: torch.Tensor, teacher_logits: torch.Tensor, weights: torch.Tensor, *, tau: float = 1.0,
    top_k: int = 0,
) -> torch.Tensor:
    """Per-run ``sum_{b,t} w[b,t] KL(p_T^tau || p_S)`` (eq. (4)/(10)); returns ``(R,)``.

    ``teacher_logits`` ``(R, B, T, C)`` (or broadcastable); ``tau = 0`` is the teacher's argmax
    label. With ``top_k > 0`` the teacher's distribution is renormalized over its top-k classes.
    """
    _check(logits, weights)
    kl = distill_kl(logits.float(), truncate_top_k(teacher_logits.float(), top_k), tau, reduction="none")
    return (kl * weights).sum((-2, -1))


def weighted_accuracy(logits: torch.Tensor, targets: torch.Tensor, selected: torch.Tensor) -> torch.Tensor:
    """Per-run top-1 accuracy over all selected positions (token average); returns ``(R,)``."""
    hit = (logits.argmax(-1) == targets) & selected
    return hit.sum((-2, -1)).float() / selected.sum((-2, -1)).clamp_min(1).float()
