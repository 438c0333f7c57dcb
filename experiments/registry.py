"""The registry of experiment kinds: what the sweep runner, the result store, the demo and the
command line read to learn which config class, which engine function and which presets a kind has.

A kind is ``<family>-<role>`` (the MLP engine's family ``parity`` is spelled without the prefix,
``teacher`` / ``student`` / ``compare``, as sweep files have always named it):

============================  ==========  =======================================================
family                        engine      what it trains
============================  ==========  =======================================================
``parity``                    simulate    2-layer MLPs on (d, k)-sparse or hierarchical parity
``parity-two-stage``          simulate    Algorithm 1 (Appendix B): two-stage MLPs, hinge losses
``pcfg``                      distill     BERT masked LM / GPT next-token Transformers on PCFGs
``parity-transformer``        distill     Transformers on sparse parity as a token sequence
``text``                      distill     BERT masked LM on natural text
============================  ==========  =======================================================

Config classes and engine functions are named by import path and imported on first use, so
reading the registry imports no engine (and no torch). Presets are YAML data files,
``experiments/sweeps/presets/<family>.yaml``: ``{preset name: {section: {field: value}}}``; every
family has ``tiny`` (a run of seconds on one core that still learns) and ``paper``.

A kind's fields are documented where they are defined: :func:`field_docs` gives each field's type,
default, allowed range (recorded from the config's own checks while its defaults are validated) and
its comment (the ``# ...`` lines of the field in the source); :func:`field_defaults` reads names and
defaults from the source alone, without importing the config module (for ``--help``).
"""
from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from infra.config import did_you_mean, value_text
from theory._checks import ParameterError

__all__ = ["Kind", "KINDS", "FAMILIES", "PRESETS_DIR", "get_kind", "kind_names", "family_kinds", "presets",
           "preset_words", "field_docs", "field_defaults"]

PRESETS_DIR = Path(__file__).resolve().parent / "sweeps" / "presets"
ROLES = ("teacher", "student", "compare")


@dataclass(frozen=True)
class Kind:
    """One experiment kind: its config class, its engine's entry point, and how sweeps treat it."""

    name: str  # the sweep file's ``kind`` and the result store's ``kind`` column
    family: str  # the command: ``icurr <family> <role>``
    role: str  # teacher | student | compare
    engine: str  # simulate | distill
    config_path: str  # "module:ClassName" of the frozen config dataclass
    train_path: str  # "module:function": teacher/student (cfg, out, progress=) -> RunDir; compare -> rows
    split_seeds: bool  # sweeps split a point into single-seed runs (MLP) or keep its seeds in one run directory
    options: tuple[tuple[str, str, str], ...] = ()  # extra command-line options: (flag, field, help)
    choice: str = "strategy"  # the student field a compare varies (its config lists the values as <choice>s)

    def config_class(self) -> type:
        return _load(self.config_path)

    def train(self) -> Callable[..., Any]:
        return _load(self.train_path)

    def family_kind(self, role: str) -> "Kind":
        """The kind of the same family in ``role`` (a student's teacher kind, say)."""
        return family_kinds(self.family)[role]

    @property
    def description(self) -> str:
        return _FAMILY_HELP[self.family]


def _load(path: str):
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


_FAMILY_HELP = {
    "parity": "sparse parity with MLPs (Sections 3, App. B-C.1): teacher, student, compare",
    "parity-two-stage": ("Algorithm 1's two-stage training on sparse parity (App. B, Theorem B.1): teacher, "
                         "student (supervision labels | oneshot | progressive), compare"),
    "pcfg": "Transformers on PCFGs (BERT masked LM / GPT next-token; Section 4.1, App. D-E)",
    "parity-transformer": "Transformers on sparse parity (App. C.2): teacher, student, compare",
    "text": "BERT masked LM on natural text (Section 4.2, App. F)",
}
_GRAMMAR = ("a grammar name (NAME.json on $ICURR_GRAMMAR_PATH, then ../shared/data/pcfg, then the package copies), a JSON path, or "
            "random:levels=L,seed=S")
_CORPUS = ("a text file, a directory of text files (recursive; corpus_glob=, documents=file|blank-line), or "
           "python-docs (the Python documentation installed with this interpreter)")


