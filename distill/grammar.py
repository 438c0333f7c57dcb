"""Layered probabilistic context-free grammars (PCFGs), their vocabulary, and loading.

A PCFG G = (N, v, R, P) (Appendix D.1 of the paper) is stored as JSON (see
``shared/data/pcfg/cfg3b.json``): ``rules[NT] = [[rhs symbols..., prob], ...]``. File convention:
a symbol listed in ``terminals`` whose only rule is the unit rule ``X -> X`` (probability 1) is a
*pre-terminal* emitting the terminal ``X``; ordinary pre-terminals ``A -> a`` (terminals on the
right-hand side) are accepted too. Inside a rule of NT ``A`` a symbol ``s`` denotes the terminal
``s`` iff ``s`` is a terminal and (``s`` has no rules or ``s == A``); otherwise it is the NT ``s``.

All grammars used here are *layered* (Definition 4.3 and Section 4.1: "all leaves in the same tree
have the same distance to the root"): the level of an NT is its distance from the root, every NT
has exactly one level, rules of an NT at level l < D-1 rewrite into NTs of level l+1 and the NTs
of the last level D-1 (the pre-terminals) rewrite into terminals only. ``depth`` = D.
"""
from __future__ import annotations

import itertools
import json
import os
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np

from theory._checks import ParameterError, check_int, check_real

__all__ = ["Grammar", "Vocab", "load_grammar", "read_grammar_file", "random_grammar", "grammar_search_path",
           "available_grammars"]

PROB_TOL = 1e-9
Rule = tuple[tuple[str, ...], float]


@dataclass(frozen=True)
class Vocab:
    """Token ids: terminals 0..n-1 in the grammar's order, then ``[mask]``, ``[pad]``, ``[bos]``.

    Model outputs range over the n terminals only (ids < ``n_terminals``).
    """

    terminals: tuple[str, ...]

    @property
    def n_terminals(self) -> int:
        return len(self.terminals)

    @property
    def mask_id(self) -> int:
        return len(self.terminals)

    @property
    def pad_id(self) -> int:
        return len(self.terminals) + 1

    @property
    def bos_id(self) -> int:
        return len(self.terminals) + 2

    @property
    def size(self) -> int:
        return len(self.terminals) + 3

    @property
    def symbols(self) -> tuple[str, ...]:
        """Name of every id: the terminals, then ``[mask]``, ``[pad]``, ``[bos]``."""
        return self.terminals + ("[mask]", "[pad]", "[bos]")

    def encode(self, symbols: Sequence[str]) -> list[int]:
        """Map terminal (or special) names to ids; an unknown name raises ParameterError."""
        index = {s: i for i, s in enumerate(self.symbols)}
        out = []
        for s in symbols:
            if s not in index:
                raise ParameterError(f"symbol must be one of {', '.join(self.symbols)}; got {s!r}")
            out.append(index[s])
        return out

    def decode(self, ids: Sequence[int]) -> list[str]:
        """Map ids in [0, size) to names."""
        return [self.symbols[check_int("token id", int(i), 0, self.size - 1)] for i in ids]


