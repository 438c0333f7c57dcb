"""What a Transformer learns: batches of (inputs, targets, selected positions) drawn on the device.

A task turns samples into a :class:`SeqBatch`: ``inputs`` / ``valid`` / ``targets`` / ``selected``
of shape ``(B, T)`` (or ``(R, B, T)`` once stacked over runs by :func:`sample_runs`) and the loss
weights of :func:`distill.objectives.per_sequence_weights`. Three tasks:

* :class:`MaskedLMTask`: masked prediction on a PCFG (Definition 4.1), BERT-style.
* :class:`NextTokenTask`: next-token prediction on a PCFG restricted to the level-l boundary
  tokens (Appendix E, eqs. (9)-(10)), GPT-style. Levels are numbered as in Appendix E, from the
  leaves: level 1 selects every token (the usual autoregressive loss) and level l the right ends
  of the spans of the non-terminals at depth ``D - l`` of Definition 4.3's numbering from the root
  (Appendix E states ``C^(l1) \\subseteq C^(l2)`` for ``l1 >= l2`` and that ``L^(1)`` averages all
  tokens, which holds only with this numbering).
* :class:`ParityTask`: (d, k)-sparse parity as a length-d sequence of bit tokens (Appendix C.2);
  the label is read at the last position (causal) or at a ``[CLS]`` token put first
  (bidirectional).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import torch

from simulate import data as D
from theory._checks import ParameterError, check_int

from .objectives import mask_tokens, per_sequence_weights

__all__ = ["SeqBatch", "MaskedLMTask", "NextTokenTask", "ParityTask", "sample_runs", "stack_batches"]


@dataclass(frozen=True)
class SeqBatch:
    """One batch: ``inputs`` long, ``valid`` bool (False: padding), ``targets`` long, ``selected``
    bool (positions the loss and accuracy count), ``weights`` float (eq. (3) normalization)."""

    inputs: torch.Tensor
    valid: torch.Tensor
    targets: torch.Tensor
    selected: torch.Tensor
    weights: torch.Tensor

    def to(self, device) -> "SeqBatch":
        return SeqBatch(*(getattr(self, f.name).to(device) for f in fields(self)))


def _pad(t: torch.Tensor, length: int, value) -> torch.Tensor:
    if t.shape[-1] == length:
        return t
    pad = t.new_full((*t.shape[:-1], length - t.shape[-1]), value)
    return torch.cat([t, pad], -1)


def stack_batches(batches: Sequence[SeqBatch], pad_id: int) -> SeqBatch:
    """Stack per-run batches along a new leading run axis, right-padding to a common length."""
    T = max(b.inputs.shape[-1] for b in batches)
    fill = {"inputs": pad_id, "valid": False, "targets": 0, "selected": False, "weights": 0.0}
    return SeqBatch(**{name: torch.stack([_pad(getattr(b, name), T, v) for b in batches])
                       for name, v in fill.items()})


def sample_runs(task, generators: Sequence[torch.Generator], n: int) -> SeqBatch:
    """``n`` sequences per run, run ``r`` drawn with ``generators[r]``; shape ``(R, n, T)``."""
    return stack_batches([task.sample(g, n) for g in generators], task.pad_id)


class _PcfgTask:
    def __init__(self, grammar) -> None:
        self.grammar = grammar
        self.vocab = grammar.vocab
        self.pad_id = self.vocab.pad_id
        self.n_out = len(self.vocab.terminals)
        self.vocab_size = self.vocab.size
        self.max_len = grammar.max_length

    def parsed(self, generator: torch.Generator, n: int):
        from .sampler import sample

        return sample(self.grammar, n, generator=generator)


class MaskedLMTask(_PcfgTask):
    """Masked prediction with mask rate ``rate`` on sentences of ``grammar`` (Definition 4.1)."""

    causal = False

    def __init__(self, grammar, rate: float = 0.3) -> None:
        super().__init__(grammar)
        self.rate = rate
        self.description = {"task": "mlm", "grammar": grammar.name, "mask_rate": rate}

    def from_parsed(self, parsed, generator: torch.Generator) -> SeqBatch:
        inputs, masked = mask_tokens(parsed.tokens, parsed.valid, rate=self.rate, n_terminals=self.n_out,
                                     mask_id=self.vocab.mask_id, generator=generator)
        return SeqBatch(inputs, parsed.valid, parsed.tokens, masked, per_sequence_weights(masked))

    def sample(self, generator: torch.Generator, n: int) -> SeqBatch:
        return self.from_parsed(self.parsed(generator, n), generator)


class NextTokenTask(_PcfgTask):
    """Next-token prediction restricted to level-``level`` boundary tokens (Appendix E numbering)."""

    causal = True

    def __init__(self, grammar, level: int = 1) -> None:
        super().__init__(grammar)
        self.level = check_int("boundary_level", level, 1, grammar.depth)
        self.max_len = grammar.max_length  # [BOS] + x_1..x_{h-1}: h inputs for h targets
        self.description = {"task": "next-token", "grammar": grammar.name, "boundary_level": level}

    def from_parsed(self, parsed, generator=None) -> SeqBatch:
        tok = parsed.tokens
        bos = torch.full_like(tok[:, :1], self.vocab.bos_id)
        inputs = torch.cat([bos, tok[:, :-1]], 1)
        selected = parsed.boundary[:, self.grammar.depth - self.level, :] & parsed.valid
        return SeqBatch(inputs, parsed.valid, tok, selected, per_sequence_weights(selected))

    def sample(self, generator: torch.Generator, n: int) -> SeqBatch:
        return self.from_parsed(self.parsed(generator, n))


class ParityTask:
    """(d, k)-sparse parity with Transformers (Appendix C.2): bit ``x_j = +1`` is token 0, ``-1``
    token 1; class 0 when ``prod_{i in S} x_i = +1`` (Definition 3.1). ``readout``: ``"last"`` (the
    paper's causal model reads the label at the last bit) or ``"cls"`` (a ``[CLS]`` token, id 2,
    put first; bidirectional)."""

    n_out = 2

    def __init__(self, d: int, support: torch.Tensor, readout: str = "last") -> None:
        self.d = check_int("d", d, 2)
        self.support = support.long()
        if readout not in ("last", "cls"):
            raise ParameterError(f"readout must be one of ('last', 'cls'), got {readout!r}")
        self.readout = readout
        self.causal = readout == "last"
        self.cls_id, self.pad_id = 2, 3
        self.vocab_size = 4
        self.max_len = d + (readout == "cls")
        self.position = self.max_len - 1 if readout == "last" else 0
        self.description = {"task": "parity", "d": d, "k": int(self.support.numel()),
                            "support": self.support.tolist(), "readout": readout}

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in {+-1}^(N, d) -> tokens ``(N, T)``."""
        bits = (x < 0).long()
        if self.readout == "cls":
            bits = torch.cat([torch.full_like(bits[:, :1], self.cls_id), bits], 1)
        return bits

    def from_x(self, x: torch.Tensor) -> SeqBatch:
        n = x.shape[0]
        labels = D.parity_labels(x, self.support.to(x.device))[1]
        inputs = self.encode(x)
        targets = torch.zeros_like(inputs)
        targets[:, self.position] = labels
        selected = torch.zeros_like(inputs, dtype=torch.bool)
        selected[:, self.position] = True
        return SeqBatch(inputs, torch.ones_like(selected), targets, selected, per_sequence_weights(selected))

    def sample(self, generator: torch.Generator, n: int) -> SeqBatch:
        bits = torch.randint(0, 2, (n, self.d), generator=generator, device=generator.device)
        return self.from_x((1 - 2 * bits).float())

    def readout_logits(self, model, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(R, N, 2)`` of every run at the read-out position, for the probes of :mod:`simulate.probes`."""
        return model(self.encode(x).to(next(model.parameters()).device)).logits[:, :, self.position, :]