def _family(family: str, engine: str, prefix: str, config_module: str, train_module: str, *,
            split_seeds: bool, options: dict[str, tuple[str, str]] | None = None,
            choice: str = "strategy") -> list[Kind]:
    out = []
    for role in ROLES:
        name = role if family == "parity" else f"{family}-{role}"
        train = {"teacher": "train_teacher", "student": "train_student", "compare": "run_compare"}[role]
        module = train_module or {"teacher": "simulate.teacher", "student": "simulate.student",
                                  "compare": "simulate.compare"}[role]
        opts = ()
        if options and role != "student":
            opts = tuple((flag, field if role == "teacher" else f"teacher.{field}", help_)
                         for flag, (field, help_) in options.items())
        out.append(Kind(name, family, role, engine, f"{config_module}:{prefix}{role.capitalize()}Config",
                        f"{module}:{train}", split_seeds, opts, choice))
    return out


#: Every kind, by name.
KINDS: dict[str, Kind] = {k.name: k for k in [
    *_family("parity", "simulate", "", "simulate.config", "", split_seeds=True),
    *_family("parity-two-stage", "simulate", "ParityTwoStage", "simulate.two_stage_config", "simulate.two_stage_runs",
             split_seeds=False, choice="supervision"),
    *_family("pcfg", "distill", "Pcfg", "distill.config", "distill.runs", split_seeds=False,
             options={"--grammar": ("grammar", _GRAMMAR)}),
    *_family("parity-transformer", "distill", "ParityTransformer", "distill.config", "distill.runs",
             split_seeds=False),
    *_family("text", "distill", "Text", "distill.text_config", "distill.runs", split_seeds=False,
             options={"--corpus": ("corpus", _CORPUS)}),
]}
FAMILIES = tuple(dict.fromkeys(k.family for k in KINDS.values()))


def kind_names() -> tuple[str, ...]:
    return tuple(KINDS)


def get_kind(name: str) -> Kind:
    """The kind called ``name`` (the parity kinds also as ``parity-teacher`` ...); ParameterError with the
    closest kinds otherwise."""
    name = name.removeprefix("parity-") if name.removeprefix("parity-") in ROLES else name
    if name not in KINDS:
        raise ParameterError(f"kind must be one of {', '.join(KINDS)}, got {name!r}"
                             f"{did_you_mean(name, KINDS, ()).partition('; known keys')[0]}")
    return KINDS[name]


def family_kinds(family: str) -> dict[str, Kind]:
    """``{role: kind}`` of one family."""
    return {k.role: k for k in KINDS.values() if k.family == family}


@lru_cache(maxsize=None)
def presets(family: str) -> dict[str, dict[str, dict[str, Any]]]:
    """The named presets of ``family`` from its YAML file (empty when it has none)."""
    from infra.yamlfile import load_yaml

    path = PRESETS_DIR / f"{family}.yaml"
    if not path.is_file():
        return {}
    data = load_yaml(path.read_text(), f"preset file {path}") or {}
    for name, sections in data.items():
        if not isinstance(sections, dict) or set(sections) - {"teacher", "student"}:
            raise ParameterError(f"preset {name!r} of {path} must map sections teacher / student to fields")
    return data


def preset_words(kind: Kind, name: str) -> dict[str, str]:
    """The ``key=value`` overrides (as text) of preset ``name`` for ``kind``: its own section for a
    teacher or student, ``teacher.FIELD`` / ``student.FIELD`` for a compare."""
    table = presets(kind.family)
    if name not in table:
        raise ParameterError(f"preset must be one of {', '.join(table) or '(none)'} for {kind.name}, got {name!r}")
    sections = table[name]
    if kind.role == "compare":
        return {f"{sec}.{k}": value_text(f"{sec}.{k}", v) for sec, kv in sections.items() for k, v in kv.items()}
    return {k: value_text(k, v) for k, v in (sections.get(kind.role) or {}).items()}


# ---------------------------------------------------------------- the fields of a kind, documented

def _segment(lines, line: int, end: int, col: int, end_col: int) -> str:
    """The source text from (line, col) to (end, end_col), 1-based lines and UTF-8 byte columns (as
    :mod:`ast` and ``co_positions`` give them), its lines joined by spaces."""
    parts = [lines[i - 1].encode() for i in range(line, end + 1)]
    parts[-1] = parts[-1][:end_col]
    parts[0] = parts[0][col:]
    return " ".join(x.decode().strip() for x in parts)