@dataclass(frozen=True)
class Grammar:
    """A validated layered PCFG. Construct with ``Grammar(name, start, terminals, rules)`` or
    :meth:`from_dict`; every derived field is computed (and every check run) at construction.

    ``rules[NT]`` is a tuple of ``(rhs, prob)`` with ``rhs`` a tuple of symbol names.
    Derived: ``nonterminals`` (ordered by level, then by position in ``rules``), ``levels``
    (``levels[0] == (start,)``; ``levels[l]`` = NTs at distance l from the root, Definition 4.3),
    ``level_of``, ``depth`` (number of NT levels, D), ``span_min``/``span_max`` (NT -> fewest/most
    terminals it derives, exact), ``min_length``/``max_length`` (of a sentence) and ``vocab``.
    """

    name: str
    start: str
    terminals: tuple[str, ...]
    rules: Mapping[str, tuple[Rule, ...]] = field(hash=False)
    source: str | None = field(default=None, compare=False)
    note: str | None = field(default=None, compare=False)
    nonterminals: tuple[str, ...] = field(init=False, compare=False)
    levels: tuple[tuple[str, ...], ...] = field(init=False, compare=False)
    level_of: Mapping[str, int] = field(init=False, compare=False, hash=False, repr=False)
    depth: int = field(init=False, compare=False)
    span_min: Mapping[str, int] = field(init=False, compare=False, hash=False, repr=False)
    span_max: Mapping[str, int] = field(init=False, compare=False, hash=False, repr=False)
    min_length: int = field(init=False, compare=False)
    max_length: int = field(init=False, compare=False)
    vocab: Vocab = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        terminals, rules = _normalize(self.name, self.start, self.terminals, self.rules)
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        set_("terminals", terminals)
        set_("rules", MappingProxyType(rules))
        _check_defined(self.start, terminals, rules)
        levels = _check_structure(self.name, self.start, terminals, rules)
        level_of = {nt: l for l, names in enumerate(levels) for nt in names}
        lo, hi = _span_bounds(levels, rules)
        set_("levels", levels)
        set_("nonterminals", tuple(nt for names in levels for nt in names))
        set_("level_of", MappingProxyType(level_of))
        set_("depth", len(levels))
        set_("span_min", MappingProxyType(lo))
        set_("span_max", MappingProxyType(hi))
        set_("min_length", lo[self.start])
        set_("max_length", hi[self.start])
        set_("vocab", Vocab(terminals))

    def level_span(self, level: int) -> tuple[int, int]:
        """(fewest, most) terminals spanned by any NT of ``level``."""
        names = self.levels[check_int("level", level, 0, self.depth - 1)]
        return min(self.span_min[a] for a in names), max(self.span_max[a] for a in names)

    @classmethod
    def from_dict(cls, d: Mapping) -> Grammar:
        """Parse the JSON layout ``{name, start, terminals, rules: {NT: [[rhs..., prob], ...]}}``."""
        if not isinstance(d, Mapping):
            raise ParameterError(f"grammar must be a JSON object, got {type(d).__name__}")
        for key in ("name", "start", "terminals", "rules"):
            if key not in d:
                raise ParameterError(f"grammar is missing the key {key!r}")
        if not isinstance(d["rules"], Mapping):
            raise ParameterError("grammar 'rules' must map each non-terminal to a list of rules")
        if not isinstance(d["terminals"], (list, tuple)):
            raise ParameterError(f"grammar 'terminals' must be a list of strings, got {type(d['terminals']).__name__} "
                                 f"{_short(d['terminals'])}")
        rules = {}
        for nt, lst in d["rules"].items():
            if not isinstance(lst, Sequence) or isinstance(lst, str):
                raise ParameterError(f"rules of non-terminal {_short(nt)} must be a list, got {_short(lst)}")
            parsed = []
            for r in lst:
                if not isinstance(r, Sequence) or isinstance(r, str) or len(r) < 1:
                    raise ParameterError(f"a rule of non-terminal {_short(nt)} must be [rhs..., prob], got {_short(r)}")
                parsed.append((tuple(r[:-1]), r[-1]))
            rules[nt] = tuple(parsed)
        return cls(name=d["name"], start=d["start"], terminals=tuple(d["terminals"]), rules=rules,
                   source=d.get("source"), note=d.get("note"))

    def to_dict(self) -> dict:
        """Inverse of :meth:`from_dict` (JSON-serializable)."""
        d = {"name": self.name, "start": self.start, "terminals": list(self.terminals),
             "rules": {nt: [[*rhs, p] for rhs, p in rs] for nt, rs in self.rules.items()}}
        for key in ("source", "note"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        return d


# ----------------------------------------------------------------------------- validation

def _normalize(name, start, terminals, rules) -> tuple[tuple[str, ...], dict[str, tuple[Rule, ...]]]:
    """Types, probabilities in (0, 1] summing to 1 per NT, non-empty rhs, terminal unit rules."""
    if not isinstance(name, str) or not isinstance(start, str):
        raise ParameterError(f"grammar name and start must be strings, got {_short(name)}, {_short(start)}")
    terminals = tuple(terminals)
    if not terminals or not all(isinstance(t, str) for t in terminals) or len(set(terminals)) != len(terminals):
        raise ParameterError(f"terminals must be a non-empty list of distinct strings, got {_short(list(terminals))}")
    out: dict[str, tuple[Rule, ...]] = {}
    for nt, rs in rules.items():
        if not isinstance(nt, str) or not rs:
            raise ParameterError(f"non-terminal {_short(nt)} must be a string with at least one rule")
        norm = []
        for rhs, p in rs:
            rhs = tuple(rhs)
            if not rhs:
                raise ParameterError(f"non-terminal {nt!r} has a rule with an empty right-hand side")
            if not all(isinstance(s, str) for s in rhs):
                raise ParameterError(f"a rule of non-terminal {nt!r}: symbols must be strings, got {_short(list(rhs))}")
            p = float(check_real(f"probability of rule {nt} -> {' '.join(rhs)}", p, 0.0, 1.0, lo_open=True))
            norm.append((rhs, p))
        total = sum(p for _, p in norm)
        if abs(total - 1.0) > PROB_TOL:
            raise ParameterError(f"probabilities of the rules of non-terminal {nt!r} must sum to 1 "
                                 f"(tolerance {PROB_TOL:g}), got {total!r}")
        if nt in terminals and (len(norm) != 1 or norm[0][0] != (nt,)):
            raise ParameterError(f"terminal {nt!r} has rules: a terminal may only have the unit rule "
                                 f"{nt} -> {nt} (probability 1) that makes it a pre-terminal")
        out[nt] = tuple(norm)
    return terminals, out


def _is_terminal(sym: str, owner: str, terminals, rules) -> bool:
    """Symbol ``sym`` in a rule of ``owner`` is a terminal (see module docstring)."""
    return sym in terminals and (sym not in rules or sym == owner)


def _check_defined(start, terminals, rules) -> None:
    if start not in rules:
        raise ParameterError(f"start symbol {start!r} is not defined (it has no rules)")
    for nt, rs in rules.items():
        for rhs, _ in rs:
            for s in rhs:
                if s not in rules and s not in terminals:
                    raise ParameterError(f"symbol {s!r} in a rule of non-terminal {nt!r} is undefined "
                                         "(neither a non-terminal nor a terminal)")


def _children(nt, rules, terminals) -> list[str]:
    return [s for rhs, _ in rules[nt] for s in rhs if not _is_terminal(s, nt, terminals, rules)]


def _check_structure(name, start, terminals, rules) -> tuple[tuple[str, ...], ...]:
    """Reachability, termination, then layering; returns the levels (Definition 4.3)."""
    seen, stack = {start}, [start]
    while stack:
        for c in _children(stack.pop(), rules, terminals):
            if c not in seen:
                seen.add(c)
                stack.append(c)
    for nt in rules:
        if nt not in seen:
            raise ParameterError(f"non-terminal {nt!r} is unreachable from the start symbol {start!r}")
    done: set[str] = set()
    changed = True
    while changed:
        changed = False
        for nt, rs in rules.items():
            if nt not in done and any(all(_is_terminal(s, nt, terminals, rules) or s in done for s in rhs)
                                      for rhs, _ in rs):
                done.add(nt)
                changed = True
    for nt in rules:
        if nt not in done:
            raise ParameterError(f"non-terminal {nt!r} is non-terminating (derives no terminal string)")
    level_of = {start: 0}
    frontier = [start]
    while frontier:
        nxt = []
        for nt in frontier:
            for c in _children(nt, rules, terminals):
                if c in level_of and level_of[c] != level_of[nt] + 1:
                    raise ParameterError(f"grammar {name!r} is not layered: non-terminal {c!r} appears at "
                                         f"levels {level_of[c]} and {level_of[nt] + 1}")
                if c not in level_of:
                    level_of[c] = level_of[nt] + 1
                    nxt.append(c)
        frontier = nxt
    depth = max(level_of.values()) + 1
    for nt, rs in rules.items():
        for rhs, _ in rs:
            kinds = {_is_terminal(s, nt, terminals, rules) for s in rhs}
            if len(kinds) == 2 or (True in kinds) != (level_of[nt] == depth - 1):
                raise ParameterError(
                    f"grammar {name!r} is not layered: non-terminal {nt!r} at level {level_of[nt]} has the "
                    f"rule {nt} -> {' '.join(rhs)}, but only the last level {depth - 1} may emit terminals "
                    "(all leaves must be at the same depth)")
    order = {nt: i for i, nt in enumerate(rules)}
    by_level = [sorted((nt for nt in rules if level_of[nt] == l), key=order.__getitem__) for l in range(depth)]
    return tuple(tuple(names) for names in by_level)


def _span_bounds(levels, rules) -> tuple[dict[str, int], dict[str, int]]:
    """Exact fewest/most terminals derived by each NT, bottom-up over the levels."""
    lo: dict[str, int] = {}
    hi: dict[str, int] = {}
    last = len(levels) - 1
    for l in range(last, -1, -1):
        for nt in levels[l]:
            sizes = [(len(rhs), len(rhs)) if l == last else
                     (sum(lo[s] for s in rhs), sum(hi[s] for s in rhs)) for rhs, _ in rules[nt]]
            lo[nt] = min(a for a, _ in sizes)
            hi[nt] = max(b for _, b in sizes)
    return lo, hi


# ----------------------------------------------------------------------------- loading

#: The paper's grammars shipped as package data (copies of ``../shared/data/pcfg/*.json``, kept
#: identical by a test): a user who installs the package without this repository's neighbours still
#: has cfg3b, cfg3b_official, cfg3f, cfg3g, cfg3h and cfg3i.
PACKAGED_GRAMMARS = Path(__file__).resolve().parent / "grammars"


def grammar_search_path() -> tuple[Path, ...]:
    """Directories searched for ``<name>.json``, earlier first: ``$ICURR_GRAMMAR_PATH``
    (os.pathsep-separated), ``./../shared/data/pcfg`` (from the current directory),
    ``<repo>/../shared/data/pcfg``, then the package's own copies (:data:`PACKAGED_GRAMMARS`)."""
    dirs = [Path(p) for p in os.environ.get("ICURR_GRAMMAR_PATH", "").split(os.pathsep) if p]
    dirs.append(Path.cwd() / ".." / "shared" / "data" / "pcfg")
    dirs.append(Path(__file__).resolve().parent.parent / ".." / "shared" / "data" / "pcfg")
    dirs.append(PACKAGED_GRAMMARS)
    out: list[Path] = []
    for d in dirs:
        d = d.resolve()
        if d not in out:
            out.append(d)
    return tuple(out)


def available_grammars() -> dict[str, Path]:
    """Name -> file for every ``*.json`` on the search path (earlier directories win)."""
    found: dict[str, Path] = {}
    for d in grammar_search_path():
        if d.is_dir():
            for f in sorted(d.glob("*.json")):
                found.setdefault(f.stem, f)
    return found


def load_grammar(spec: str | Path) -> Grammar:
    """Load a grammar from a JSON path, a name on :func:`grammar_search_path`, or the spec
    ``random:levels=L[,seed=S,nts=3,rules=2,terminals=3]`` (see :func:`random_grammar`)."""
    if isinstance(spec, str) and spec.startswith("random:"):
        return _random_from_spec(spec)
    if not isinstance(spec, (str, Path)) or not str(spec):
        raise ParameterError(f"grammar spec must be a path, a name or 'random:...', got {spec!r}")
    path = Path(spec)
    if isinstance(spec, Path) or path.suffix == ".json" or os.sep in str(spec) or path.is_file():
        if not path.is_file():
            raise ParameterError(f"grammar file {str(path)!r} does not exist")
        return read_grammar_file(path)
    found = available_grammars()
    if spec not in found:
        dirs = ", ".join(str(d) for d in grammar_search_path())
        names = ", ".join(sorted(found)) or "none"
        raise ParameterError(f"grammar {spec!r} not found; searched {dirs}; grammars found: {names}")
    return read_grammar_file(found[spec])


def _short(value, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters (one line of an error message)."""
    try:
        text = repr(value)
    except RecursionError:
        text = f"<{type(value).__name__} nested too deeply>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_grammar_file(path: Path) -> Grammar:
    """The validated grammar of a JSON file; every problem (not UTF-8, not JSON, nested too deeply, not a grammar)
    is a one-line ``ParameterError`` naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ParameterError(f"grammar file {str(path)!r} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except IsADirectoryError:
        raise ParameterError(f"grammar file {str(path)!r} is a directory") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParameterError(f"grammar file {str(path)!r} is not valid JSON ({exc.msg} at line {exc.lineno} "
                             f"column {exc.colno})") from None
    except RecursionError:
        raise ParameterError(f"grammar file {str(path)!r} is nested too deeply to be a grammar") from None
    try:
        return Grammar.from_dict(d)
    except ParameterError as exc:
        raise ParameterError(f"grammar file {str(path)!r}: {exc}") from None
    except RecursionError:
        raise ParameterError(f"grammar file {str(path)!r} is nested too deeply to be a grammar") from None


def _random_from_spec(spec: str) -> Grammar:
    keys = {"levels": None, "seed": 0, "nts": 3, "rules": 2, "terminals": 3}
    for item in filter(None, spec[len("random:"):].split(",")):
        k, sep, v = item.partition("=")
        k = k.strip()
        if not sep or k not in keys:
            raise ParameterError(f"grammar spec {spec!r}: items must be key=value with key one of "
                                 f"{', '.join(keys)}; got {item!r}")
        try:
            keys[k] = int(v)
        except ValueError as exc:
            raise ParameterError(f"grammar spec {spec!r}: {k} must be an integer, got {v!r}") from exc
    if keys["levels"] is None:
        raise ParameterError(f"grammar spec {spec!r} must give levels=<int>")
    seed = check_int("seed", keys["seed"], 0)
    return random_grammar(keys["levels"], nts_per_level=keys["nts"], rules_per_nt=keys["rules"],
                          terminals=keys["terminals"], generator=np.random.default_rng(seed), name=spec)


# ----------------------------------------------------------------------------- random grammars

def random_grammar(levels: int, *, nts_per_level: int = 3, rules_per_nt: int = 2, terminals: int = 3,
                   generator: np.random.Generator, name: str | None = None) -> Grammar:
    """A random layered grammar of the cfg3 family of Allen-Zhu & Li (2023) with ``depth == levels``.

    Level 0 is the root ``S``; levels 1..levels-2 hold ``nts_per_level`` NTs ``N<l>_<i>``; the last
    level holds one pre-terminal per terminal in the file convention (``a -> a``), so it has
    ``terminals`` NTs. Each NT gets ``rules_per_nt`` distinct rules, drawn uniformly among the
    sequences of length 2 or 3 over the next level whose consecutive symbols differ, with uniform
    probabilities; draws are repeated until every NT of the next level is used (reachable).
    Terminals are named a, b, c, ... (t0, t1, ... beyond 26).
    """
    levels = check_int("levels", levels, 2, 16)
    nts = check_int("nts_per_level", nts_per_level, 2, 64)
    k = check_int("rules_per_nt", rules_per_nt, 1)
    n_t = check_int("terminals", terminals, 2, 1000)
    if not isinstance(generator, np.random.Generator):
        raise ParameterError(f"generator must be a numpy.random.Generator, got {type(generator).__name__}")
    term_names = list(string.ascii_lowercase[:n_t]) if n_t <= 26 else [f"t{i}" for i in range(n_t)]
    names = [["S"]] + [[f"N{l}_{i}" for i in range(nts)] for l in range(1, levels - 1)] + [term_names]
    rules: dict[str, list] = {}
    for l in range(levels - 1):
        parents, kids = names[l], names[l + 1]
        cands = [c for n in (2, 3) for c in itertools.product(range(len(kids)), repeat=n)
                 if all(a != b for a, b in zip(c, c[1:]))]
        if k > len(cands):
            raise ParameterError(f"rules_per_nt must be at most {len(cands)} (distinct rules of length 2-3 "
                                 f"over {len(kids)} symbols), got {k}")
        if 3 * k * len(parents) < len(kids):
            raise ParameterError(f"rules_per_nt = {k} is too small for level {l} to reach the {len(kids)} "
                                 f"symbols of level {l + 1}; need rules_per_nt >= {-(-len(kids) // (3 * len(parents)))}")
        for _ in range(10_000):
            picks = [generator.choice(len(cands), size=k, replace=False) for _ in parents]
            if len({s for p in picks for i in p for s in cands[i]}) == len(kids):
                break
        else:
            raise ParameterError(f"could not reach every NT of level {l + 1}; increase rules_per_nt (got {k})")
        for a, p in zip(parents, picks):
            rules[a] = [[*(kids[s] for s in cands[i]), 1.0 / k] for i in p]
    for t in term_names:
        rules[t] = [[t, 1.0]]
    gname = name if name is not None else f"random-L{levels}-n{nts}-r{k}-t{n_t}"
    return Grammar.from_dict({"name": gname, "start": "S", "terminals": term_names, "rules": rules})
