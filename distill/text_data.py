"""A corpus prepared for masked LM: tokenizer, packed token streams, document index (Section 4.2).

:func:`prepare_text` loads the corpus (:mod:`distill.corpus`), splits its documents into training
and held-out ones, trains the WordPiece tokenizer on the training documents
(:mod:`distill.text_tokenizer`), tokenizes every document once and packs each split into one
stream: the documents' tokens concatenated with ``[SEP]`` between documents (no ``[CLS]``: there
is no next-sentence task). A block of the task is any ``seq_len`` consecutive tokens of a stream
(:func:`cut_blocks` for the fixed, non-overlapping ones).

Saved in a directory (``<teacher run>/text/``), written atomically (a temporary directory, then
a rename) so that students and a resumed teacher load the very same tokenizer and tokens:

* ``tokenizer.json``: the tokenizer (``tokenizers`` format);
* ``train.npy`` / ``heldout.npy``: the streams, ``(N,)`` uint16 (uint32 for vocabularies > 65535);
* ``train_docs.npy`` / ``heldout_docs.npy``: ``(D, 2)`` int64, each document's start in its stream
  and its length in tokens;
* ``meta.json``: the settings it was built with (a directory built with other settings is rebuilt),
  counts, the corpus's and the tokenizer's SHA-256, the Python version (``python-docs`` depends on it;
  a saved directory is reused under any version: its tokens are what the models were trained on).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from theory._checks import ParameterError

from . import corpus as C
from .text_tokenizer import SEP_ID, TextTokenizer, train_wordpiece

__all__ = ["PreparedText", "prepare_text", "load_prepared", "stream_sha256", "pack_documents", "cut_blocks",
           "text_settings"]

_FORMAT = 1
_SPLITS = ("train", "heldout")
_FILES = ("meta.json", "tokenizer.json", *(f"{s}{x}.npy" for s in _SPLITS for x in ("", "_docs")))


@dataclass(frozen=True)
class PreparedText:
    """A prepared corpus: ``streams[split]`` (N,) token ids, ``docs[split]`` (D, 2) (start, length)."""

    tokenizer: TextTokenizer
    streams: dict[str, np.ndarray]
    docs: dict[str, np.ndarray]
    meta: dict


def text_settings(cfg) -> dict:
    """The config fields a prepared directory depends on (a path corpus as an absolute path)."""
    corpus = cfg.corpus if cfg.corpus == C.PYTHON_DOCS else str(Path(cfg.corpus).expanduser().resolve())
    return {"format": _FORMAT, "corpus": corpus, "corpus_glob": cfg.corpus_glob, "documents": cfg.documents,
            "heldout": cfg.heldout, "split_seed": cfg.split_seed, "vocab_size": cfg.vocab_size,
            "min_frequency": cfg.min_frequency}


def pack_documents(token_lists, sep_id: int = SEP_ID, dtype=np.uint32) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate documents' token ids with ``sep_id`` between consecutive documents.

    Returns ``(stream (N,), docs (D, 2))``: ``stream[s:s + n]`` is document ``d`` for ``(s, n) = docs[d]``,
    ``N = sum(n) + D - 1``. Empty documents are kept in ``docs`` (length 0) but add no separator.
    """
    parts, docs, pos = [], [], 0
    for ids in token_lists:
        ids = np.asarray(ids, dtype=dtype)
        if len(ids) and pos:
            parts.append(np.array([sep_id], dtype=dtype))
            pos += 1
        docs.append((pos, len(ids)))
        parts.append(ids)
        pos += len(ids)
    stream = np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)
    return stream, np.asarray(docs, dtype=np.int64).reshape(-1, 2)


def cut_blocks(stream: np.ndarray, seq_len: int) -> np.ndarray:
    """The stream cut into ``floor(N / seq_len)`` consecutive blocks, shape ``(n_blocks, seq_len)``
    (the remainder, fewer than ``seq_len`` tokens, is dropped)."""
    n = len(stream) // seq_len
    return stream[: n * seq_len].reshape(n, seq_len)


