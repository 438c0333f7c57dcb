"""``icurr text corpus``: the text family's own tool (build or describe the ``python-docs`` corpus).
Its ``teacher|student|compare`` subcommands come from :mod:`icurr.commands.experiment`; they train
on a corpus named by ``corpus=`` / ``--corpus`` (a text file, a directory of text files, or
``python-docs``), and a teacher's run directory keeps the tokenizer and token streams (``text/``), which
its students only read (checked against the hashes the teacher recorded; a missing or changed
``text/`` is refused in one line, never rebuilt)."""
from __future__ import annotations

from ..output import FORMATS, emit


def register(sub) -> None:
    c = sub.add_parser("corpus", help="build (--out DIR) or describe the python-docs corpus")
    c.add_argument("--out", default=None, help="write the documents as DIR/<name>.txt (with SOURCE.md, manifest.json)")
    c.add_argument("--max-bytes", type=int, default=2_000_000, help="size cap in bytes (default 2000000)")
    c.add_argument("--format", choices=FORMATS, default="table")
    c.set_defaults(handler=_corpus)


def _corpus(args) -> None:
    from distill.corpus import python_docs_documents, text_stats, write_corpus

    docs = python_docs_documents(args.max_bytes)
    row = write_corpus(docs, args.out) if args.out else text_stats(docs)
    emit([{"out": args.out or "-", **row}], args.format)
