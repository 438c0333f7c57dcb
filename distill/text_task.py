"""Masked language modeling on natural text (Section 4.2): the task of the ``text`` experiments.

:class:`TextMaskedLMTask` has the interface of :class:`distill.tasks.MaskedLMTask`. A training
batch is ``n`` blocks of ``seq_len`` consecutive tokens of the training stream at uniformly random
offsets (:mod:`distill.text_data`: documents packed with ``[SEP]`` between them), masked as in
Definition 4.1 / BERT: every token except ``[SEP]`` is selected with probability ``mask_rate`` and
its input becomes ``[MASK]`` (80%), a uniformly random non-special token (10%) or stays (10%). The
model predicts over the whole vocabulary (``n_out = vocab_size``).

Held-out data (the :class:`distill.evaluate.Evaluator` draws them once):

* :meth:`heldout`: fixed non-overlapping blocks of the held-out stream (loss and accuracy);
* :meth:`segments`: single-document windows of held-out documents, padded to ``seq_len``, for the
  n-gram measures M_robust / M_close (eqs. 5-6): a window holds no ``[SEP]`` and occupies positions
  ``0..h-1`` followed by padding, so the n-gram windows are exactly those of Definition 4.2.

There is no parse tree, so the non-terminal probe of Appendix D.3 does not apply (text configs
have no probe fields).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import torch

from theory._checks import ParameterError, check_int

from .objectives import mask_tokens, per_sequence_weights
from .tasks import SeqBatch
from .text_data import PreparedText, load_prepared, prepare_text

__all__ = ["TextVocab", "TextBlocks", "TextMaskedLMTask", "text_task"]

_MIN_SEGMENT = 8  # held-out documents shorter than this many tokens give no measure windows


@dataclass(frozen=True)
class TextVocab:
    """Sizes and special ids of a text tokenizer (``size`` counts the specials)."""

    size: int
    pad_id: int
    unk_id: int
    cls_id: int
    sep_id: int
    mask_id: int
    n_special: int


@dataclass(frozen=True)
class TextBlocks:
    """Token blocks ``(N, T)``: ``tokens`` long, ``valid`` bool (False: padding), ``maskable`` bool
    (valid and not ``[SEP]``: the positions masking and the measures may touch)."""

    tokens: torch.Tensor
    valid: torch.Tensor
    maskable: torch.Tensor

    def to(self, device) -> "TextBlocks":
        return TextBlocks(*(getattr(self, f.name).to(device) for f in fields(self)))


class TextMaskedLMTask:
    """Masked prediction with mask rate ``rate`` on blocks of ``seq_len`` tokens of a prepared corpus."""

    causal = False

    def __init__(self, data: PreparedText, seq_len: int, rate: float = 0.15, *, corpus: str = "") -> None:
        tk = data.tokenizer
        self.data = data
        self.seq_len = check_int("seq_len", seq_len, 2)
        self.rate = rate
        self.vocab = TextVocab(tk.vocab_size, tk.pad_id, tk.unk_id, tk.cls_id, tk.sep_id, tk.mask_id, tk.n_special)
        self.pad_id = tk.pad_id
        self.n_out = self.vocab_size = tk.vocab_size
        self.max_len = self.seq_len
        for split in ("train", "heldout"):
            n = len(data.streams[split])
            if n < self.seq_len:
                raise ParameterError(f"the {split} split of corpus {corpus!r} has {n} tokens, fewer than seq_len = "
                                     f"{self.seq_len}: lower seq_len or use a larger corpus (or heldout)")
        self._streams: dict[tuple[str, str], torch.Tensor] = {}
        self.description = {"task": "text-mlm", "corpus": corpus, "vocab_size": tk.vocab_size, "seq_len": seq_len,
                            "mask_rate": rate, "tokenizer_sha256": data.meta.get("tokenizer_sha256"),
                            "streams_sha256": data.meta.get("streams_sha256"),
                            **{k: data.meta[k] for k in ("train_tokens", "heldout_tokens", "train_documents",
                                                          "heldout_documents") if k in data.meta}}

    def stream(self, split: str, device) -> torch.Tensor:
        """The ``split`` stream as an int32 tensor on ``device`` (cached)."""
        device = torch.device(device)
        key = (split, str(device))
        if key not in self._streams:
            self._streams[key] = torch.from_numpy(self.data.streams[split].astype("int32")).to(device)
        return self._streams[key]

    def _blocks(self, tokens: torch.Tensor, valid: torch.Tensor | None = None) -> TextBlocks:
        valid = torch.ones_like(tokens, dtype=torch.bool) if valid is None else valid
        tokens = tokens.long().masked_fill(~valid, self.pad_id)
        return TextBlocks(tokens, valid, valid & (tokens != self.vocab.sep_id))

    def blocks(self, generator: torch.Generator, n: int) -> TextBlocks:
        """``n`` training blocks at uniformly random offsets of the training stream; ``(n, seq_len)``."""
        s = self.stream("train", generator.device)
        starts = torch.randint(0, len(s) - self.seq_len + 1, (n,), generator=generator, device=generator.device)
        return self._blocks(s[starts[:, None] + torch.arange(self.seq_len, device=s.device)])

    def heldout(self, generator: torch.Generator, n: int) -> TextBlocks:
        """Up to ``n`` distinct fixed blocks of the held-out stream (:func:`cut_blocks`), in stream order."""
        s = self.stream("heldout", generator.device)
        total = len(s) // self.seq_len
        pick = torch.randperm(total, generator=generator, device=generator.device)[:n].sort().values
        return self._blocks(s[pick[:, None] * self.seq_len + torch.arange(self.seq_len, device=s.device)])

    def segments(self, generator: torch.Generator, n: int) -> TextBlocks:
        """``n`` windows of held-out documents (document ``d`` with probability proportional to its length
        among those of at least 8 tokens, a uniform offset): ``min(length, seq_len)`` tokens at positions
        ``0..h-1``, then padding (``valid`` False)."""
        dev = generator.device
        docs = torch.as_tensor(self.data.docs["heldout"], device=dev)
        docs = docs[docs[:, 1] >= _MIN_SEGMENT]
        if not len(docs):
            raise ParameterError(f"no held-out document has {_MIN_SEGMENT} tokens or more: the n-gram measures "
                                 "need longer documents (or measure_every=0)")
        d = torch.multinomial(docs[:, 1].double(), n, replacement=True, generator=generator)
        start, length = docs[d, 0], docs[d, 1]
        room = (length - self.seq_len).clamp(min=0) + 1
        offset = (torch.rand(n, generator=generator, device=dev) * room).long().clamp(max=room - 1)
        h = length.clamp(max=self.seq_len)
        j = torch.arange(self.seq_len, device=dev)
        s = self.stream("heldout", dev)
        idx = (start + offset)[:, None] + j
        return self._blocks(s[idx.clamp(max=len(s) - 1)], j[None] < h[:, None])

    def from_parsed(self, blocks: TextBlocks, generator: torch.Generator) -> SeqBatch:
        """Mask ``blocks`` (Definition 4.1): random replacements are drawn among the non-special tokens."""
        k = self.vocab.n_special  # shift so that the non-special ids are 0..V-k-1, as mask_tokens draws them
        inputs, masked = mask_tokens(blocks.tokens - k, blocks.maskable, rate=self.rate,
                                     n_terminals=self.vocab_size - k, mask_id=self.vocab.mask_id - k,
                                     generator=generator)
        return SeqBatch(inputs + k, blocks.valid.to(inputs.device), blocks.tokens.to(inputs.device), masked,
                        per_sequence_weights(masked))

    def sample(self, generator: torch.Generator, n: int) -> SeqBatch:
        return self.from_parsed(self.blocks(generator, n), generator)


def text_task(cfg, where=None, *, read_only: bool = False) -> TextMaskedLMTask:
    """The task of a :class:`distill.text_config.TextTeacherConfig`; the prepared corpus is read from
    (or built into) ``where`` (a teacher run's ``text/`` directory; None: built in memory). When the
    run beside ``where`` is finished, its tokenizer must be the one it was trained with (a rebuilt
    directory of a changed corpus is refused). ``read_only`` (a student): ``where`` is only read
    (:func:`distill.text_data.load_prepared`: complete, and hashing to what the teacher recorded);
    nothing is built or written there."""
    summary = Path(where).parent / "summary.json" if where is not None else None
    recorded = {}
    if summary is not None and summary.is_file():
        from infra.config import read_json_file

        recorded = read_json_file(summary, "teacher summary")
        recorded = recorded if isinstance(recorded, dict) else {}
    if read_only:
        if where is None:
            raise ParameterError("a student's text task needs its teacher's text/ directory")
        data = load_prepared(where, expect={k: recorded.get(k) for k in ("tokenizer_sha256", "streams_sha256")})
        return TextMaskedLMTask(data, cfg.seq_len, cfg.mask_rate, corpus=cfg.corpus)
    data = prepare_text(cfg, where)
    if recorded:
        want = recorded.get("tokenizer_sha256")
        if want and want != data.meta.get("tokenizer_sha256"):
            raise ParameterError(f"the tokenizer in {str(where)!r} is not the one run {str(Path(where).parent)!r} "
                                 f"was trained with (the corpus changed since?): rerun that teacher")
    return TextMaskedLMTask(data, cfg.seq_len, cfg.mask_rate, corpus=cfg.corpus)
