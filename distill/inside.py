"""The inside algorithm for layered PCFGs with general emission weights, and emission marginals.

For a sentence position t with emission weights ``e[t, v] >= 0`` (one-hot for an observed token,
all-ones for a wildcard / masked position, ``P(obs_t | x_t = v)`` for a noisy observation) the
inside score of NT A over the span [i, j) is

    beta(A, i, j) = sum over derivations A =>* v_i .. v_{j-1} of P(derivation) * prod_t e[t, v_t],

i.e. ``P(A =>* x_i..x_{j-1})`` for one-hot weights (the dynamic programme of Appendix D.1 /
Zhao et al. 2023), and ``Z = beta(start, 0, n)``. Layered grammars (Definition 4.3) make this
cheap: an NT of level l spans between ``grammar.level_span(l)`` tokens, so each level only stores
those span lengths, and it is built from the level below only. Rules of length k > 2 are
binarized left to right through prefix tables (O(T * W^2) per rule and level, never O(T^4)).

Numerics (float64). Between levels a table is kept as ``beta = lin * exp(n)``: ``lin`` (B, n_l,
S_l, W_l) in [0, 1] and one log normalizer ``n`` (B, S_l) per start position (the row maximum
over the level's NTs and lengths). Within a level everything is linear: a concatenation of a
left span starting at i with a right span starting at j is rescaled by ``exp(n[j] - max_j' n[j'])``
over the split window, so no log or exp of a full table is taken (one exp per (start, split) pair
and level, one log per start). This is exact up to rounding as long as, within one level, the
inside scores of spans sharing a start position (over all NTs and lengths) differ by less than
about e^700 (the float64 range). The normalizers are detached: the computed function does not
depend on them, so gradients are exact, and :func:`emission_marginals` gets the inside-outside
marginals ``d log Z / d e[t, v]`` by one backward pass (the outside algorithm) instead of an
explicit outside pass.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch
import torch.nn.functional as F

from theory._checks import ParameterError, check_int

from .grammar import Grammar

__all__ = ["InsideResult", "EmissionMarginals", "inside", "sentence_log_prob", "span_log_prob",
           "emission_marginals", "masked_posterior", "default_chunk"]

NEG_INF = float("-inf")
_CPU_BUDGET, _CPU_MAX = 1 << 20, 128  # elements of the largest level table per chunk on CPU, sentences per chunk
_GPU_BUDGET, _GPU_MAX = 1 << 24, 4096  # ... on CUDA (memory-sized)


@dataclass(frozen=True)
class InsideResult:
    """Log inside scores of a batch of B sentences padded to T positions.

    tables[l]  (B, n_l, S_l, W_l): ``tables[l][b, a, i, w] = log beta(levels[l][a], i, i + min_len[l] + w)``
               for sentence b; -inf for impossible spans and spans past the sentence end.
               S_0 = 1 (the root only spans from position 0), S_l = T - min_len[l] + 1 for l >= 1.
    min_len[l] shortest span of level l (``grammar.level_span(l)[0]``).
    lengths    (B,) sentence lengths.
    log_z      (B,) log beta(start, 0, length): log P(x) for one-hot emissions.
    """

    tables: tuple[torch.Tensor, ...]
    min_len: tuple[int, ...]
    lengths: torch.Tensor
    log_z: torch.Tensor


@dataclass(frozen=True)
class EmissionMarginals:
    """Result of :func:`emission_marginals` for B sentences of T positions and V terminals.

    log_z (B,): log Z = log sum_x P(x) prod_t e[t, x_t] (log P(observations) for likelihood weights).
    grad  (B, T, V): ``d log Z / d e[b, t, v] = O_t(v) / Z`` with ``O_t(v) = dZ / de[t, v]`` the outside
          weight ``sum_{x: x_t = v} P(x) prod_{s != t} e[s, x_s]``; 0 at padding, NaN rows where Z = 0.
    """

    log_z: torch.Tensor
    grad: torch.Tensor

    def posterior(self, emissions: torch.Tensor) -> torch.Tensor:
        """(B, T, V) ``P(x_t = v | weights) = e[t, v] O_t(v) / Z``: the marginals of the weighted model."""
        return emissions.to(self.grad.dtype) * self.grad


@dataclass(frozen=True)
class _LevelPlan:
    """Rules of one level, binarized. ``steps[s-2] = (left, right)``: the s-prefixes (s >= 2),
    ``left`` indexing the (s-1)-prefixes (for s = 2 the children) and ``right`` the children.
    ``mix``: per rule length k present, ``(k, M)`` with ``M[a][p]`` the total probability of the
    rules of NT a whose k-prefix (the whole right-hand side) is prefix p."""

    steps: tuple[tuple[tuple[int, ...], tuple[int, ...]], ...]
    mix: tuple[tuple[int, tuple[tuple[float, ...], ...]], ...]


@lru_cache(maxsize=64)
def _plan(grammar: Grammar) -> tuple[_LevelPlan, ...]:
    plans = []
    D = grammar.depth
    for l, names in enumerate(grammar.levels):
        kids = grammar.terminals if l == D - 1 else grammar.levels[l + 1]
        kid = {s: i for i, s in enumerate(kids)}
        rules = [(a, tuple(kid[s] for s in rhs), p) for a, name in enumerate(names)
                 for rhs, p in grammar.rules[name]]
        K = max(len(c) for _, c, _ in rules)
        prefix: list[dict[tuple[int, ...], int]] = [{(c,): c for c in range(len(kids))}]
        steps = []
        for s in range(2, K + 1):
            ids: dict[tuple[int, ...], int] = {}
            for _, c, _ in rules:
                if len(c) >= s and c[:s] not in ids:
                    ids[c[:s]] = len(ids)
            prefix.append(ids)
            steps.append((tuple(prefix[-2][c[:-1]] for c in ids), tuple(c[-1] for c in ids)))
        mix = []
        for k in range(1, K + 1):
            members = [r for r in rules if len(r[1]) == k]
            if members:
                m = [[0.0] * len(prefix[k - 1]) for _ in names]
                for a, c, p in members:
                    m[a][prefix[k - 1][c]] += p
                mix.append((k, tuple(tuple(row) for row in m)))
        plans.append(_LevelPlan(tuple(steps), tuple(mix)))
    return tuple(plans)


# ----------------------------------------------------------------------------- band product
# Tables are laid out (B, P, W, S): lengths before starts, so that every slice below is contiguous.

def _hankel(x: torch.Tensor, v: int, start: int, rows: int, cols: int) -> torch.Tensor:
    """View ``H[..., w, i] = x[..., v, start + w + i]`` of a contiguous (B, P, V, R) tensor."""
    sb, sp, sv, _ = x.stride()
    return x.as_strided((x.shape[0], x.shape[1], rows, cols), (sb, sp, 1, 1),
                        x.storage_offset() + v * sv + start)


class _Band(torch.autograd.Function):
    """``out[b,p,u,i] = sum_{w+v=u} a[b,p,w,i] * r[b,p,v,m+i+w]`` for u < width and i + u <= lim
    (spans past the sentence end: left 0).

    a (B, P, WL, S): left spans [i, i + mL + w); r (B, P, WR, R) with R >= m + S + WL - 1: right
    spans [j, j + mR + v) by start j (contiguous). One loop over the WR right lengths forward
    (Hankel views of r), loops over WR and WL backward; no intermediate larger than an operand."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, r: torch.Tensor, m: int, width: int, lim: int) -> torch.Tensor:
        B, P, WL, S = a.shape
        WR = r.shape[2]
        out = a.new_zeros(B, P, width, S)
        for v in range(min(WR, width)):
            k, rows = min(WL, width - v), min(S, lim - v + 1)
            if rows <= 0:
                break
            out[:, :, v:v + k, :rows].addcmul_(a[:, :, :k, :rows], _hankel(r, v, m, k, rows))
        ctx.save_for_backward(a, r)
        ctx.m, ctx.lim = m, lim
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g: torch.Tensor):
        a, r = ctx.saved_tensors
        m, lim, WR = ctx.m, ctx.lim, r.shape[2]
        WL, S, width = a.shape[2], a.shape[3], g.shape[2]
        grad_a = grad_r = None
        if ctx.needs_input_grad[0]:
            grad_a = torch.zeros_like(a)
            for v in range(min(WR, width)):
                k, rows = min(WL, width - v), min(S, lim - v + 1)
                if rows <= 0:
                    break
                grad_a[:, :, :k, :rows].addcmul_(g[:, :, v:v + k, :rows], _hankel(r, v, m, k, rows))
        if ctx.needs_input_grad[1]:
            grad_r = torch.zeros_like(r)
            for w in range(min(WL, width)):
                k, rows = min(WR, width - w), min(S, lim - w + 1)
                if rows <= 0:
                    break
                grad_r[:, :, :k, m + w:m + w + rows].addcmul_(a[:, :, w:w + 1, :rows], g[:, :, w:w + k, :rows])
        return grad_a, grad_r, None, None, None


