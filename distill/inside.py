"""The inside algorithm for layered PCFGs with general emission weights, and masked posteriors.

For a sentence position t with emission weights ``e[t, v] >= 0`` (one-hot for an observed token,
all-ones for a wildcard / masked position) the inside score of NT A over the span [i, j) is

    beta(A, i, j) = sum over derivations A =>* v_i .. v_{j-1} of P(derivation) * prod_t e[t, v_t],

i.e. ``P(A =>* x_i..x_{j-1})`` for one-hot weights (the dynamic programme of Appendix D.1 /
Zhao et al. 2023). Layered grammars (Definition 4.3) make this cheap: an NT of level l spans
between ``grammar.level_span(l)`` tokens, so each level only stores those span lengths, and it is
built from the level below only. Rules of length k > 2 are binarized left to right through
intermediate prefix tables (O(T * W^2) per rule and level, never O(T^4)).

Numerics: tables are kept in log space (float64); each split-point sum is done in linear space
after subtracting a per-(start, right-start) maximum, which is exact up to rounding as long as
the inside scores of spans sharing a start position within one level differ by less than e^700.
The normalizing constants are detached: the computed function does not depend on them, so
gradients are exact, and :func:`masked_posterior` gets the inside-outside marginals
``d log Z / d log e[t, v]`` by autograd instead of an explicit outside pass.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F

from theory._checks import ParameterError, check_int

from .grammar import Grammar

__all__ = ["InsideResult", "inside", "sentence_log_prob", "span_log_prob", "masked_posterior"]

NEG_INF = float("-inf")


@dataclass(frozen=True)
class InsideResult:
    """Log inside scores of a batch of B sentences padded to T positions.

    tables[l]  (B, n_l, S_l, W_l): ``tables[l][b, a, i, w] = log beta(levels[l][a], i, i + min_len[l] + w)``
               for sentence b; -inf for impossible spans and spans past the sentence end.
               S_0 = 1 (the root only spans from position 0), S_l = T for l >= 1.
    min_len[l] shortest span of level l (``grammar.level_span(l)[0]``).
    lengths    (B,) sentence lengths.
    log_z      (B,) log beta(start, 0, length): log P(x) for one-hot emissions.
    """

    tables: tuple[torch.Tensor, ...]
    min_len: tuple[int, ...]
    lengths: torch.Tensor
    log_z: torch.Tensor


@dataclass(frozen=True)
class _LevelPlan:
    """Rules of one level, binarized. ``steps[s-2] = (left, right)``: the s-prefixes (s >= 2),
    ``left`` indexing the (s-1)-prefixes (for s = 2 the children) and ``right`` the children.
    ``groups``: per rule length k, ``(k, prefix index of each rule, log prob of each rule)``;
    ``slots`` (n_l, max_rules): position of each NT's rules in the concatenated groups
    (``n_rules`` = dummy -inf slot)."""

    steps: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]
    groups: tuple[tuple[int, tuple[int, ...], tuple[float, ...]], ...]
    slots: tuple[tuple[int, ...], ...]
    n_rules: int


@lru_cache(maxsize=64)
def _plan(grammar: Grammar) -> tuple[_LevelPlan, ...]:
    plans = []
    D = grammar.depth
    for l, names in enumerate(grammar.levels):
        kids = grammar.terminals if l == D - 1 else grammar.levels[l + 1]
        kid = {s: i for i, s in enumerate(kids)}
        rules = [(a, tuple(kid[s] for s in rhs), p) for a in names for rhs, p in grammar.rules[a]]
        K = max(len(c) for _, c, _ in rules)
        prefix: list[dict[tuple[int, ...], int]] = [{(c,): c for c in range(len(kids))}]
        steps = []
        for s in range(2, K + 1):
            ids = {}
            for _, c, _ in rules:
                if len(c) >= s and c[:s] not in ids:
                    ids[c[:s]] = len(ids)
            prefix.append(ids)
            steps.append((tuple(prefix[-2][c[:-1]] for c in ids), tuple(c[-1] for c in ids)))
        groups, order = [], {}
        for k in range(1, K + 1):
            members = [r for r in rules if len(r[1]) == k]
            if members:
                for r in members:
                    order[id(r)] = len(order)
                groups.append((k, tuple(prefix[k - 1][c] for _, c, _ in members),
                               tuple(math.log(p) for _, _, p in members)))
        R = max(len(grammar.rules[a]) for a in names)
        slots = [[order[id(r)] for r in rules if r[0] == a] for a in names]
        slots = tuple(tuple(s + [len(rules)] * (R - len(s))) for s in slots)
        plans.append(_LevelPlan(tuple(steps), tuple(groups), slots, len(rules)))
    return tuple(plans)


def _safe_log(x: torch.Tensor) -> torch.Tensor:
    """log x with log 0 = -inf and finite gradients everywhere."""
    pos = x > 0
    return torch.where(pos, torch.log(torch.where(pos, x, torch.ones_like(x))), NEG_INF)


def _logsumexp(x: torch.Tensor, dim: int) -> torch.Tensor:
    """logsumexp whose gradient stays finite (zero) when every term is -inf."""
    m = x.detach().amax(dim, keepdim=True)
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
    return _safe_log(torch.exp(x - m).sum(dim)) + m.squeeze(dim)


class _BandProduct(torch.autograd.Function):
    """``out[b,p,i,w+v] = sum_w a[b,p,i,w] * r[b,p,m+i+w,v]`` for a (B,P,S,WL), r (B,P,>=m+S+WL-1,WR).

    One loop over the WL split offsets; the hand-written backward keeps the same cost (autograd
    through sliced in-place updates would copy whole tensors per offset)."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, r: torch.Tensor, m: int) -> torch.Tensor:
        B, P, S, WL = a.shape
        WR = r.shape[3]
        out = a.new_zeros(B, P, S, WL + WR - 1)
        for w in range(WL):
            out[..., w:w + WR].addcmul_(a[..., w, None], r[:, :, m + w:m + w + S])
        ctx.save_for_backward(a, r)
        ctx.m = m
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: torch.Tensor):
        a, r = ctx.saved_tensors
        m, (S, WL), WR = ctx.m, a.shape[2:], r.shape[3]
        grad_a = torch.empty_like(a)
        grad_r = torch.zeros_like(r)
        for w in range(WL):
            gw = g[..., w:w + WR]
            grad_a[..., w] = (gw * r[:, :, m + w:m + w + S]).sum(-1)
            grad_r[:, :, m + w:m + w + S].addcmul_(a[..., w, None], gw)
        return grad_a, grad_r, None


