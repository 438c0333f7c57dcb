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
``experiments/sweeps/presets/<family>.yaml``: ``{preset name: {section: {field: value}}}``.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from infra.config import value_text
from theory._checks import ParameterError

__all__ = ["Kind", "KINDS", "FAMILIES", "PRESETS_DIR", "get_kind", "kind_names", "family_kinds", "presets",
           "preset_words"]

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
_GRAMMAR = ("a grammar name (NAME.json on $ICURR_GRAMMAR_PATH, then ../shared/data/pcfg), a JSON path, or "
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
    """The kind called ``name``; ParameterError listing the kinds otherwise."""
    if name not in KINDS:
        raise ParameterError(f"kind must be one of {', '.join(KINDS)}, got {name!r}")
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