def _encode(tokenizer: TextTokenizer, docs, dtype, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    def lists():
        chunk = []
        for d in docs:
            chunk.append(d.text)
            if len(chunk) == batch:
                yield from tokenizer.encode_batch(chunk)
                chunk = []
        if chunk:
            yield from tokenizer.encode_batch(chunk)
    return pack_documents(lists(), tokenizer.sep_id, dtype)


def _build(cfg, settings: dict) -> PreparedText:
    def docs():
        return C.corpus_documents(cfg.corpus, glob=cfg.corpus_glob, documents=cfg.documents)

    def which(d) -> str:
        return "heldout" if C.heldout_unit(d.name, cfg.split_seed) < cfg.heldout else "train"

    def split(name):
        return (d for d in docs() if which(d) == name)

    counts = {s: 0 for s in _SPLITS}

    def counted():
        for d in docs():
            counts[which(d)] += 1
            yield d

    stats = C.text_stats(counted())
    if not stats["documents"]:
        raise ParameterError(f"corpus {cfg.corpus!r} holds no text (every document is empty)")
    if not counts["train"] or not counts["heldout"]:
        raise ParameterError(f"heldout = {cfg.heldout} leaves {counts['train']} training and {counts['heldout']} "
                             f"held-out documents of corpus {cfg.corpus!r} (both must be >= 1): change heldout, "
                             f"or split files into blocks (documents=blank-line)")
    tokenizer = train_wordpiece(lambda: (d.text for d in split("train")), cfg.vocab_size,
                                min_frequency=cfg.min_frequency)
    dtype = np.uint16 if tokenizer.vocab_size <= 1 << 16 else np.uint32
    streams, index = {}, {}
    for s in _SPLITS:
        streams[s], index[s] = _encode(tokenizer, split(s), dtype)
    meta = {"settings": settings, "python": sys.version.split()[0],  # python-docs depends on it
            "corpus_sha256": stats["sha256"], "corpus_bytes": stats["bytes"],
            "vocab_size": tokenizer.vocab_size, "tokenizer_sha256": tokenizer.sha256,
            "streams_sha256": stream_sha256(streams, index),
            **{f"{s}_documents": int(len(index[s])) for s in _SPLITS},
            **{f"{s}_tokens": int(len(streams[s])) for s in _SPLITS},
            "unk_fraction": float(np.mean(np.concatenate([streams[s] for s in _SPLITS]) == tokenizer.unk_id))}
    return PreparedText(tokenizer, streams, index, meta)


def _save(data: PreparedText, where: Path) -> None:
    where.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=where.parent, prefix=f".{where.name}."))
    try:
        data.tokenizer.save(tmp / "tokenizer.json")
        for s in _SPLITS:
            np.save(tmp / f"{s}.npy", data.streams[s])
            np.save(tmp / f"{s}_docs.npy", data.docs[s])
        (tmp / "meta.json").write_text(json.dumps(data.meta, indent=2, sort_keys=True) + "\n")
        if where.exists():
            shutil.rmtree(where)
        os.replace(tmp, where)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _load(where: Path, settings: dict) -> PreparedText | None:
    try:
        meta = json.loads((where / "meta.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if meta.get("settings") != settings:
        return None
    return _read(where, meta)


def _read(where: Path, meta: dict) -> PreparedText:
    """The tokenizer and the token streams saved in ``where`` (by :func:`_save`), with ``meta``."""
    tokenizer = TextTokenizer.load(where / "tokenizer.json")
    streams = {s: np.load(where / f"{s}.npy", allow_pickle=False) for s in _SPLITS}
    docs = {s: np.load(where / f"{s}_docs.npy", allow_pickle=False) for s in _SPLITS}
    return PreparedText(tokenizer, streams, docs, meta)


def stream_sha256(streams: dict, docs: dict) -> str:
    """SHA-256 of the token streams and document indexes of every split (dtype, shape and bytes)."""
    h = hashlib.sha256()
    for s in _SPLITS:
        for a in (np.ascontiguousarray(streams[s]), np.ascontiguousarray(docs[s])):
            h.update(f"{s}:{a.dtype.str}:{a.shape}:".encode())
            h.update(a.tobytes())
    return h.hexdigest()


def load_prepared(where, *, expect: dict | None = None, who: str = "teacher") -> PreparedText:
    """The prepared corpus saved in ``where`` (a teacher's ``text/``), read only: every file must be there
    and readable, the tokenizer must hash to ``meta.json``'s ``tokenizer_sha256`` and the streams to its
    ``streams_sha256`` (when recorded), and both to ``expect`` (``{"tokenizer_sha256": ..., "streams_sha256":
    ...}``, the teacher's summary) when given. The settings are not compared (a student reads whatever its
    teacher trained on). One-line ``ParameterError`` otherwise; nothing is written, nothing rebuilt."""
    where = Path(where)
    missing = [f for f in _FILES if not (where / f).is_file()]
    if missing:
        what = "does not exist" if not where.is_dir() else f"is incomplete (no {', '.join(missing)})"
        raise ParameterError(f"{who}'s prepared corpus {str(where)!r} {what}: train that teacher again "
                             "(a student only reads its teacher's text/)")
    try:
        meta = json.loads((where / "meta.json").read_text(encoding="utf-8"))
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
        data = _read(where, meta)
    except ParameterError:
        raise
    except Exception as exc:  # noqa: BLE001 (json, numpy and tokenizers raise their own classes on corrupt files)
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise ParameterError(f"{who}'s prepared corpus {str(where)!r} is corrupt ({first}): train that teacher "
                             "again") from None
    got = {"tokenizer_sha256": data.tokenizer.sha256, "streams_sha256": stream_sha256(data.streams, data.docs)}
    for key, value in got.items():
        what = {"tokenizer_sha256": "tokenizer", "streams_sha256": "token streams"}[key]
        for source, want in (("its meta.json", meta.get(key)), ("the teacher's summary.json", (expect or {}).get(key))):
            if want is not None and want != value:
                raise ParameterError(f"{who}'s prepared corpus {str(where)!r}: the {what} hash {value[:12]} differs from "
                                     f"the {str(want)[:12]} recorded in {source} (changed since the teacher trained?): "
                                     "train that teacher again")
    return data


def prepare_text(cfg, where=None) -> PreparedText:
    """The prepared corpus of a text config (fields ``corpus``, ``corpus_glob``, ``documents``,
    ``heldout``, ``split_seed``, ``vocab_size``, ``min_frequency``): loaded from ``where`` when it holds
    one built with these settings, else built (and saved there unless ``where`` is None)."""
    settings = text_settings(cfg)
    where = Path(where) if where is not None else None
    if where is not None:
        found = _load(where, settings)
        if found is not None:
            return found
    data = _build(cfg, settings)
    if where is not None:
        _save(data, where)
    return data
