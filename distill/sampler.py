"""Vectorized sampling of layered PCFG sentences with their parse annotations.

Generation follows Appendix D.1 (every NT of the current string is rewritten by a rule drawn from
P), one level at a time: all nodes of a level, over all sentences, are expanded by one batched draw.
The annotations are those of Definition 4.3: for each token and each level l the level-l NT above
it (its *ancestor*) and whether the token is the right *boundary* of that NT's span.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from theory._checks import ParameterError, check_int

from .grammar import Grammar

__all__ = ["ParsedBatch", "sample", "length_stats"]


@dataclass(frozen=True)
class ParsedBatch:
    """Sentences and annotations. N sentences, T = longest sentence, D = ``grammar.depth``.

    tokens     LongTensor (N, T): terminal ids (``Vocab`` order), ``pad_id`` after each sentence's end.
    lengths    LongTensor (N,): sentence lengths in tokens.
    ancestors  LongTensor (N, D, T): ``ancestors[b, l, t]`` = index within ``grammar.levels[l]`` of
               the level-l NT above token t (l = 0: the root, l = D-1: the pre-terminal); -1 at padding.
    boundary   BoolTensor (N, D, T): token t is the last token of the span of its level-l ancestor
               (Definition 4.3); False at padding.
    pad_id     the padding id (``grammar.vocab.pad_id``).
    """

    tokens: torch.Tensor
    lengths: torch.Tensor
    ancestors: torch.Tensor
    boundary: torch.Tensor
    pad_id: int

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def valid(self) -> torch.Tensor:
        """(N, T) bool: position t < length."""
        t = torch.arange(self.tokens.shape[1], device=self.tokens.device)
        return t[None, :] < self.lengths[:, None]

    def to(self, device) -> ParsedBatch:
        return ParsedBatch(self.tokens.to(device), self.lengths.to(device), self.ancestors.to(device),
                           self.boundary.to(device), self.pad_id)

    def select(self, idx) -> ParsedBatch:
        """Rows ``idx`` (index tensor, list, slice or bool mask), trimmed to their longest sentence."""
        lengths = self.lengths[idx]
        T = int(lengths.max()) if lengths.numel() else 0
        return ParsedBatch(self.tokens[idx][:, :T], lengths, self.ancestors[idx][:, :, :T],
                           self.boundary[idx][:, :, :T], self.pad_id)


@dataclass(frozen=True)
class _Tables:
    """Padded rule tables over the global NT index (position in ``grammar.nonterminals``).

    cdf (n_nt, R) float64 cumulative rule probabilities (2.0 past the last rule); length (n_nt, R)
    rhs lengths; rhs (n_nt, R, K): global NT index of each child, or the terminal id for rules of
    the last level; offset (D,) global index of each level's first NT.
    """

    cdf: torch.Tensor
    length: torch.Tensor
    rhs: torch.Tensor
    offset: torch.Tensor
    start: int


@lru_cache(maxsize=64)
def _tables(grammar: Grammar, device: str) -> _Tables:
    nts = grammar.nonterminals
    gid = {a: i for i, a in enumerate(nts)}
    tid = {t: i for i, t in enumerate(grammar.terminals)}
    R = max(len(grammar.rules[a]) for a in nts)
    K = max(len(rhs) for a in nts for rhs, _ in grammar.rules[a])
    cdf = np.full((len(nts), R), 2.0)
    length = np.zeros((len(nts), R), dtype=np.int64)
    rhs = np.zeros((len(nts), R, K), dtype=np.int64)
    last = grammar.depth - 1
    for a in nts:
        rs = grammar.rules[a]
        p = np.array([q for _, q in rs], dtype=np.float64)
        c = np.cumsum(p / p.sum())
        c[-1] = 1.0
        cdf[gid[a], : len(rs)] = c
        for j, (syms, _) in enumerate(rs):
            length[gid[a], j] = len(syms)
            ids = tid if grammar.level_of[a] == last else gid
            rhs[gid[a], j, : len(syms)] = [ids[s] for s in syms]
    offset = np.cumsum([0] + [len(lv) for lv in grammar.levels[:-1]])
    as_t = lambda x: torch.as_tensor(x, device=device)  # noqa: E731
    return _Tables(as_t(cdf), as_t(length), as_t(rhs), as_t(offset), gid[grammar.start])


def sample(grammar: Grammar, n: int, *, generator: torch.Generator, device=None) -> ParsedBatch:
    """Draw ``n`` i.i.d. sentences with their annotations (see :class:`ParsedBatch`).

    Runs on ``generator.device`` with a Python loop over the D levels only: one inverse-CDF draw
    per node picks its rule, ``repeat_interleave`` creates the children, and each child keeps the
    index of its parent node, so ancestors and boundaries follow by index arithmetic. The result
    is moved to ``device`` if given.
    """
    n = check_int("n", n, 1)
    if not isinstance(generator, torch.Generator):
        raise ParameterError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    dev = generator.device
    tab = _tables(grammar, str(dev))
    D, R, K = grammar.depth, tab.cdf.shape[1], tab.rhs.shape[2]
    cdf, length, rhs = tab.cdf.view(-1), tab.length.view(-1), tab.rhs.view(-1)
    nt = torch.full((n,), tab.start, dtype=torch.long, device=dev)
    level_nt, parents = [nt], []
    for _ in range(D):
        M = nt.shape[0]
        u = torch.rand(M, generator=generator, device=dev, dtype=torch.float64)
        row = (nt * R)[:, None] + torch.arange(R, device=dev)
        rule = nt * R + (u[:, None] >= cdf.take(row)).sum(1)  # flat rule id
        counts = length.take(rule)
        first = torch.cumsum(counts, 0) - counts
        parent = torch.repeat_interleave(torch.arange(M, device=dev), counts)
        total = parent.shape[0]
        child = (rule * K - first).index_select(0, parent) + torch.arange(total, device=dev)
        nt = rhs.take(child)
        parents.append(parent)
        level_nt.append(nt)
    terminals = level_nt.pop()
    # node index of each token's ancestor at every level (level D-1 = direct parent)
    node = [parents[D - 1]]
    for l in range(D - 2, -1, -1):
        node.append(parents[l].index_select(0, node[-1]))
    node.reverse()
    sent = node[0]
    lengths = torch.bincount(sent, minlength=n)
    T = int(lengths.max())
    pos = torch.arange(total, device=dev) - (torch.cumsum(lengths, 0) - lengths).index_select(0, sent)
    pad = grammar.vocab.pad_id
    tokens = torch.full((n * T,), pad, dtype=torch.long, device=dev).index_copy_(0, sent * T + pos, terminals)
    flat = sent * (D * T) + pos  # position of (b, 0, t) in the flattened (N, D, T) layout
    ancestors = torch.full((n * D * T,), -1, dtype=torch.long, device=dev)
    boundary = torch.zeros((n * D * T,), dtype=torch.bool, device=dev)
    last = torch.ones(1, dtype=torch.bool, device=dev)  # the batch's last token ends every span
    for l in range(D):
        at = flat + l * T if l else flat
        ancestors.index_copy_(0, at, (level_nt[l] - tab.offset[l]).index_select(0, node[l]))
        boundary.index_copy_(0, at, torch.cat([node[l][1:] != node[l][:-1], last]))
    batch = ParsedBatch(tokens.view(n, T), lengths, ancestors.view(n, D, T), boundary.view(n, D, T), pad)
    return batch if device is None else batch.to(device)


def length_stats(grammar: Grammar, samples: int, *, generator: torch.Generator, chunk: int = 4096) -> dict:
    """Sentence-length percentiles and NT node counts over ``samples`` sampled trees.

    Returns ``{"grammar", "samples", "length_percentiles": {"25","50","75","95": int},
    "levels": [{"level", "nonterminals", "counts": {NT: nodes}}]}``; percentiles are
    ``numpy.percentile`` (linear interpolation) rounded to the nearest integer; a level-l node is
    counted once, at its boundary token (Definition 4.3). Appendix D.4 quotes cfg3b: 251/278/308/342.
    """
    samples = check_int("samples", samples, 1)
    chunk = check_int("chunk", chunk, 1)
    lengths = []
    counts = [torch.zeros(len(lv), dtype=torch.long) for lv in grammar.levels]
    done = 0
    while done < samples:
        b = sample(grammar, min(chunk, samples - done), generator=generator, device="cpu")
        done += len(b)
        lengths.append(b.lengths.numpy())
        for l, lv in enumerate(grammar.levels):
            counts[l] += torch.bincount(b.ancestors[:, l][b.boundary[:, l]], minlength=len(lv))
    lens = np.concatenate(lengths)
    pct = {str(q): int(round(float(np.percentile(lens, q)))) for q in (25, 50, 75, 95)}
    levels = [{"level": l, "nonterminals": list(lv), "counts": {a: int(c) for a, c in zip(lv, counts[l])}}
              for l, lv in enumerate(grammar.levels)]
    return {"grammar": grammar.name, "samples": samples, "length_percentiles": pct, "levels": levels}
