"""Plain-text corpora for masked language modeling on natural text (Section 4.2, Appendix F).

The paper trains BERT on Wikipedia and Books; users point the ``corpus`` field at such text:

* a file or a directory (searched recursively, files in sorted order, ``*.txt`` by default or another
  glob), one document per file (``documents="file"``) or per blank-line-separated block
  (``documents="blank-line"``: paragraphs, or one Wikipedia article per block in a dump written that
  way);
* ``python-docs``: a small real English corpus built, without any download, from the Python
  installation that runs this code (:func:`python_docs_documents`): the docstrings of the public
  standard-library modules and the topics of the Python language reference that ship in
  ``pydoc_data/topics.py``, both under the PSF License, filtered to prose paragraphs. The CPU
  defaults and the tests use it; ``icurr text corpus --out DIR`` writes it as ``.txt`` files.

Documents are ``(name, text)`` pairs. :func:`split_documents` assigns each one to the training or the
held-out split by a hash of ``(seed, name)``: deterministic, independent of the order and of the other
documents, and so usable on a stream of documents.
"""
from __future__ import annotations

import ast
import codecs
import hashlib
import json
import re
import sys
import sysconfig
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Iterator

from theory._checks import ParameterError, check_choice, check_int, check_real

__all__ = ["Document", "PYTHON_DOCS", "DOCUMENT_MODES", "iter_documents", "load_documents", "corpus_documents",
           "check_corpus", "split_documents", "heldout_unit", "python_docs_documents", "write_corpus", "text_stats",
           "read_text_file"]

PYTHON_DOCS = "python-docs"
DOCUMENT_MODES = ("file", "blank-line")
_BLOCK = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)*")  # blank lines (the next line keeps its indentation)
# a word of prose: letters with inner apostrophes/hyphens, optionally wrapped in quotes or brackets
_WORD = re.compile(r"""^[("'`]*[A-Za-z][a-z]*(?:['-][A-Za-z]+)*[)"'`.,;:!?]*$""")
_SKIP_PARTS = {"site-packages", "dist-packages", "test", "tests", "idle_test"}


@dataclass(frozen=True)
class Document:
    """One document: ``name`` (its file, ``file#k`` for a block, or a module name) and its ``text``."""

    name: str
    text: str


# ------------------------------------------------------------------ files and directories

def _blocks(doc: Document) -> Iterator[Document]:
    """The blank-line-separated blocks of ``doc`` as documents ``name#k`` (k from 0, empty ones skipped)."""
    k = 0
    for block in _BLOCK.split(doc.text):
        if block.strip():
            yield Document(f"{doc.name}#{k}", block.strip())
            k += 1


def iter_documents(path, *, glob: str = "*.txt", documents: str = "file") -> Iterator[Document]:
    """The documents of a file or a directory (recursive, sorted by relative path, files matching
    ``glob``), one per file or per blank-line block; whitespace-only documents are skipped.
    Raises ``ParameterError`` for a missing path or a directory without matching files."""
    documents = check_choice("documents", documents, DOCUMENT_MODES)
    root = Path(path).expanduser()
    if root.is_file():
        files = [(root.name, root)]
    elif root.is_dir():
        files = sorted((p.relative_to(root).as_posix(), p) for p in root.rglob(glob) if p.is_file())
        if not files:
            raise ParameterError(f"corpus {str(path)!r} holds no files matching {glob!r} (corpus_glob)")
    else:
        raise ParameterError(f"corpus {str(path)!r} does not exist: give a text file, a directory of "
                             f"{glob} files, or {PYTHON_DOCS!r}")
    for name, p in files:
        doc = Document(name, read_text_file(p).strip())
        if not doc.text:
            continue
        yield from (_blocks(doc) if documents == "blank-line" else (doc,))


_PROBE_BYTES = 64 * 1024  # how much of a corpus file check_corpus reads


def _decode(data: bytes, path: Path, *, partial: bool = False) -> str:
    """``data`` as corpus text: UTF-8 (a BOM allowed) without NUL characters, else a one-line
    ``ParameterError`` naming the file and the first offending byte (``partial``: ``data`` is the start
    of the file, which may end inside a character)."""
    try:
        if partial:
            text = codecs.getincrementaldecoder("utf-8-sig")().decode(data, final=False)
        else:
            text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParameterError(f"corpus file {str(path)!r} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset "
                             f"{exc.start}): convert it to UTF-8, or leave it out (corpus_glob)") from None
    nul = text.find("\0")
    if nul >= 0:
        raise ParameterError(f"corpus file {str(path)!r} is binary, not text (a NUL at character {nul}): "
                             "leave it out (corpus_glob)")
    return text


