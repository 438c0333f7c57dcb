"""Which run directories a claim touches: the check behind :attr:`.ledger.Claim.run_dirs`.

``icurr verify --jobs N`` runs the claims that share a directory below ``OUT/runs`` in one worker and the
others side by side, so a claim that reads or trains in a directory it does not declare could race another
worker for one run. :func:`watch` records, through a Python audit hook (:func:`sys.addaudithook`, PEP 578),
every file opened, directory listed, made, renamed or removed below ``OUT/runs`` while a claim runs, and
:func:`undeclared` names the top-level directories among them that the claim does not declare. The events
are those of Python's own file calls (``open``, ``os.mkdir``, ``os.listdir``, ``os.scandir``, ``os.rename``,
``os.replace``, ``os.remove``, ``shutil.rmtree``, ...). Every reuse of a finished run reads its JSON files
through them, and every run directory is made through them, so a claim that reaches another
directory is seen even where its tensors are read by native code (safetensors, pyarrow).

The hook is installed once per process (audit hooks cannot be removed) and does nothing outside
:func:`watch`. Its cost is one Python call per audited event.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

__all__ = ["watch", "undeclared"]

#: Audit events that name a path in their first (or first two) arguments.
_EVENTS = frozenset({"open", "os.mkdir", "os.listdir", "os.scandir", "os.rename", "os.replace", "os.remove",
                     "os.rmdir", "os.link", "os.symlink", "os.truncate", "os.chmod", "os.utime", "shutil.rmtree",
                     "shutil.copyfile", "shutil.copymode", "shutil.copystat", "shutil.move", "glob.glob"})
_state: list | None = None  # [roots (tuple of str ending in os.sep), touched names (set)] while watching
_installed = False


def _hook(event: str, args) -> None:
    state = _state
    if state is None or event not in _EVENTS:
        return
    roots, touched = state
    for a in args[:2]:
        if isinstance(a, bytes):
            a = os.fsdecode(a)
        elif isinstance(a, os.PathLike):
            a = os.fspath(a)
        if not isinstance(a, str):
            continue
        path = os.path.abspath(a) + os.sep
        for root in roots:
            if path.startswith(root):
                name = path[len(root):].split(os.sep, 1)[0]
                if name:
                    touched.add(name)


@contextmanager
def watch(runs):
    """Within the block, the set it yields collects the top-level names below directory ``runs`` (taken as
    given and with its symbolic links resolved) that file calls of this process reach."""
    global _state, _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True
    roots = tuple(dict.fromkeys(os.path.join(p, "") for p in (os.path.abspath(runs), str(Path(runs).resolve()))))
    touched: set[str] = set()
    outer, _state = _state, [roots, touched]
    try:
        yield touched
    finally:
        _state = outer


def undeclared(touched, declared) -> list[str]:
    """The names of ``touched`` outside ``declared``, sorted."""
    return sorted(set(touched) - set(declared))
