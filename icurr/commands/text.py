"""``icurr text``: BERT masked LM on natural text (Section 4.2): corpus, teacher, student, compare.

``icurr text corpus`` builds (``--out DIR``) or describes the ``python-docs`` corpus;
``icurr text teacher|student|compare`` train as ``icurr pcfg ...`` does, on a corpus named by
``corpus=`` / ``--corpus`` (a text file, a directory of text files, or ``python-docs``). The teacher's
run directory keeps the tokenizer and the token streams (``text/``); its students reuse them.
"""
from __future__ import annotations

from infra.schedule import STRATEGIES

from ..output import FORMATS, emit
from ._shared import EPILOG, add_common, resolve_config

_CORPUS_HELP = ("a text file, a directory of text files (recursive; corpus_glob=, documents=file|blank-line), "
                "or python-docs (the Python documentation installed with this interpreter)")


def register(subparsers) -> None:
    help_ = "BERT masked LM on natural text (Section 4.2): corpus, teacher, student, compare"
    p = subparsers.add_parser("text", help=help_, description=help_)
    sub = p.add_subparsers(dest="text_command", metavar="SUBCOMMAND", parser_class=type(p), required=True)
    c = sub.add_parser("corpus", help="build (--out DIR) or describe the python-docs corpus")
    c.add_argument("--out", default=None, help="write the documents as DIR/<name>.txt (with SOURCE.md, manifest.json)")
    c.add_argument("--max-bytes", type=int, default=2_000_000, help="size cap in bytes (default 2000000)")
    c.add_argument("--format", choices=FORMATS, default="table")
    c.set_defaults(handler=_corpus)
    t = sub.add_parser("teacher", help="train a teacher (tokenizer, checkpoints, metrics, measures)", epilog=EPILOG)
    add_common(t, "runs/<config hash>")
    t.add_argument("--corpus", default=None, help=f"overrides corpus=: {_CORPUS_HELP}")
    t.set_defaults(handler=_teacher)
    s = sub.add_parser("student", help="train students of a saved text teacher", epilog=EPILOG)
    s.add_argument("--teacher", required=True, help="teacher run directory")
    s.add_argument("--strategy", default=None, choices=STRATEGIES, help="overrides strategy=")
    add_common(s, "runs/<config hash>")
    s.set_defaults(handler=_student)
    m = sub.add_parser("compare", help="train one teacher and a student per strategy; one row per strategy",
                       epilog=EPILOG + " Use teacher.FIELD=... and student.FIELD=...")
    add_common(m, "runs/compare-<config hash>")
    m.add_argument("--corpus", default=None, help=f"overrides teacher.corpus=: {_CORPUS_HELP}")
    m.set_defaults(handler=_compare)


def _presets():
    from distill.text_config import TEXT_PRESETS

    return TEXT_PRESETS


def _rows(rd) -> list[dict]:
    return rd.read_json("summary.json")["runs"]


def _corpus(args) -> None:
    from distill.corpus import python_docs_documents, text_stats, write_corpus

    docs = python_docs_documents(args.max_bytes)
    row = write_corpus(docs, args.out) if args.out else text_stats(docs)
    emit([{"out": args.out or "-", **row}], args.format)


def _teacher(args) -> None:
    from distill.runs import train_teacher
    from distill.text_config import TextTeacherConfig
    from infra.config import config_hash

    cfg = resolve_config(TextTeacherConfig, args, _presets(), {"corpus": args.corpus} if args.corpus else None,
                         section="teacher")
    if cfg is None:
        return
    rd = train_teacher(cfg, args.out or f"runs/{config_hash(cfg)}", progress=not args.no_progress)
    emit(_rows(rd), args.format, title=f"# text teacher: {rd.path}" if args.format == "table" else None)


def _student(args) -> None:
    from distill.runs import train_student
    from distill.text_config import TextStudentConfig
    from infra.config import config_hash

    extra = {"teacher": args.teacher, **({"strategy": args.strategy} if args.strategy else {})}
    cfg = resolve_config(TextStudentConfig, args, _presets(), extra, section="student")
    if cfg is None:
        return
    rd = train_student(cfg, args.out or f"runs/{config_hash(cfg)}", progress=not args.no_progress)
    title = f"# text students ({cfg.strategy}): {rd.path}" if args.format == "table" else None
    emit(_rows(rd), args.format, title=title)


def _compare(args) -> None:
    from distill.runs import run_compare
    from distill.text_config import TextCompareConfig
    from infra.config import config_hash

    cfg = resolve_config(TextCompareConfig, args, _presets(), {"teacher.corpus": args.corpus} if args.corpus else None)
    if cfg is None:
        return
    rows = run_compare(cfg, args.out or f"runs/compare-{config_hash(cfg)}", progress=not args.no_progress)
    emit(rows, args.format)