# ----------------------------------------------------------------------------- levels

def _emission_rows(emissions: torch.Tensor, lengths: torch.Tensor, log_emissions: bool, dtype):
    """The terminal 'level': (lin (B, V, 1, T), n (B, T)) with ``e = lin * exp(n)``, 0 past the end."""
    B, T, _ = emissions.shape
    valid = torch.arange(T, device=emissions.device)[None, :] < lengths[:, None]
    if log_emissions:
        le = torch.where(valid[..., None], emissions.to(dtype), NEG_INF)
        n = le.detach().amax(-1)
        lin = torch.exp(le - _finite_or_zero(n)[..., None])
    else:
        e = torch.where(valid[..., None], emissions.to(dtype), torch.zeros((), dtype=dtype, device=emissions.device))
        mx = e.detach().amax(-1)
        lin = e / torch.where(mx > 0, mx, torch.ones_like(mx))[..., None]
        n = _safe_log(mx)
    return lin.permute(0, 2, 1)[:, :, None], n


def _safe_log(x: torch.Tensor) -> torch.Tensor:
    """log x with log 0 = -inf and finite gradients everywhere."""
    pos = x > 0
    return torch.where(pos, torch.log(torch.where(pos, x, torch.ones_like(x))), NEG_INF)


def _finite_or_zero(x: torch.Tensor) -> torch.Tensor:
    return torch.where(torch.isfinite(x), x, torch.zeros_like(x))


