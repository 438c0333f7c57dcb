"""n-gram progress measures of Section 4.1.1 (eqs. 5, 6) and Appendix E (eqs. 11, 12).

A model is a callable ``predict(tokens (B, T) long, valid (B, T) bool) -> probs (R, B, T, C)``:
the output distribution over the ``C`` terminals at every position, for each of ``R`` runs on
the same inputs. ``TV(p, q) = 0.5 * sum_c |p_c - q_c|`` (a number in [0, 1]). Each measure is
evaluated at randomly sampled (sentence, position) pairs and summarised by its per-run median,
as the paper reports (Figure 4, 5, 22). All variants of all pairs go through ``predict`` in one
batched call, chunked by ``batch_size`` rows.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch

from theory._checks import ParameterError, check_choice, check_int

__all__ = [
    "tv_distance", "ngram_window", "ngram_bounds", "ngram_mask", "sample_positions",
    "masked_lm_measures", "autoregressive_measures",
]

Predict = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def tv_distance(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Total variation 0.5 * sum |p - q| over the last axis (probabilities; exact 0 if p == q)."""
    return 0.5 * (p - q).abs().sum(-1)


def ngram_window(i: int, n: int, length: int) -> tuple[int, int]:
    """Definition 4.2, 0-based: n-gram(i) = {j : lo <= j <= hi} with
    lo = max(i - ceil((n-1)/2), 0), hi = min(i + floor((n-1)/2), length - 1).

    (The paper's upper clip ``h`` is one past the last index of its 1-based [h]; 0-based it is
    ``length - 1``.) Returns (lo, hi), both inclusive."""
    length = check_int("length", length, 1)
    i = check_int("i", i, 0, length - 1)
    n = check_int("n", n, 1)
    return max(i - math.ceil((n - 1) / 2), 0), min(i + (n - 1) // 2, length - 1)


def ngram_bounds(i: torch.Tensor, n: int, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Vectorised :func:`ngram_window`: positions ``i`` (P,) long, sentence ``lengths`` (P,) long."""
    n = check_int("n", n, 1)
    lo = (i - math.ceil((n - 1) / 2)).clamp(min=0)
    hi = torch.minimum(i + (n - 1) // 2, lengths - 1)
    return lo, hi


def ngram_mask(i: torch.Tensor, n: int, lengths: torch.Tensor, t: int) -> torch.Tensor:
    """(P, t) bool: True at the positions of n-gram(i) (Definition 4.2), ``i`` included."""
    lo, hi = ngram_bounds(i, n, lengths)
    j = torch.arange(t, device=i.device)
    return (j >= lo[:, None]) & (j <= hi[:, None])


def sample_positions(eligible: torch.Tensor, k: int, generator: torch.Generator):
    """Up to ``k`` positions per sentence, uniformly without replacement among ``eligible`` (N, T).

    Random keys come from ``generator`` (on its own device) and move to the device of ``eligible``.
    Returns (sentence (P,), position (P,)) long tensors, sentences in increasing order."""
    k = check_int("positions_per_sentence", k, 1)
    n, t = eligible.shape
    keys = torch.rand(n, t, generator=generator, device=generator.device).to(eligible.device)
    keys = keys.masked_fill(~eligible, 2.0)
    k = min(k, t)
    pos = keys.argsort(dim=1)[:, :k]                                   # (N, k)
    keep = torch.arange(k, device=eligible.device) < eligible.sum(1, keepdim=True)
    sent = torch.arange(n, device=eligible.device)[:, None].expand(n, k)
    return sent[keep], pos[keep]


def _probs_at(predict: Predict, tokens, valid, at, batch_size: int) -> torch.Tensor:
    """Run ``predict`` on rows (M, T) in chunks; return the distributions at ``at`` (M,): (R, M, C)."""
    out = []
    for s in range(0, tokens.shape[0], batch_size):
        tk, vd, a = tokens[s:s + batch_size], valid[s:s + batch_size], at[s:s + batch_size]
        probs = predict(tk, vd)                                         # (R, b, T, C)
        out.append(probs[:, torch.arange(tk.shape[0], device=probs.device), a.to(probs.device)])
    return torch.cat(out, dim=1)


def _summarise(values: dict[str, torch.Tensor], pairs, return_raw: bool) -> dict:
    out: dict = {}
    for key, v in values.items():                                      # v: (R, P)
        arr = v.detach().double().cpu().numpy()
        out[key] = np.median(arr, axis=1)
        if return_raw:
            out[f"raw_{key}"] = arr
    if return_raw:
        out["pairs"] = torch.stack(pairs, 1).cpu().numpy()
    return out


def _check_inputs(tokens, valid, ns):
    if tokens.dim() != 2 or valid.shape != tokens.shape:
        raise ParameterError(f"tokens and valid must both have shape (N, T), got "
                             f"{tuple(tokens.shape)} and {tuple(valid.shape)}")
    if len(ns) == 0:
        raise ParameterError("ns must name at least one n-gram length, got ()")
    return [check_int("n", n, 1) for n in ns]


def masked_lm_measures(
    predict: Predict,
    tokens: torch.Tensor,
    valid: torch.Tensor,
    *,
    ns: Sequence[int] = (3, 5, 7),
    positions_per_sentence: int = 4,
    generator: torch.Generator,
    mask_id: int,
    sentence: torch.Tensor | None = None,
    batch_size: int = 512,
    return_raw: bool = False,
) -> dict:
    """M_robust (eq. 5) and M_close (eq. 6) of a masked-LM (BERT) model, per-run medians.

    ``tokens`` (N, T) long, ``valid`` (N, T) bool. ``sentence`` (N, T) bool marks the positions that
    belong to the sentence (default ``valid``; pass it to keep e.g. a [BOS] slot out): positions
    ``i`` are sampled among them and only they are ever replaced by ``mask_id``; with a sentence
    occupying positions 0..h-1 the windows are exactly Definition 4.2. For each pair (x, i):

    (a) ``x_{\\{i}}``: only ``i`` masked;
    (b) ``x_{\\n-gram(i)}``: every position of n-gram(i) masked (eq. 5);
    (c) ``x_{n-gram(i)\\{i}}``: every sentence position outside n-gram(i), and ``i`` itself, masked;
        the sequence keeps its length and positions ("only the n-gram visible", our reading of eq. 6).

    M_robust(n) = TV(p_a(i), p_b(i)), M_close(n) = TV(p_a(i), p_c(i)). Returns ``m_robust_{n}``,
    ``m_close_{n}``: numpy arrays (R,) of medians over pairs; with ``return_raw`` also
    ``raw_m_robust_{n}`` / ``raw_m_close_{n}`` (R, P) and ``pairs`` (P, 2) (sentence, position).
    """
    ns = _check_inputs(tokens, valid, ns)
    batch_size = check_int("batch_size", batch_size, 1)
    sentence = valid if sentence is None else sentence & valid
    s_idx, i_idx = sample_positions(sentence, positions_per_sentence, generator)
    p, t = s_idx.numel(), tokens.shape[1]
    if p == 0:
        raise ParameterError("tokens must hold at least one valid position, got none")
    x, vd, sent = tokens[s_idx], valid[s_idx], sentence[s_idx]          # (P, T)
    lengths = sent.sum(1)
    at_i = torch.arange(t, device=tokens.device)[None] == i_idx[:, None]
    rows, masks = [], [at_i]
    for n in ns:
        win = ngram_mask(i_idx, n, lengths, t)
        masks += [win & sent, (~win & sent) | at_i]
    rows = torch.cat([x.masked_fill(m, mask_id) for m in masks])        # ((1 + 2|ns|) P, T)
    probs = _probs_at(predict, rows, vd.repeat(len(masks), 1), i_idx.repeat(len(masks)), batch_size)
    pa = probs[:, :p]
    values = {}
    for j, n in enumerate(ns):
        values[f"m_robust_{n}"] = tv_distance(pa, probs[:, (1 + 2 * j) * p:(2 + 2 * j) * p])
        values[f"m_close_{n}"] = tv_distance(pa, probs[:, (2 + 2 * j) * p:(3 + 2 * j) * p])
    return _summarise(values, (s_idx, i_idx), return_raw)


def _compact(seq: torch.Tensor, keep: torch.Tensor, pad_id: int):
    """Move the kept entries of each row of ``seq`` (M, L) to the left, in order; pad the rest.
    Returns (tokens (M, L'), valid (M, L'), last index (M,)) with L' the longest kept row."""
    order = (~keep).to(torch.int8).argsort(dim=1, stable=True)
    count = keep.sum(1)
    width = int(count.max())
    tok = seq.gather(1, order)[:, :width]
    vd = torch.arange(width, device=seq.device)[None] < count[:, None]
    return tok.masked_fill(~vd, pad_id), vd, count - 1


def autoregressive_measures(
    predict: Predict,
    tokens: torch.Tensor,
    valid: torch.Tensor,
    *,
    ns: Sequence[int] = (3, 5, 7),
    positions_per_sentence: int = 4,
    generator: torch.Generator,
    bos_id: int,
    pad_id: int | None = None,
    batch_size: int = 512,
    return_raw: bool = False,
    context: str = "attention-mask",
) -> dict:
    """Causal (GPT) variants of Appendix E, per-run medians.

    ``tokens`` (N, T) are sentences WITHOUT [BOS], right-padded, ``valid`` (N, T) bool their mask;
    ``bos_id`` is prepended. 1-based, a sampled end ``e`` (uniform among a sentence's positions whose
    next token ``x_{e+1}`` exists, the positions the model is trained to predict from) gives the full
    prefix ``[BOS] x_1..x_e`` (at most T slots, the model's length); ``p(.)`` is the next-token
    distribution at its last slot.

    * eq. 11, M_close(n) = TV(p(x_{1:e}), p(x_{e-n+2:e})): the second sees only [BOS] and the
      n - 1 tokens before the predicted x_{e+1} (eq. 11 with i = e + 1; the prose of
      App. E says positions i-n+2..i-1 instead, we follow the equation and the n-gram definition
      i - n < j < i). Clipped at x_1 (then the two inputs coincide and the value is 0).
    * eq. 12 "skip n-gram", M_robust(n) = TV(p(x_{1:e}), p(x_{1..e-n+1}, x_e)): the n - 2 tokens
      x_{e-n+2..e-1} removed, x_e kept (eq. 12 with i = e).

    ``context`` says how a token is removed. ``"attention-mask"`` (default, footnote 15 of App. E:
    "others are simply masked out during attention score computation to avoid shifts in position
    embeddings"): every variant keeps the full prefix and its positions; removed tokens become
    ``pad_id`` with ``valid = False``, so the model's attention skips them. ``"subsequence"``: the
    kept tokens form a shorter sequence (the literal reading of eqs. 11-12; positions shift).
    ``pad_id`` fills removed and padding slots (default ``bos_id``). Returns ``m_robust_{n}`` and
    ``m_close_{n}`` (R,), with ``return_raw`` also the (R, P) values and ``pairs`` (P, 2)
    (sentence, 0-based index e - 1 of the last context token).
    """
    ns = _check_inputs(tokens, valid, ns)
    batch_size = check_int("batch_size", batch_size, 1)
    pad_id = bos_id if pad_id is None else pad_id
    has_next = torch.zeros_like(valid)
    has_next[:, :-1] = valid[:, :-1] & valid[:, 1:]                     # x_{e+1} exists: e <= length - 1
    s_idx, last = sample_positions(has_next, positions_per_sentence, generator)
    p, t = s_idx.numel(), tokens.shape[1]
    if p == 0:
        raise ParameterError("tokens must hold a sentence of at least two tokens, got none")
    bos = torch.full((p, 1), bos_id, dtype=tokens.dtype, device=tokens.device)
    seq = torch.cat([bos, tokens[s_idx, :t - 1]], 1)                    # (P, T); x_j at slot j, j < T
    e = (last + 1)[:, None]                                             # 1-based end, e <= T - 1
    j = torch.arange(t, device=tokens.device)[None]
    prefix = j <= e                                                     # [BOS] x_1..x_e
    keeps = [prefix]
    for n in ns:
        keeps.append((j == 0) | ((j >= e - n + 2) & (j <= e)))          # eq. 11
        keeps.append(prefix & ((j <= e - n + 1) | (j == e) | (j == 0)))  # eq. 12
    context = check_choice("context", context, ("attention-mask", "subsequence"))
    if context == "subsequence":
        rows, vd, at = _compact(seq.repeat(len(keeps), 1), torch.cat(keeps), pad_id)
    else:
        vd = torch.cat(keeps)
        rows = seq.repeat(len(keeps), 1).masked_fill(~vd, pad_id)
        at = e[:, 0].repeat(len(keeps))
    probs = _probs_at(predict, rows, vd, at, batch_size)
    pa = probs[:, :p]
    values = {}
    for k, n in enumerate(ns):
        values[f"m_close_{n}"] = tv_distance(pa, probs[:, (1 + 2 * k) * p:(2 + 2 * k) * p])
        values[f"m_robust_{n}"] = tv_distance(pa, probs[:, (2 + 2 * k) * p:(3 + 2 * k) * p])
    return _summarise(values, (s_idx, last), return_raw)