def read_text_file(path) -> str:
    """The text of a corpus file: UTF-8 (a BOM allowed) without NUL characters; a binary file (or one in
    another encoding) raises a one-line ``ParameterError`` naming it and the first offending byte."""
    path = Path(path)
    return _decode(path.read_bytes(), path)


def check_corpus(spec: str, glob: str = "*.txt") -> None:
    """A light check of a corpus spec before any work (sweeps check every point with it):
    ``python-docs``, or a readable file, or a directory holding a file matching ``glob``, whose first
    64 KiB are corpus text (:func:`read_text_file`'s rule)."""
    if spec == "python-docs":
        return
    path = Path(spec).expanduser()
    if path.is_dir():
        first = next((p for p in sorted(path.rglob(glob)) if p.is_file()), None)
        if first is None:
            raise ParameterError(f"corpus {spec!r} holds no files matching {glob!r} (corpus_glob)")
        path = first
    elif not path.is_file():
        raise ParameterError(f"corpus {spec!r} does not exist: give a text file, a directory of {glob} files, "
                             f"or 'python-docs'")
    try:
        with open(path, "rb") as fh:
            head = fh.read(_PROBE_BYTES)
    except OSError as exc:
        raise ParameterError(f"corpus {spec!r}: {path} cannot be read: {exc.strerror or exc}") from None
    _decode(head, path, partial=True)


def corpus_documents(spec: str, *, glob: str = "*.txt", documents: str = "file") -> Iterator[Document]:
    """The documents of a corpus spec: a path (:func:`iter_documents`) or ``python-docs``."""
    if not spec:
        raise ParameterError(f"corpus must name a text file, a directory or {PYTHON_DOCS!r}")
    if spec == PYTHON_DOCS:
        docs = python_docs_documents()
        if documents == "blank-line":
            return (b for d in docs for b in _blocks(d))
        return iter(docs)
    return iter_documents(spec, glob=glob, documents=documents)


def load_documents(spec: str, *, glob: str = "*.txt", documents: str = "file") -> list[Document]:
    """:func:`corpus_documents` as a list; raises when the corpus holds no text at all."""
    docs = list(corpus_documents(spec, glob=glob, documents=documents))
    if not docs:
        raise ParameterError(f"corpus {spec!r} holds no text (every document is empty)")
    return docs


def heldout_unit(name: str, seed: int) -> float:
    """A number in [0, 1) fixed by ``(seed, name)`` (SHA-256): the document is held out when it is
    below the held-out fraction."""
    digest = hashlib.sha256(f"{seed}\0{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def split_documents(docs: Iterable[Document], heldout: float, seed: int = 0) -> tuple[list[Document], list[Document]]:
    """``(train, held_out)``: a document is held out when ``heldout_unit(name, seed) < heldout``
    (about a fraction ``heldout`` of the documents). Raises when either side is empty."""
    heldout = check_real("heldout", heldout, 0, 1, lo_open=True, hi_open=True)
    seed = check_int("split_seed", seed, 0)
    train, held = [], []
    for d in docs:
        (held if heldout_unit(d.name, seed) < heldout else train).append(d)
    if not train or not held:
        raise ParameterError(f"heldout = {heldout} leaves {len(train)} training and {len(held)} held-out documents "
                             f"(both must be >= 1): change heldout, or split files into blocks (documents=blank-line)")
    return train, held


# ------------------------------------------------------------------ the python-docs corpus

def _is_prose(paragraph: str) -> bool:
    """A paragraph of English prose: no indented line (code, literal blocks, grammar), no doctest line,
    at least 5 words of which at least 70% are plain words."""
    lines = paragraph.splitlines()
    if not lines or any(line[:1].isspace() or line.startswith(">>>") for line in lines):
        return False
    if lines[0].startswith(("...", "..", "$ ", ":", "*", "=", "-", "+")):
        return False
    words = paragraph.split()
    return len(words) >= 5 and sum(bool(_WORD.match(w)) for w in words) >= 0.7 * len(words)


def _prose(texts: Iterable[str], seen: set[str]) -> str:
    """The prose paragraphs of ``texts``, each line-joined, dropping any already in ``seen`` (updated)."""
    kept = []
    for text in texts:
        for par in _BLOCK.split(text.strip()):
            if _is_prose(par):
                flat = " ".join(par.split())
                if flat not in seen:
                    seen.add(flat)
                    kept.append(flat)
    return "\n\n".join(kept)


def _docstrings(tree: ast.AST) -> Iterator[str]:
    """Docstrings of a module, its classes and functions, in source order."""
    nodes = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, nodes):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                yield doc
            stack.extend(reversed([n for n in node.body if isinstance(n, nodes)]))