@lru_cache(maxsize=None)
def _source_fields(module: str, cls_name: str, comments: bool = True):
    """``(class docstring, [(field, default source text, comment)])`` of the config class ``cls_name`` in
    ``module``, read from its source file without importing it. The comment (``comments``) is the
    full-line ``#`` comments just above the field and the ``#`` comment on its own lines."""
    import ast
    import io
    import tokenize
    from importlib.util import find_spec

    loaded = sys.modules.get(module)
    path = getattr(loaded, "__file__", None) or find_spec(module).origin
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    lines = text.splitlines()
    node = next(n for n in ast.parse(text).body if isinstance(n, ast.ClassDef) and n.name == cls_name)
    found: dict[int, str] = {}
    if comments:  # tokenize only the class: the whole file would take a tenth of a second
        body = "\n".join(lines[node.lineno - 1:node.end_lineno]) + "\n"
        for tok in tokenize.generate_tokens(io.StringIO(body).readline):
            if tok.type == tokenize.COMMENT:
                found[tok.start[0] + node.lineno - 1] = tok.string.lstrip("#").strip()
    out = []
    for stmt in node.body:
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
            continue
        above, line = [], stmt.lineno - 1
        while line >= 1 and lines[line - 1].strip().startswith("#"):
            above.insert(0, found.get(line, ""))
            line -= 1
        own = [found[i] for i in range(stmt.lineno, stmt.end_lineno + 1) if i in found]
        v = stmt.value
        default = "" if v is None else _segment(lines, v.lineno, v.end_lineno, v.col_offset, v.end_col_offset)
        out.append((stmt.target.id, default, "; ".join(c for c in (" ".join(above), " ".join(own)) if c)))
    return ast.get_docstring(node) or "", out


def field_defaults(kind: Kind) -> list[tuple[str, str]]:
    """``(field, default)`` of ``kind``'s config class, read from the source file without importing it
    (cheap enough for ``--help``): the default as ``key=value`` text when the source writes a literal
    (``24``, ``"first"``, ``(0, 1)``), else ``""`` (a name such as ``STRATEGIES``, a compare's sections)."""
    import ast

    module, _, cls_name = kind.config_path.partition(":")
    out = []
    for name, default, _ in _source_fields(module, cls_name, comments=False)[1]:
        try:
            value = ast.literal_eval(default)
            text = f"[{value_text(name, value)}]" if isinstance(value, tuple) else value_text(name, value)
        except (ValueError, SyntaxError, ParameterError):
            text = ""
        out.append((name, '""' if text == "" and default in ('""', "''") else text))
    return out


def _type_text(tp) -> str:
    import types
    import typing

    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        return " | ".join(map(str, args))
    if origin in (typing.Union, types.UnionType):
        inner = [_type_text(a) for a in args if a is not type(None)]
        return " | ".join(inner) + (" | none" if type(None) in args else "")
    if origin is tuple:
        return f"list of {_type_text(args[0]) if args else 'str'}"
    return getattr(tp, "__name__", str(tp))


def _bound_text(node, value) -> str:
    """One bound of a check as its source says it (a field: its name), else its value."""
    import ast

    if value is None:
        return ""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ("cfg", "self"):
        return node.attr
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1 << 20:
        power = f"2^{value.bit_length() - 1}" if value & (value - 1) == 0 else str(value)
        return "2^53-1" if value == 2**53 - 1 else power
    return f"{value:g}" if isinstance(value, float) else str(value)