def _combine(left: torch.Tensor, right: torch.Tensor, m_left: int, width: int) -> torch.Tensor:
    """Concatenate spans: ``out[b,p,i,u] = log sum_{w+v=u} exp(left[b,p,i,w] + right[b,p,i+m_left+w,v])``.

    left (B, P, S, WL): log scores of spans [i, i + m_left + w); right (B, P, T, WR): log scores of
    spans [j, j + m_right + v). Returns (B, P, S, width) for lengths m_left + m_right + u, u < width.
    """
    B, P, S, WL = left.shape
    T = right.shape[2]
    need = m_left + S + WL - 1
    with torch.no_grad():
        rmax = right.amax(3)  # (B, P, T)
        rmax_sh = F.pad(rmax, (0, max(0, need - T)), value=NEG_INF)[:, :, m_left:need].unfold(2, WL, 1)
        m = (left + rmax_sh).amax(3)  # (B, P, S): best log score over splits, for normalization
        m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))
        rsafe = torch.where(torch.isfinite(rmax), rmax, torch.zeros_like(rmax))
    l_lin = torch.exp(left + (rmax_sh - m[..., None]))  # in [0, 1]
    r_lin = F.pad(torch.exp(right - rsafe[..., None]), (0, 0, 0, max(0, need - T)))  # in [0, 1]
    out = _BandProduct.apply(l_lin, r_lin, m_left)
    out = out[..., :width] if width <= out.shape[3] else F.pad(out, (0, width - out.shape[3]))
    return _safe_log(out) + m[..., None]


