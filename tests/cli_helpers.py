"""Run the ``icurr`` command line in-process, as a subprocess would see it: exit code, stdout, stderr.

Argument-error tests use this (no interpreter start-up per case); tests of what only a fresh process
shows (the import set, the ``python -m icurr`` entry point) keep a subprocess.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str


def run_icurr(*args: str) -> Completed:
    """``icurr ARGS`` in this process; ``SystemExit`` codes become the return code."""
    from icurr.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in args]) or 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return Completed(code, out.getvalue(), err.getvalue())