def _stdlib_modules(root: Path) -> list[tuple[str, Path]]:
    """``(dotted name, path)`` of the public standard-library modules below ``root``, sorted: no private
    module or package (a part starting with ``_``), no tests, nothing installed in site-packages."""
    out = []
    for p in root.rglob("*.py"):
        parts = p.relative_to(root).parts
        if _SKIP_PARTS & set(parts) or any(x.startswith("_") and x != "__init__.py" for x in parts):
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__.py" else (*parts[:-1], parts[-1][:-3]))
        if name:
            out.append((name, p))
    return sorted(out)


def _topics(root: Path) -> dict[str, str]:
    """The language-reference topics of ``pydoc_data/topics.py`` (read with ``ast``, not imported)."""
    path = root / "pydoc_data" / "topics.py"
    if not path.is_file():
        return {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "topics" for t in node.targets):
            return ast.literal_eval(node.value)
    return {}


@lru_cache(maxsize=2)
def _python_docs_all(root: str) -> tuple[Document, ...]:
    """Every ``python-docs`` document below the standard library ``root``, sorted by name (cached)."""
    base = Path(root)
    seen: set[str] = set()
    docs = []
    for name, text in sorted(_topics(base).items()):
        docs.append(Document(f"topics.{name}", _prose([text], seen)))
    for name, path in _stdlib_modules(base):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue
        docs.append(Document(name, _prose(_docstrings(tree), seen)))
    docs = [d for d in docs if len(d.text) >= 200]
    if not docs:
        raise ParameterError(f"no documentation prose found below {str(base)!r} (is the standard library's "
                             "source installed?)")
    return tuple(sorted(docs, key=lambda d: d.name))


def python_docs_documents(max_bytes: int = 2_000_000, root: str | None = None) -> tuple[Document, ...]:
    """The ``python-docs`` corpus: prose paragraphs of the Python documentation that ships with the
    interpreter (PSF License), one document per public standard-library module (its module, class
    and function docstrings, ``name`` = the module) and per language-reference topic
    (``topics.<name>``). Paragraphs are deduplicated over the corpus; documents shorter than 200
    characters are dropped. Sorted by name; when they exceed ``max_bytes`` (UTF-8), the documents
    first in the order of SHA-256(name) are kept up to that size. Deterministic for a given Python
    installation (its version is recorded by :func:`write_corpus`); the first call takes a few
    seconds (parsing), later ones reuse it. ``root``: the standard library (default: this Python's)."""
    max_bytes = check_int("max_bytes", max_bytes, 1000)
    docs = _python_docs_all(str(root or sysconfig.get_paths()["stdlib"]))
    kept, size = set(), 0
    for d in sorted(docs, key=lambda d: hashlib.sha256(d.name.encode()).hexdigest()):
        n = len(d.text.encode()) + 1
        if size + n > max_bytes:
            break
        kept.add(d.name)
        size += n
    return tuple(d for d in docs if d.name in kept)


def text_stats(docs: Iterable[Document]) -> dict:
    """Documents, bytes, whitespace words, the fraction of plain words (:data:`_WORD`) and a SHA-256 of
    the documents (names and texts, in order)."""
    h = hashlib.sha256()
    n = size = words = plain = 0
    for d in docs:
        n += 1
        size += len(d.text.encode())
        w = d.text.split()
        words += len(w)
        plain += sum(bool(_WORD.match(x)) for x in w)
        h.update(d.name.encode() + b"\0" + d.text.encode() + b"\0")
    return {"documents": n, "bytes": size, "words": words, "plain_word_fraction": plain / max(words, 1),
            "sha256": h.hexdigest()}


def write_corpus(docs: Iterable[Document], out) -> dict:
    """Write ``docs`` as ``<name>.txt`` files into the directory ``out`` (created; must not hold .txt
    files already), with ``SOURCE.md`` (origin and licence) and ``manifest.json`` (the stats of
    :func:`text_stats`, Python version). Returns the manifest."""
    out = Path(out)
    if out.exists() and any(out.rglob("*.txt")):
        raise ParameterError(f"out {str(out)!r} already holds .txt files; choose an empty or new directory")
    out.mkdir(parents=True, exist_ok=True)
    docs = list(docs)
    for d in docs:
        if "/" in d.name or d.name.startswith("."):
            raise ParameterError(f"document name {d.name!r} cannot be a file name")
        (out / f"{d.name}.txt").write_text(d.text + "\n", encoding="utf-8")
    manifest = {**text_stats(docs), "python": sys.version.split()[0], "source": PYTHON_DOCS}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (out / "SOURCE.md").write_text(
        f"Prose paragraphs of the documentation that ships with Python {manifest['python']}: docstrings of the "
        "public standard-library modules and the language-reference topics of pydoc_data/topics.py.\n"
        "Copyright Python Software Foundation; PSF License Version 2 "
        "(https://docs.python.org/3/license.html).\nBuilt by `icurr text corpus` (distill.corpus).\n")
    return manifest