def _place(x: torch.Tensor, x_min: int, p_min: int, width: int) -> torch.Tensor:
    """Re-index the last dim from lengths ``x_min + w`` to ``p_min + w'`` (w' < width), -inf-padded."""
    shift = x_min - p_min
    W = x.shape[3]
    if shift >= width or shift + W <= 0:
        return x.new_full(x.shape[:3] + (width,), NEG_INF)
    return F.pad(x, (shift, width - W - shift), value=NEG_INF)


def inside(grammar: Grammar, emissions: torch.Tensor, lengths: torch.Tensor | None = None, *,
           log_emissions: bool = False, dtype: torch.dtype = torch.float64) -> InsideResult:
    """Log inside scores of every span of every NT (see :class:`InsideResult`).

    emissions (B, T, n_terminals): weights ``e[b, t, v] >= 0`` (or their logs if ``log_emissions``);
    lengths (B,) in [1, T] (default T). Runs on the device of ``emissions``; differentiable.
    """
    if emissions.dim() != 3 or emissions.shape[2] != len(grammar.terminals):
        raise ParameterError(f"emissions must have shape (B, T, {len(grammar.terminals)}), got "
                             f"{tuple(emissions.shape)}")
    B, T, _ = emissions.shape
    check_int("sequence length T", T, 1)
    dev = emissions.device
    if lengths is None:
        lengths = torch.full((B,), T, dtype=torch.long, device=dev)
    if lengths.shape != (B,) or bool(((lengths < 1) | (lengths > T)).any()):
        raise ParameterError(f"lengths must be a (B,) = ({B},) tensor with values in [1, {T}], got {lengths}")
    if not log_emissions and bool((emissions < 0).any()):
        raise ParameterError("emissions must be non-negative weights (pass log_emissions=True for logs)")
    log_e = emissions.to(dtype) if log_emissions else emissions.to(dtype).log()
    valid = torch.arange(T, device=dev)[None, :] < lengths.to(dev)[:, None]
    child = torch.where(valid[..., None], log_e, NEG_INF).permute(0, 2, 1)[..., None]  # (B, V, T, 1)
    c_min = 1
    tables, mins = [], []
    for l in range(grammar.depth - 1, -1, -1):
        plan = _plan(grammar)[l]
        p_min, p_max = grammar.level_span(l)
        S = 1 if l == 0 else T
        width = max(1, min(p_max, T) - p_min + 1)
        prefixes, pmins = [child[:, :, :S]], [c_min]
        for left_idx, right_idx in plan.steps:
            li = torch.tensor(left_idx, device=dev)
            ri = torch.tensor(right_idx, device=dev)
            pm = pmins[-1] + c_min
            natural = prefixes[-1].shape[3] + child.shape[3] - 1
            prefixes.append(_combine(prefixes[-1].index_select(1, li), child.index_select(1, ri), pmins[-1],
                                     max(1, min(natural, T - pm + 1))))
            pmins.append(pm)
        parts = []
        for k, idx, logp in plan.groups:
            x = prefixes[k - 1].index_select(1, torch.tensor(idx, device=dev))
            lp = torch.tensor(logp, dtype=dtype, device=dev)[None, :, None, None]
            parts.append(_place(x, pmins[k - 1], p_min, width) + lp)
        parts.append(child.new_full((B, 1, S, width), NEG_INF))
        slots = torch.tensor(plan.slots, device=dev)
        allr = torch.cat(parts, 1).index_select(1, slots.view(-1)).view(B, *slots.shape, S, width)
        child, c_min = _logsumexp(allr, 2), p_min
        tables.append(child)
        mins.append(p_min)
    tables.reverse()
    mins.reverse()
    res = InsideResult(tuple(tables), tuple(mins), lengths, torch.zeros(B, dtype=dtype, device=dev))
    z = span_log_prob(res, 0, 0, 0, lengths)
    return InsideResult(res.tables, res.min_len, lengths, z)