def _check_call(frame) -> dict | None:
    """The check called in ``frame`` (check_int / check_real / check_choice of :mod:`theory._checks`) as
    ``{name, range}``: its bounds read from the caller's source where they name fields."""
    import ast
    import linecache

    args = frame.f_locals
    caller = frame.f_back
    nodes = {}
    try:
        line, end, col, end_col = list(caller.f_code.co_positions())[caller.f_lasti // 2]
        lines = linecache.getlines(caller.f_code.co_filename)
        call = ast.parse(_segment(lines, line, end, col, end_col), mode="eval").body
        nodes = dict(zip(("name", "value", "lo", "hi"), call.args)) | {k.arg: k.value for k in call.keywords}
    except (TypeError, ValueError, SyntaxError, IndexError, AttributeError):
        pass
    if "choices" in args:
        return {"name": args["name"], "range": "one of " + ", ".join(map(str, args["choices"]))}
    lo, hi = _bound_text(nodes.get("lo"), args.get("lo")), _bound_text(nodes.get("hi"), args.get("hi"))
    lo_open, hi_open = args.get("lo_open", False), args.get("hi_open", False)
    if lo and hi:
        text = f"{'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    elif lo:
        text = f"{'>' if lo_open else '>='} {lo}"
    elif hi:
        text = f"{'<' if hi_open else '<='} {hi}"
    else:
        text = "finite" if "lo_open" in args else "any integer"
    return {"name": args["name"], "range": text}


def _recorded_ranges(cls) -> dict[str, dict[str, list[str]]]:
    """``{config class name: {field: [range text, ...]}}``: the checks of ``theory._checks`` that run
    while ``cls()`` (its defaults) is validated, each by the config whose ``__post_init__`` ran it."""
    from theory import _checks

    codes = {f.__code__ for f in (_checks.check_int, _checks.check_real, _checks.check_choice)}
    found: dict[str, dict[str, list[str]]] = {}

    def profile(frame, event, arg):
        if event != "call" or frame.f_code not in codes:
            return
        owner = frame.f_back
        while owner is not None and not (owner.f_code.co_name == "__post_init__" and "self" in owner.f_locals):
            owner = owner.f_back
        rec = _check_call(frame)
        if owner is not None and rec is not None:
            ranges = found.setdefault(type(owner.f_locals["self"]).__name__, {}).setdefault(rec["name"], [])
            if rec["range"] not in ranges:
                ranges.append(rec["range"])

    if sys.getprofile() is not None:  # a profiler runs (cProfile's cannot be restored): no ranges
        return found
    sys.setprofile(profile)
    try:
        cls()
    finally:
        sys.setprofile(None)
    return found


def _fallback_comments(kind: Kind) -> dict[str, str]:
    """Comments of the same fields in the family's other configs (a student's ``lr`` says what the
    teacher's says), teacher first."""
    out: dict[str, str] = {}
    for role in ("teacher", "student"):
        module, _, cls_name = family_kinds(kind.family)[role].config_path.partition(":")
        for name, _, comment in _source_fields(module, cls_name)[1]:
            if comment and name not in out:
                out[name] = f"{comment} (as the {role}'s)" if role != kind.role else comment
    return out


def field_docs(kind: Kind) -> tuple[str, list[dict]]:
    """``(the config's docstring, rows)``: one row per field of ``kind``'s config (a compare's sections
    as ``teacher.FIELD`` / ``student.FIELD``) with ``field``, ``type``, ``default`` (as a ``key=value``
    text), ``range`` (the checks its validation runs at the defaults; ``-`` when none runs there, e.g.
    an optional field at None) and ``help`` (its source comment; the teacher's or student's for a field
    without one)."""
    import dataclasses
    import typing

    cls = kind.config_class()
    ranges = _recorded_ranges(cls)
    rows = []

    def add(c, prefix: str, role_kind: Kind) -> None:
        hints = typing.get_type_hints(c)
        own = {n: com for n, _, com in _source_fields(c.__module__, c.__name__)[1]}
        fallback = _fallback_comments(role_kind)
        instance = c() if not prefix else getattr(cls(), prefix.rstrip("."))
        for f in dataclasses.fields(c):
            value = getattr(instance, f.name)
            if dataclasses.is_dataclass(value):
                add(type(value), f"{f.name}.", kind.family_kind(f.name))
                continue
            rng = ranges.get(c.__name__, {}).get(f.name, []) + ranges.get(cls.__name__, {}).get(prefix + f.name, [])
            listed = isinstance(value, tuple)
            rng = [r for r in rng if r != f"one of {', '.join(map(str, typing.get_args(hints[f.name])))}"]
            rows.append({"field": prefix + f.name, "type": _type_text(hints[f.name]),
                         "default": f"[{value_text(f.name, value)}]" if listed else '""' if value == "" else
                         value_text(f.name, value),
                         "range": ("each " if listed and rng else "") + ("; ".join(dict.fromkeys(rng)) or "-"),
                         "help": own.get(f.name) or fallback.get(f.name, "")})

    add(cls, "", kind)
    return _source_fields(cls.__module__, cls.__name__)[0], rows
