"""icurr: exact theory and simulations of progressive distillation's implicit curriculum.

One command, one subcommand per job; each subcommand calls library functions.

Bad input ends with one line ``icurr: error: ...`` naming the parameter (or the file) and its allowed
range, exit code 2, before any work starts and before any file is written: bad arguments, configs that
cannot fit the machine's memory, output paths that cannot be written (``--out`` an existing file, under
a file, or in a read-only directory), unreadable stored files (a teacher's truncated ``config.json``, a
corrupt checkpoint, a grammar or corpus that is not what it must be). The error classes turned into
that line: ``ParameterError`` (and its subclasses), ``infra.checkpoints.CheckpointError`` (and its
subclasses, ``NoCheckpointsError`` included), ``json.JSONDecodeError`` and ``OSError`` (a full disk
during a run, a permission refused). Any other exception is a bug and keeps its traceback.
``--debug`` (or ``ICURR_DEBUG=1``) prints the traceback behind the one-line error too.
Warnings about inputs (``infra.config.IcurrWarning``: runs a report skipped, a grammar name that now
resolves to another grammar than a teacher's stored copy) are one line ``icurr: warning: ...``.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
import traceback
import warnings
from pathlib import Path

from infra.config import IcurrWarning
from theory._checks import ParameterError

from . import __version__

#: Modules that add subcommands; each defines ``register(subparsers)``. Heavy imports (torch)
#: happen inside the handlers, so ``icurr theory`` never imports torch.
COMMAND_MODULES = ("icurr.commands.theory", "icurr.commands.experiment", "icurr.commands.sweep", "icurr.commands.report",
                   "icurr.commands.demo", "icurr.commands.scaling", "icurr.commands.verify", "icurr.commands.config")
#: Argument destinations that name output directories / output files, with their flags.
OUTPUT_DIRS = {"out": "--out", "report_out": "--report-out"}
OUTPUT_FILES = {"csv": "--csv", "parquet": "--parquet"}


class _Parser(argparse.ArgumentParser):
    #: A function giving text appended to the epilog when the help is shown (so that what it reads,
    #: e.g. a kind's field list, costs nothing when the help is not asked for).
    help_extra = None

    def error(self, message):  # one line, exit 2, no usage dump
        sys.stderr.write(f"icurr: error: {message} (see '{self.prog} --help')\n")
        sys.exit(2)

    def format_help(self):
        if self.help_extra is not None:
            self.epilog, self.help_extra = f"{self.epilog or ''} {self.help_extra()}".strip(), None
        return super().format_help()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="icurr", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"icurr {__version__}")
    parser.add_argument("--debug", action="store_true",
                        help="print the traceback behind a one-line error (also: ICURR_DEBUG=1)")
    parser.add_argument("--log", metavar="SINKS", default=None,
                        help="also send every metrics row to tensorboard, wandb and/or mlflow (a comma list; sets "
                             "ICURR_LOG; ICURR_LOG_DIR picks the folder; pip install -e '.[tensorboard]'). Not part "
                             "of any config: results and hashes are the same with and without it")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def input_error(err: BaseException) -> bool:
    """Whether ``err`` is bad input (a one-line error, exit 2) rather than a bug (a traceback)."""
    if isinstance(err, (ParameterError, json.JSONDecodeError, OSError)):
        return True
    checkpoints = sys.modules.get("infra.checkpoints")  # loaded whenever one of its errors was raised
    return checkpoints is not None and isinstance(err, checkpoints.CheckpointError)


def error_line(err: BaseException) -> str:
    """The one line that says what went wrong (the first line of the message; an ``OSError`` with its file)."""
    if isinstance(err, OSError) and not isinstance(err, ParameterError) and err.strerror:
        where = "" if err.filename is None else f": {str(err.filename)!r}"
        where += "" if err.filename2 is None else f" -> {str(err.filename2)!r}"
        return f"{err.strerror}{where}"
    if isinstance(err, json.JSONDecodeError):
        return f"invalid JSON ({err.msg} at line {err.lineno} column {err.colno})"
    text = str(err).strip()
    return " ".join(text.splitlines()[0].split()) if text else type(err).__name__


def _writable_dir(path: Path) -> bool:
    if not os.access(path, os.W_OK | os.X_OK):
        return False
    try:
        return not os.statvfs(path).f_flag & os.ST_RDONLY
    except (AttributeError, OSError):  # pragma: no cover (non-POSIX)
        return True


def check_output_path(flag: str, value, *, directory: bool) -> None:
    """ParameterError, before any work, when the output ``value`` of ``flag`` cannot be written: an
    existing file where a directory goes (or a directory where a file goes), a path under a file, or
    a directory (the path itself when it exists, else its nearest existing parent) that is not writable."""
    path = Path(value)
    if path.exists():
        if directory and not path.is_dir():
            raise ParameterError(f"{flag} {value!r} is an existing file, not a directory")
        if not directory and path.is_dir():
            raise ParameterError(f"{flag} {value!r} is an existing directory, not a file")
        target = path if directory else path.parent
    else:
        target = path.parent
        while not target.exists() and target != target.parent:
            target = target.parent
        if not target.is_dir():
            raise ParameterError(f"{flag} {value!r} lies under {str(target)!r}, which is a file")
    if not _writable_dir(target):
        raise ParameterError(f"{flag} {value!r} cannot be written: {str(target)!r} is not a writable directory")


def _check_outputs(args) -> None:
    for dests, directory in ((OUTPUT_DIRS, True), (OUTPUT_FILES, False)):
        for dest, flag in dests.items():
            value = getattr(args, dest, None)
            if isinstance(value, (str, os.PathLike)) and str(value):
                check_output_path(flag, value, directory=directory)


def _one_line_warnings():
    """A ``warnings.showwarning`` that prints :class:`IcurrWarning`s as one line each (repeats once)."""
    shown, original = set(), warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if not issubclass(category, IcurrWarning):
            return original(message, category, filename, lineno, file, line)
        text = " ".join(str(message).split())
        if text not in shown:
            shown.add(text)
            sys.stderr.write(f"icurr: warning: {text}\n")

    return show


#: A negative real as an option's value: ``-1/2``, ``-0.5``, ``-1e-3`` (argparse takes ``-1/2`` for an option).
_NEGATIVE_VALUE = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?(/\d+)?$")


def _join_negative_values(argv: list[str]) -> list[str]:
    """``--opt -1/2`` as ``--opt=-1/2`` for every long option followed by a negative real, so that
    ``icurr theory fourier --bias -1/2`` means what ``--bias=-1/2`` means."""
    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        if a.startswith("--") and "=" not in a and i + 1 < len(argv) and _NEGATIVE_VALUE.match(argv[i + 1]):
            out.append(f"{a}={argv[i + 1]}")
            i += 2
        else:
            out.append(a)
            i += 1
    return out


def main(argv=None) -> int:
    parser = build_parser()
    argv = _join_negative_values(list(sys.argv[1:] if argv is None else argv))
    args, extra = parser.parse_known_args(argv)
    # KEY=VALUE words may follow options (``--out DIR width=10``): argparse leaves them over
    if extra and hasattr(args, "overrides") and all("=" in w and not w.startswith("-") for w in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    debug = args.debug or os.environ.get("ICURR_DEBUG", "").strip() not in ("", "0")
    with warnings.catch_warnings():
        warnings.simplefilter("always", IcurrWarning)
        warnings.showwarning = _one_line_warnings()
        try:
            if args.log is not None:  # checked (names, packages) before any work
                from infra.sinks import requested_sinks

                try:
                    requested_sinks({"ICURR_LOG": args.log})
                except ParameterError as exc:
                    raise ParameterError(str(exc).replace("ICURR_LOG", "--log", 1)) from None
                os.environ["ICURR_LOG"] = args.log
            _check_outputs(args)
            args.handler(args)
        except Exception as err:  # noqa: BLE001 (only input errors become one line; the rest re-raises)
            if not input_error(err):
                raise
            if debug:
                traceback.print_exc()
            sys.stderr.write(f"icurr: error: {error_line(err)}\n")
            sys.exit(2)
    return 0
