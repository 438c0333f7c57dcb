"""icurr: exact theory and simulations of progressive distillation's implicit curriculum.

One command, one subcommand per job; each subcommand calls library functions.

Bad arguments end with one line ``icurr: error: ...`` naming the parameter and its allowed range,
exit code 2, before any work starts.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from theory._checks import ParameterError

from . import __version__

#: Modules that add subcommands; each defines ``register(subparsers)``. Heavy imports (torch)
#: happen inside the handlers, so ``icurr theory`` never imports torch.
COMMAND_MODULES = ("icurr.commands.theory", "icurr.commands.experiment", "icurr.commands.sweep", "icurr.commands.report",
                   "icurr.commands.demo")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, no usage dump
        sys.stderr.write(f"icurr: error: {message} (see '{self.prog} --help')\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="icurr", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"icurr {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # KEY=VALUE words may follow options (``--out DIR width=10``): argparse leaves them over
    if extra and hasattr(args, "overrides") and all("=" in w and not w.startswith("-") for w in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    try:
        args.handler(args)
    except ParameterError as err:
        sys.stderr.write(f"icurr: error: {err}\n")
        sys.exit(2)
    return 0
