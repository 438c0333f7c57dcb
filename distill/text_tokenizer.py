"""A BERT-style WordPiece tokenizer trained on the corpus (Section 4.2; Devlin et al., 2018).

Lowercased, accents stripped, split on whitespace and punctuation (``BertNormalizer``,
``BertPreTokenizer``), WordPiece sub-words with the ``##`` continuation prefix, and the special tokens
of :data:`SPECIALS` at the fixed ids 0-4 (``[PAD]`` 0, ``[UNK]`` 1, ``[CLS]`` 2, ``[SEP]`` 3,
``[MASK]`` 4). Built on the optional ``tokenizers`` package (``pip install
'implicit-curriculum[text]'``), imported only when a tokenizer is needed.

Training is deterministic: ``tokenizers``' WordPiece trainer numbers the ``##`` continuation tokens
in hash-map order, which breaks ties between equally frequent merges differently from run to run
(huggingface/tokenizers#1794); :func:`train_wordpiece` therefore declares every ``##c`` of the
corpus's alphabet up front, in sorted order, and rebuilds the model from the learned vocabulary.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable, Iterable, Sequence

from theory._checks import ParameterError, check_int

__all__ = ["SPECIALS", "PAD_ID", "UNK_ID", "CLS_ID", "SEP_ID", "MASK_ID", "TextTokenizer", "train_wordpiece",
           "require_tokenizers"]

SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = range(len(SPECIALS))
_PREFIX = "##"


def require_tokenizers():
    """The ``tokenizers`` module, or a ParameterError saying how to install it."""
    try:
        import tokenizers
    except ImportError:
        raise ParameterError("natural-text runs need the 'tokenizers' package: "
                             "pip install -e '.[text]' from a checkout "
                             "(pip install 'implicit-curriculum[text]' from an index)") from None
    return tokenizers


def _pipeline(tok) -> None:
    """Normalizer, pre-tokenizer and decoder of the BERT pipeline (lowercase, no accents)."""
    from tokenizers import decoders, normalizers, pre_tokenizers

    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=True,
                                                lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece(prefix=_PREFIX, cleanup=False)


def _from_vocab(vocab: dict[str, int]):
    """A WordPiece tokenizer with exactly ``vocab`` (token -> id) and the BERT pipeline."""
    from tokenizers import Tokenizer, models

    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", continuing_subword_prefix=_PREFIX,
                                     max_input_chars_per_word=100))
    _pipeline(tok)
    tok.add_special_tokens(list(SPECIALS))
    return tok


class TextTokenizer:
    """A trained WordPiece tokenizer (a ``tokenizers.Tokenizer``) with the ids the task needs."""

    pad_id, unk_id, cls_id, sep_id, mask_id = PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID
    n_special = len(SPECIALS)

    def __init__(self, tok) -> None:
        self.tok = tok
        for i, name in enumerate(SPECIALS):
            if tok.token_to_id(name) != i:
                raise ParameterError(f"tokenizer must map {name} to id {i}, got {tok.token_to_id(name)}")
        self.vocab_size = tok.get_vocab_size()

    @classmethod
    def load(cls, path) -> "TextTokenizer":
        """Read a ``tokenizer.json`` written by :meth:`save`."""
        require_tokenizers()
        from tokenizers import Tokenizer

        if not Path(path).is_file():
            raise ParameterError(f"tokenizer file {str(path)!r} does not exist")
        return cls(Tokenizer.from_file(str(path)))

    def save(self, path) -> None:
        self.tok.save(str(path))

    @property
    def sha256(self) -> str:
        """Hash of the vocabulary (token, id) pairs: equal for equally trained tokenizers."""
        items = sorted(self.tok.get_vocab().items(), key=lambda kv: kv[1])
        return hashlib.sha256(repr(items).encode()).hexdigest()

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no [CLS]/[SEP] added)."""
        return self.tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.tok.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Iterable[int]) -> str:
        """Tokens joined by spaces, ``##`` pieces glued to their word; special tokens kept."""
        return self.tok.decode(list(ids), skip_special_tokens=False)

    def words(self, text: str) -> list[str]:
        """The normalized words (pre-tokens) of ``text``: what the WordPiece model splits further."""
        return [w for w, _ in self.tok.pre_tokenizer.pre_tokenize_str(self.tok.normalizer.normalize_str(text))]

    def normalize(self, text: str) -> str:
        """``text`` as the tokenizer sees it, words joined by single spaces: ``decode(encode(text))``
        equals this whenever no word became ``[UNK]``."""
        return " ".join(self.words(text))

    def tokens(self, text: str) -> list[str]:
        return self.tok.encode(text, add_special_tokens=False).tokens


def train_wordpiece(texts: Callable[[], Iterable[str]], vocab_size: int, *, min_frequency: int = 2) -> TextTokenizer:
    """Train a WordPiece tokenizer of at most ``vocab_size`` tokens (specials included) on the texts
    that ``texts()`` yields (called twice: the alphabet, then training). Deterministic (module doc)."""
    require_tokenizers()
    from tokenizers import Tokenizer, models, trainers

    vocab_size = check_int("vocab_size", vocab_size, len(SPECIALS) + 1)
    min_frequency = check_int("min_frequency", min_frequency, 1)
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]", continuing_subword_prefix=_PREFIX))
    _pipeline(tok)
    alphabet: set[str] = set()
    for text in texts():
        alphabet.update(tok.normalizer.normalize_str(text))
    chars = sorted(c for c in alphabet if not c.isspace())
    if not chars:
        raise ParameterError("the training documents hold no text to train a tokenizer on")
    trainer = trainers.WordPieceTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False, continuing_subword_prefix=_PREFIX,
        special_tokens=[*SPECIALS, *(_PREFIX + c for c in chars)])
    tok.train_from_iterator(texts(), trainer=trainer)
    vocab = tok.get_vocab()
    if sorted(vocab.values()) != list(range(len(vocab))):
        raise ParameterError("the trained WordPiece vocabulary has non-contiguous ids")  # never seen; be safe
    return TextTokenizer(_from_vocab(vocab))
