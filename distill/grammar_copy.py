"""The copy of a PCFG teacher's grammar in its run directory (``grammar.json``): written when the teacher
starts, read by its students, probes and reports instead of resolving the grammar's name again (which
could find another file from another working directory), and checked against the hash the teacher
recorded."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from theory._checks import ParameterError

from .grammar import Grammar, read_grammar_file

__all__ = ["GRAMMAR_COPY", "grammar_sha256", "write_grammar_copy", "read_grammar_copy"]

GRAMMAR_COPY = "grammar.json"


def grammar_sha256(grammar: Grammar) -> str:
    """SHA-256 of the grammar's canonical JSON (name, start, terminals and rules of :meth:`Grammar.to_dict`,
    sorted keys, no spaces; ``source`` and ``note`` left out, as :class:`Grammar` equality leaves them):
    equal for equal grammars, whatever file they were loaded from."""
    data = {k: v for k, v in grammar.to_dict().items() if k not in ("source", "note")}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def write_grammar_copy(grammar: Grammar, run_dir) -> Path:
    """Write ``run_dir/grammar.json``: the validated grammar (:meth:`Grammar.to_dict`, so a path that
    :func:`load_grammar` reads) with its :func:`grammar_sha256` under ``"sha256"``; atomic."""
    from infra.rundir import atomic_write_text

    path = Path(run_dir) / GRAMMAR_COPY
    data = {**grammar.to_dict(), "sha256": grammar_sha256(grammar)}
    atomic_write_text(path, json.dumps(data, sort_keys=True) + "\n")
    return path


def read_grammar_copy(run_dir, expect: str | None = None, *, who: str = "teacher") -> Grammar:
    """The grammar stored in ``run_dir/grammar.json`` by :func:`write_grammar_copy`, checked: it must exist,
    parse, validate, and hash to the ``"sha256"`` recorded in it and to ``expect`` (the hash the teacher's
    summary recorded) when given. One-line ``ParameterError`` otherwise; nothing is written."""
    path = Path(run_dir) / GRAMMAR_COPY
    if not path.is_file():
        raise ParameterError(f"{who} {str(run_dir)!r} holds no {GRAMMAR_COPY} (the grammar it trained on; teachers "
                             f"write it when they start): train that teacher again")
    grammar = read_grammar_file(path)
    try:
        recorded = json.loads(path.read_text(encoding="utf-8")).get("sha256")
    except (ValueError, AttributeError, RecursionError):
        recorded = None
    got = grammar_sha256(grammar)
    for what, want in (("recorded in it", recorded), ("recorded in the teacher's summary.json", expect)):
        if (want is not None or what == "recorded in it") and want != got:
            raise ParameterError(f"{who} {str(run_dir)!r}: {GRAMMAR_COPY} hashes to {got[:12]}, not to the "
                                 f"{str(want)[:12]} {what} (the file was changed?): train that teacher again")
    return grammar