def _level(plan: _LevelPlan, lin: torch.Tensor, n: torch.Tensor, c_min: int, p_min: int, p_max: int,
           S: int, T: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One level from the level below: children ``beta = lin * exp(n)`` with lin (B, C, Wc, Tc)
    (length-major), n (B, Tc) and shortest span c_min -> parents (lin (B, n_l, W, S), n (B, S)) for
    starts 0..S-1 and lengths p_min..p_min+W-1 (``W = min(p_max, T) - p_min + 1``), each start's
    entries scaled to max 1."""
    B, C, Wc, Tc = lin.shape
    dev, dtype = lin.device, lin.dtype
    W = max(1, min(p_max, T) - p_min + 1)
    prefixes = [(lin[..., :S], c_min, n[:, :S])]  # (lin, shortest length, log normalizer per start)
    need, pm, WL = Tc, c_min, Wc  # right operands: starts j = i + pm + w < pm + S + WL - 1 (zero past Tc)
    for _ in plan.steps:
        need = max(need, pm + S + WL - 1)
        WL, pm = max(1, min(WL + Wc - 1, T - (pm + c_min) + 1)), pm + c_min
    if plan.steps:
        lin_r, n_r = F.pad(lin, (0, need - Tc)), F.pad(n, (0, need - Tc), value=NEG_INF)
    for left_idx, right_idx in plan.steps:
        left, pm, L = prefixes[-1]
        WL = left.shape[2]
        need = pm + S + WL - 1  # right starts j = i + pm + w < need
        with torch.no_grad():
            win = n_r[:, pm:need].unfold(1, WL, 1)  # (B, S, WL): n[i + pm + w]
            nm = _finite_or_zero(win.amax(-1))
            f = torch.exp(win - nm[..., None]).transpose(1, 2)[:, None]  # (B, 1, WL, S) in [0, 1]
        a = left.index_select(1, torch.tensor(left_idx, device=dev)) * f
        r = lin_r.index_select(1, torch.tensor(right_idx, device=dev))
        width = max(1, min(WL + Wc - 1, T - (pm + c_min) + 1))
        prefixes.append((_Band.apply(a, r, pm, width, T - pm - c_min), pm + c_min, L + nm))
    with torch.no_grad():
        Lmax = _finite_or_zero(torch.stack([p[2] for p in prefixes]).amax(0))  # (B, S)
    parent = None
    for k, mix in plan.mix:
        x, pm, L = prefixes[k - 1]
        shift = pm - p_min
        if shift >= W or shift + x.shape[2] <= 0:
            continue
        y = torch.einsum("ap,bpws->baws", torch.tensor(mix, dtype=dtype, device=dev), x)
        y = F.pad(y, (0, 0, shift, W - x.shape[2] - shift)) * torch.exp(L - Lmax)[:, None, None, :]
        parent = y if parent is None else parent + y
    if parent is None:
        parent = lin.new_zeros(B, len(plan.mix[0][1]), W, S)
    with torch.no_grad():
        mx = parent.amax((1, 2))  # (B, S)
        n_parent = _safe_log(mx) + Lmax
    return parent / torch.where(mx > 0, mx, torch.ones_like(mx))[:, None, None, :], n_parent


def _run(grammar: Grammar, emissions: torch.Tensor, lengths: torch.Tensor, log_emissions: bool, dtype,
         keep_tables: bool):
    """All levels bottom-up; returns (log_z (B,), [(lin, n) per level, root first] or None)."""
    B, T, _ = emissions.shape
    lin, n = _emission_rows(emissions, lengths, log_emissions, dtype)
    c_min, kept = 1, []
    for l in range(grammar.depth - 1, -1, -1):
        p_min, p_max = grammar.level_span(l)
        S = 1 if l == 0 else max(1, T - p_min + 1)
        lin, n = _level(_plan(grammar)[l], lin, n, c_min, p_min, p_max, S, T)
        c_min = p_min
        if keep_tables:
            kept.append((lin, n))
    w = lengths - c_min
    ok = (w >= 0) & (w < lin.shape[2])
    root = lin[torch.arange(B, device=lin.device), 0, w.clamp(0, lin.shape[2] - 1), 0]
    log_z = torch.where(ok, _safe_log(root) + n[:, 0], torch.full_like(n[:, 0], NEG_INF))
    return log_z, (kept[::-1] if keep_tables else None)


def _check_emissions(grammar: Grammar, emissions: torch.Tensor, lengths, log_emissions: bool) -> torch.Tensor:
    if emissions.dim() != 3 or emissions.shape[2] != len(grammar.terminals):
        raise ParameterError(f"emissions must have shape (B, T, {len(grammar.terminals)}), got "
                             f"{tuple(emissions.shape)}")
    B, T, _ = emissions.shape
    check_int("sequence length T", T, 1)
    dev = emissions.device
    if lengths is None:
        lengths = torch.full((B,), T, dtype=torch.long, device=dev)
    lengths = torch.as_tensor(lengths, device=dev)
    if lengths.shape != (B,) or bool(((lengths < 1) | (lengths > T)).any()):
        raise ParameterError(f"lengths must be a (B,) = ({B},) tensor with values in [1, {T}], got {lengths}")
    if not log_emissions and bool((emissions < 0).any()):
        raise ParameterError("emissions must be non-negative weights (pass log_emissions=True for logs)")
    return lengths.long()


def inside(grammar: Grammar, emissions: torch.Tensor, lengths: torch.Tensor | None = None, *,
           log_emissions: bool = False, dtype: torch.dtype = torch.float64) -> InsideResult:
    """Log inside scores of every span of every NT (see :class:`InsideResult`).

    emissions (B, T, n_terminals): weights ``e[b, t, v] >= 0`` (or their logs if ``log_emissions``);
    lengths (B,) in [1, T] (default T). Runs on the device of ``emissions``; differentiable.
    """
    lengths = _check_emissions(grammar, emissions, lengths, log_emissions)
    log_z, kept = _run(grammar, emissions, lengths, log_emissions, dtype, keep_tables=True)
    tables = tuple(_safe_log(lin).transpose(2, 3) + n[:, None, :, None] for lin, n in kept)
    mins = tuple(grammar.level_span(l)[0] for l in range(grammar.depth))
    return InsideResult(tables, mins, lengths, log_z)


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


# ----------------------------------------------------------------------------- marginals

def default_chunk(grammar: Grammar, T: int, device) -> int:
    """Sentences per chunk: the largest prefix table (B, P, W, S) of one chunk of length-T sentences
    stays within a budget: about 2^20 elements on CPU, where larger chunks lose to memory traffic
    and smaller ones to per-operation overhead (measured on 2 cores: cfg3b is fastest at 4-6
    sentences, the 5-level random grammar at ~128), 2^24 on CUDA."""
    cuda = torch.device(device).type == "cuda"
    budget, most = (_GPU_BUDGET, _GPU_MAX) if cuda else (_CPU_BUDGET, _CPU_MAX)
    biggest = 1
    for l, plan in enumerate(_plan(grammar)):
        p_min, p_max = grammar.level_span(l)
        S = 1 if l == 0 else max(1, T - p_min + 1)
        W = max(1, min(p_max, T) - p_min + 1)
        P = max([len(left) for left, _ in plan.steps] + [len(plan.mix[0][1])])
        biggest = max(biggest, P * S * W)
    return max(1, min(most, budget // biggest))


def emission_marginals(grammar: Grammar, emissions: torch.Tensor, lengths: torch.Tensor | None = None, *,
                       chunk: int | None = None, progress=None) -> EmissionMarginals:
    """log Z and ``d log Z / d e`` (the outside weights over Z) for emission weights e (B, T, V).

    One inside pass and its backward (the outside pass) per chunk of sentences, in float64 on the
    device of ``emissions``. Sentences are sorted by length and each chunk is cut to its longest
    sentence, so padding costs nothing; ``chunk`` sentences at a time (default
    :func:`default_chunk`). See :class:`EmissionMarginals`. ``progress(k)``, when given, is called
    after each chunk with its number of sentences k.
    """
    lengths = _check_emissions(grammar, emissions, lengths, False)
    B, T, V = emissions.shape
    dev = emissions.device
    order = torch.argsort(lengths, descending=True, stable=True)
    log_z = torch.empty(B, dtype=torch.float64, device=dev)
    grad = torch.zeros(B, T, V, dtype=torch.float64, device=dev)
    lo = 0
    while lo < B:
        Tc = int(lengths[order[lo]])
        size = check_int("chunk", chunk, 1) if chunk is not None else default_chunk(grammar, Tc, dev)
        idx = order[lo:lo + size]
        e = emissions[idx, :Tc].to(torch.float64).requires_grad_(True)
        with torch.enable_grad():
            z, _ = _run(grammar, e, lengths[idx], False, torch.float64, keep_tables=False)
            ok = torch.isfinite(z)
            (g,) = torch.autograd.grad(torch.where(ok, z, torch.zeros_like(z)).sum(), e)
        valid = torch.arange(Tc, device=dev)[None, :] < lengths[idx][:, None]
        g = F.pad(torch.where(valid[..., None], g, torch.zeros_like(g)), (0, 0, 0, T - Tc))
        grad[idx] = torch.where(ok[:, None, None], g, torch.full_like(g, float("nan")))
        log_z[idx] = z.detach()
        lo += len(idx)
        if progress is not None:
            progress(len(idx))
    return EmissionMarginals(log_z, grad)


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
    lengths = _check_emissions(grammar, log_e, lengths, True)
    return _run(grammar, log_e, lengths, True, torch.float64, keep_tables=False)[0]


def masked_posterior(grammar: Grammar, tokens: torch.Tensor, lengths: torch.Tensor, masked: torch.Tensor,
                     *, chunk: int | None = None) -> torch.Tensor:
    """Exact P(x_t = v | visible tokens) for every masked position: (B, T, n_terminals) float64.

    All-ones emissions at masked positions, one-hot ones elsewhere; the posterior is ``e * d log Z /
    d e`` (:func:`emission_marginals`). Unmasked positions get the one-hot of their token, padding
    zeros, and sentences whose visible tokens have probability 0 get NaN rows.
    """
    if tokens.dim() != 2 or masked.shape != tokens.shape or lengths.shape != tokens.shape[:1]:
        raise ParameterError(f"tokens (B, T), masked (B, T) and lengths (B,) must agree, got "
                             f"{tuple(tokens.shape)}, {tuple(masked.shape)}, {tuple(lengths.shape)}")
    e = _log_onehot(grammar, tokens, lengths, masked.bool(), torch.float64).exp()
    return emission_marginals(grammar, e, lengths, chunk=chunk).posterior(e)