def span_log_prob(result: InsideResult, level: int, nt_index: int, start, stop) -> torch.Tensor:
    """(B,) log beta(levels[level][nt_index], start, stop); start/stop are ints or (B,) tensors.
    Spans outside the stored range (wrong length for the level, past the end, level 0 not at 0)
    give -inf."""
    level = check_int("level", level, 0, len(result.tables) - 1)
    tab = result.tables[level]
    B, n, S, W = tab.shape
    nt_index = check_int("nt_index", nt_index, 0, n - 1)
    dev = tab.device
    start = torch.as_tensor(start, device=dev).expand(B)
    w = torch.as_tensor(stop, device=dev).expand(B) - start - result.min_len[level]
    ok = (start >= 0) & (start < S) & (w >= 0) & (w < W)
    vals = tab[torch.arange(B, device=dev), nt_index, start.clamp(0, S - 1), w.clamp(0, W - 1)]
    return torch.where(ok, vals, torch.full_like(vals, NEG_INF))


def _log_onehot(grammar: Grammar, tokens: torch.Tensor, lengths: torch.Tensor,
                wild: torch.Tensor, dtype) -> torch.Tensor:
    """(B, T, V) log emissions: 0 at the observed token, -inf elsewhere; all 0 where ``wild``."""
    V = len(grammar.terminals)
    valid = torch.arange(tokens.shape[1], device=tokens.device)[None, :] < lengths[:, None]
    bad = valid & ~wild & ((tokens < 0) | (tokens >= V))
    if bool(bad.any()):
        raise ParameterError(f"tokens must be terminal ids in [0, {V - 1}] (or mask id {V}) within each "
                             f"sentence, got {tokens[bad][:5].tolist()}")
    onehot = F.one_hot(tokens.clamp(0, V - 1), V).bool() | wild[..., None]
    zero = torch.zeros((), dtype=dtype, device=tokens.device)
    return torch.where(onehot, zero, NEG_INF)


def sentence_log_prob(grammar: Grammar, tokens: torch.Tensor, lengths: torch.Tensor | None = None
                      ) -> torch.Tensor:
    """(B,) log P(x) of token-id sentences (B, T); the mask id acts as a wildcard (summed over)."""
    if tokens.dim() != 2:
        raise ParameterError(f"tokens must have shape (B, T), got {tuple(tokens.shape)}")
    if lengths is None:
        lengths = torch.full((tokens.shape[0],), tokens.shape[1], dtype=torch.long, device=tokens.device)
    wild = tokens == grammar.vocab.mask_id
    log_e = _log_onehot(grammar, tokens, lengths, wild, torch.float64)
    return inside(grammar, log_e, lengths, log_emissions=True).log_z


def masked_posterior(grammar: Grammar, tokens: torch.Tensor, lengths: torch.Tensor, masked: torch.Tensor,
                     *, chunk: int = 16) -> torch.Tensor:
    """Exact P(x_t = v | visible tokens) for every masked position: (B, T, n_terminals) float64.

    Computed as ``d log Z / d log e[b, t, v]`` with all-ones emissions at masked positions (the
    inside-outside identity). Unmasked positions get the one-hot of their token, padding zeros,
    and sentences whose visible tokens have probability 0 get NaN rows. Processes ``chunk``
    sentences at a time to bound memory.
    """
    if tokens.dim() != 2 or masked.shape != tokens.shape or lengths.shape != tokens.shape[:1]:
        raise ParameterError(f"tokens (B, T), masked (B, T) and lengths (B,) must agree, got "
                             f"{tuple(tokens.shape)}, {tuple(masked.shape)}, {tuple(lengths.shape)}")
    chunk = check_int("chunk", chunk, 1)
    outs = []
    for lo in range(0, tokens.shape[0], chunk):
        tok, ln, msk = tokens[lo:lo + chunk], lengths[lo:lo + chunk], masked[lo:lo + chunk].bool()
        log_e = _log_onehot(grammar, tok, ln, msk, torch.float64).requires_grad_(True)
        with torch.enable_grad():
            z = inside(grammar, log_e, ln, log_emissions=True).log_z
            ok = torch.isfinite(z)
            (grad,) = torch.autograd.grad(torch.where(ok, z, torch.zeros_like(z)).sum(), log_e)
        valid = torch.arange(tok.shape[1], device=tok.device)[None, :] < ln[:, None]
        grad = torch.where(valid[..., None], grad, torch.zeros_like(grad))
        outs.append(torch.where(ok[:, None, None], grad, torch.full_like(grad, float("nan"))))
    return torch.cat(outs, 0)
