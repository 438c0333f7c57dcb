"""Probes of the Transformer's internals: non-terminal prediction (Definition 4.3, App. D.3)
and the attention-on-support measure of Figure 11 (App. C.2).

The non-terminal probe is the multi-head position-mixing linear probe of Appendix D.3
(after Allen-Zhu & Li, 2023b): for output embeddings e_1..e_L (the model's final-LayerNorm output),

    G_i = sum_{r in [H], k in [L]} w_{r, i->k} f_r(e_k),   w_{r, i->k} = softmax_k <P_{i,r}, P_{k,r}>,

with trainable per-position vectors P_{i,r} in R^{d_P} and linear maps f_r : R^D -> R^{n_classes}
(weight and bias), trained by cross-entropy (logistic regression, Adam) at the level-l boundary
positions to predict the level-l non-terminal. The paper takes P_{i,r} in R^d; we use a free
``d_p`` (default 32). Padding keys (ancestor -1) are left out of the softmax over k. ``R`` probes
(one per model run) train as one program with a leading run axis.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from theory._checks import ParameterError, check_int, check_real

__all__ = [
    "NonTerminalProbe", "train_nonterminal_probe", "nonterminal_probe_accuracy", "position_token_features",
    "attention_paths", "support_attention_summary",
]

_CAP = 40.0  # soft cap on <P_i, P_k>: exp(-2 * cap) stays a normal float32, so no row underflows


class NonTerminalProbe(nn.Module):
    """``R`` probes of App. D.3 for features of width ``dim`` and ``max_len`` positions.

    Parameters: ``P`` (R, H, max_len, d_p), ``W`` (R, H, dim, n_classes), ``b`` (R, H, n_classes).
    ``P`` starts N(0, 8 / d_p) so that <P_i, P_i> ~ 8: each position first attends mostly to itself
    (a plain linear probe at i) and learns how far to mix; ``W`` starts N(0, 1 / dim), ``b`` at 0.
    The logits <P_i, P_k> pass through ``cap * tanh(. / cap)`` (cap 40, inactive for |.| << 40) so
    that the per-sentence masked softmax can share one exp matrix without underflow."""

    def __init__(self, runs: int, heads: int, max_len: int, dim: int, n_classes: int, *,
                 d_p: int = 32, generator: torch.Generator, device=None):
        super().__init__()
        runs, heads = check_int("runs", runs, 1), check_int("heads", heads, 1)
        max_len, dim = check_int("max_len", max_len, 1), check_int("dim", dim, 1)
        n_classes, d_p = check_int("n_classes", n_classes, 2), check_int("d_p", d_p, 1)
        g = dict(generator=generator, device=generator.device)
        p = torch.randn(runs, heads, max_len, d_p, **g) * math.sqrt(8.0 / d_p)
        w = torch.randn(runs, heads, dim, n_classes, **g) / math.sqrt(dim)
        self.P = nn.Parameter(p.to(device))
        self.W = nn.Parameter(w.to(device))
        self.b = nn.Parameter(torch.zeros(runs, heads, n_classes, device=device))

    def forward(self, features: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """Logits G (R, N, T, n_classes) for ``features`` (R, N, T, dim) and ``keys`` (N, T) bool
        (True = a non-padding position that may be mixed in)."""
        t = features.shape[2]
        p = self.P[:, :, :t]
        s = torch.einsum("rhid,rhkd->rhik", p, p)
        s = _CAP * torch.tanh(s / _CAP)
        e = torch.exp(s - s.amax(-1, keepdim=True))                        # (R, H, T, T)
        m = keys.to(features.dtype)                                        # (N, T)
        f = torch.einsum("rntd,rhdc->rnhtc", features, self.W) + self.b[:, None, :, None]
        num = torch.einsum("rhik,rnhkc->rnhic", e, f * m[None, :, None, :, None])
        den = torch.einsum("rhik,nk->rnhi", e, m).clamp_min(torch.finfo(e.dtype).tiny)
        return (num / den[..., None]).sum(2)                               # sum over heads


def _targets(ancestors: torch.Tensor, boundary: torch.Tensor, level: int, n_classes: int):
    """Labels (N, T) (-1 where not a level-``level`` boundary) and key mask (N, T)."""
    if ancestors.dim() != 3 or boundary.shape != ancestors.shape:
        raise ParameterError(f"ancestors and boundary must have one shape (N, D_lev, T), got "
                             f"{tuple(ancestors.shape)} and {tuple(boundary.shape)}")
    level = check_int("level", level, 0, ancestors.shape[1] - 1)
    anc = ancestors[:, level]
    lab = torch.where(boundary[:, level] & (anc >= 0), anc, torch.full_like(anc, -1))
    if int(lab.max()) >= n_classes:
        raise ParameterError(f"n_classes must exceed every label of level {level}; got "
                             f"n_classes = {n_classes}, largest label {int(lab.max())}")
    return lab.long(), anc >= 0


def train_nonterminal_probe(
    features_train: torch.Tensor,
    ancestors_train: torch.Tensor,
    boundary_train: torch.Tensor,
    features_test: torch.Tensor,
    ancestors_test: torch.Tensor,
    boundary_test: torch.Tensor,
    *,
    level: int,
    n_classes: int,
    heads: int = 4,
    steps: int = 300,
    lr: float = 1e-2,
    batch_size: int = 256,
    d_p: int = 32,
    generator: torch.Generator,
) -> np.ndarray:
    """Train ``R`` probes (App. D.3) on features (R, N, T, D) and return test accuracies (R,).

    Cross-entropy (mean over the level-``level`` boundary positions of a minibatch of
    ``batch_size`` sentences, drawn with ``generator``) summed over runs, so that each run's probe
    follows its own Adam trajectory. ``level`` indexes axis 1 of ``ancestors`` (the parser's level
    order). Accuracy: fraction of the test set's level boundaries whose non-terminal is the argmax.
    """
    steps, batch_size = check_int("steps", steps, 1), check_int("batch_size", batch_size, 1)
    check_real("lr", lr, 0.0, lo_open=True)
    if features_train.dim() != 4 or features_test.dim() != 4:
        raise ParameterError(f"features must have shape (R, N, T, D), got {tuple(features_train.shape)}"
                             f" and {tuple(features_test.shape)}")
    dev = features_train.device
    y_tr, k_tr = (a.to(dev) for a in _targets(ancestors_train, boundary_train, level, n_classes))
    y_te, k_te = (a.to(dev) for a in _targets(ancestors_test, boundary_test, level, n_classes))
    r, n, t, d = features_train.shape
    t_max = max(t, features_test.shape[2])
    probe = NonTerminalProbe(r, heads, t_max, d, n_classes, d_p=d_p, generator=generator, device=dev)
    opt = torch.optim.Adam(probe.parameters(), lr=lr)
    for _ in range(steps):
        idx = torch.randint(n, (min(batch_size, n),), generator=generator, device=generator.device).to(dev)
        logits = probe(features_train[:, idx], k_tr[idx])                # (R, b, T, C)
        y = y_tr[idx]
        sel = y >= 0
        if not bool(sel.any()):
            continue
        loss = nn.functional.cross_entropy(logits[:, sel].flatten(0, 1), y[sel].repeat(r),
                                           reduction="sum") / int(sel.sum())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return _accuracy(probe, features_test, k_te, y_te, batch_size)


@torch.no_grad()
def _accuracy(probe, features, keys, labels, batch_size: int) -> np.ndarray:
    correct = torch.zeros(features.shape[0], device=features.device)
    total = 0
    for s in range(0, features.shape[1], batch_size):
        y = labels[s:s + batch_size]
        sel = y >= 0
        pred = probe(features[:, s:s + batch_size], keys[s:s + batch_size]).argmax(-1)
        correct += (pred[:, sel] == y[sel]).sum(1)
        total += int(sel.sum())
    if total == 0:
        raise ParameterError("the test set must hold at least one boundary position, got none")
    return (correct / total).cpu().numpy()


@torch.no_grad()
def _embed_all(embed: Callable, tokens, valid, batch_size: int) -> torch.Tensor:
    parts = [embed(tokens[s:s + batch_size], valid[s:s + batch_size])
             for s in range(0, tokens.shape[0], batch_size)]
    return torch.cat(parts, dim=1).detach()


def nonterminal_probe_accuracy(
    embed: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    train_batch,
    test_batch,
    levels: Sequence[int],
    *,
    n_classes: Sequence[int] | int,
    generator: torch.Generator,
    embed_batch_size: int = 256,
    **probe_kwargs,
) -> np.ndarray:
    """Probe accuracies (R, len(levels)) for a model's output embeddings.

    ``embed(tokens, valid) -> (R, B, T, D)`` (e.g. ``lambda x, v: model(x, valid=v,
    return_hidden=True).final``); ``train_batch`` / ``test_batch`` have attributes ``tokens``,
    ``valid``, ``ancestors``, ``boundary`` (a parsed PCFG batch). ``n_classes``: one count per
    level or one for all. Other keyword arguments go to :func:`train_nonterminal_probe`."""
    levels = list(levels)
    counts = [n_classes] * len(levels) if isinstance(n_classes, int) else list(n_classes)
    if len(counts) != len(levels):
        raise ParameterError(f"n_classes must give one count per level ({len(levels)}), got {len(counts)}")
    f_tr = _embed_all(embed, train_batch.tokens, train_batch.valid, embed_batch_size)
    f_te = _embed_all(embed, test_batch.tokens, test_batch.valid, embed_batch_size)
    cols = [train_nonterminal_probe(f_tr, train_batch.ancestors, train_batch.boundary, f_te,
                                    test_batch.ancestors, test_batch.boundary, level=lv,
                                    n_classes=c, generator=generator, **probe_kwargs)
            for lv, c in zip(levels, counts)]
    return np.stack(cols, axis=1)


def position_token_features(vocab_size: int, max_len: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The probe's baseline representation: ``embed(tokens, valid) -> (1, B, T, vocab_size + max_len)``, the
    one-hot token beside the one-hot position (zeros at padding). A probe on these features reads what
    the surface string alone gives (token identities and where they stand, mixed across positions by
    the probe's own attention); a model's probe accuracy above it is structure the model computed.
    ``max_len`` fixes the width, so that sets padded to different lengths T <= max_len (a probe's
    train and test sentences) give features of one width."""
    vocab_size, max_len = check_int("vocab_size", vocab_size, 1), check_int("max_len", max_len, 1)

    def embed(tokens: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        b, t = tokens.shape
        if t > max_len:
            raise ParameterError(f"tokens must have at most max_len = {max_len} positions, got {t}")
        tok = nn.functional.one_hot(tokens.long().clamp(0, vocab_size - 1), vocab_size).float()
        pos = torch.eye(t, max_len, device=tokens.device).expand(b, t, max_len)
        return (torch.cat([tok, pos], dim=-1) * valid[..., None].float()).unsqueeze(0)

    return embed


def attention_paths(attentions: Sequence[torch.Tensor], query: int = -1) -> torch.Tensor:
    """Attention flow along paths through every layer, App. C.2 / Figure 11: row ``query`` of
    A_L ... A_2 A_1 with A_l (R, B, T, T) layer l's attention averaged over heads.

    For 2 layers, entry j is sum_i A_2[query, i] A_1[i, j], the length-2 path weight of the paper
    (which sums heads instead of averaging: its values are H^2 times ours). Input: L tensors
    (R, B, H, T, T); output (R, B, T), a probability vector over key positions."""
    if len(attentions) == 0:
        raise ParameterError("attentions must hold at least one layer, got none")
    t = attentions[-1].shape[-1]
    query = check_int("query", query, -t, t - 1)
    v = attentions[-1].mean(2)[:, :, query]                               # (R, B, T)
    for a in reversed(attentions[:-1]):
        v = torch.einsum("rbi,rbij->rbj", v, a.mean(2))
    return v


def support_attention_summary(paths: torch.Tensor, support: Sequence[int],
                              positions_of_bits: Sequence[int]) -> dict:
    """Figure 11: per run, the median over inputs of the path attention on each bit.

    ``paths`` (R, B, T) from :func:`attention_paths`; ``positions_of_bits`` (d,) the sequence
    position of bit 0..d-1; ``support`` the bit indices of S. Returns ``per_bit`` (R, d) medians,
    ``attn_in_support`` / ``attn_off_support`` (R,) the means of the in- / off-support medians
    (the latter NaN when every bit is in the support)."""
    pos = [check_int("positions_of_bits", p, 0, paths.shape[-1] - 1) for p in positions_of_bits]
    sup = sorted({check_int("support", s, 0, len(pos) - 1) for s in support})
    if not sup:
        raise ParameterError("support must name at least one bit, got none")
    per_bit = np.median(paths[:, :, pos].detach().double().cpu().numpy(), axis=1)   # (R, d)
    off = [j for j in range(len(pos)) if j not in set(sup)]
    return {
        "per_bit": per_bit,
        "attn_in_support": per_bit[:, sup].mean(1),
        "attn_off_support": per_bit[:, off].mean(1) if off else np.full(per_bit.shape[0], np.nan),
    }
