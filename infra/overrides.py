"""``key=value`` overrides of frozen dataclass configs (re-exported by :mod:`infra.config`).

One frozen dataclass per experiment kind holds every setting with a commented default and checks
itself in ``__post_init__``; the command line, sweep files, presets and ``--config`` files change it
with ``key=value`` words:

    cfg = apply_overrides(TeacherConfig(), ["width=1000", "lr=0.01", "seeds=0,1,2"])

Values are parsed by the field's annotated type (int, float, str, bool, tuples of those, or
``X | None``); a tuple takes ``seeds=0,1,2`` or ``seeds=[0,1,2]`` (read by ``yaml.safe_load``, nested
lists for tuples of tuples), and the checks are the field's own. An unknown key raises one line with
the closest known keys ("did you mean 'width'?"). When ``steps`` changes, the intervals that follow it
follow the new steps (:func:`follow_steps`).

Why not OmegaConf or tyro: both would replace only the few lines that split ``key=value`` words, and
neither checks a value against the field's range (the one-line ``ParameterError`` naming the field and
its allowed range, raised before any work, is a house rule, and the checks live in each config's
``__post_init__``); OmegaConf would add a second YAML reader beside :mod:`infra.yamlfile` (which refuses
duplicate keys), tyro a second command-line parser beside argparse, and both bring their own error text
and import time. ``icurr config show KIND`` gives what tyro's generated help would.
"""
from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from decimal import Decimal, InvalidOperation

from theory._checks import ParameterError

__all__ = ["apply_overrides", "parse_overrides", "value_text", "parse_int", "MAX_INT", "CONFIG_ALIASES",
           "follow_steps", "INTERVAL_MULTIPLES", "did_you_mean"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

#: The largest integer a config field may hold (2^53 - 1): every integer up to it is exact as a float64,
#: so steps, sample counts and seeds survive JSON, pandas and Parquet columns unchanged.
MAX_INT = 2**53 - 1


def parse_int(name: str, text: str) -> int:
    """``text`` as an exact int: decimal digits (``1_000`` allowed) as they are; a number in another notation
    (``1e6``, ``2.5e3``, ``1000.0``) only when it is exactly an integer of magnitude <= :data:`MAX_INT`
    (read by :class:`decimal.Decimal`, never through a float). Anything else raises ``ParameterError``."""
    s = str(text).strip()
    try:
        return int(s)
    except ValueError:
        pass
    try:
        dec = Decimal(s)  # underscores between digits allowed, as int()
    except InvalidOperation:
        dec = None
    if dec is None or not dec.is_finite():
        raise ParameterError(f"{name} must be an integer, got {text!r}")
    if dec.adjusted() > 15 or abs(dec) > MAX_INT:  # adjusted(): the exponent of the leading digit
        raise ParameterError(f"{name} written as {text!r} must be at most 2^53 - 1 = {MAX_INT} in magnitude "
                             f"(write larger integers with digits only)")
    if dec != dec.to_integral_value():
        raise ParameterError(f"{name} must be an integer, got {text!r}")
    return int(dec)


def _parse_value(name: str, text: str, tp):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if text.strip().lower() in ("none", "null", ""):
            if type(None) in args:
                return None
        return _parse_value(name, text, inner[0])
    if origin is tuple:
        elem = args[0] if args else str
        if text.strip().startswith("["):  # list syntax: seeds=[0,1,2] (nested lists for tuples of tuples)
            return tuple(_parse_item(name, v, elem) for v in _yaml_list(name, text))
        parts = [p for p in text.split(",") if p.strip()]
        return tuple(_parse_value(name, p.strip(), elem) for p in parts)
    if tp is str and text.strip().startswith("["):  # support=[3,7,11,20]: the comma-separated text
        return ",".join(value_text(name, v) for v in _yaml_list(name, text))
    if origin is typing.Literal:
        if text not in args:
            raise ParameterError(f"{name} must be one of {', '.join(map(str, args))}; got {text!r}")
        return text
    if tp is int:
        return parse_int(name, text)
    try:
        if tp is bool:
            low = text.strip().lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError(text)
        if tp is float:
            return float(text)
    except ValueError:
        raise ParameterError(f"{name} must be of type {tp.__name__}, got {text!r}") from None
    return text


def _yaml_list(name: str, text: str) -> list:
    """``text`` read as a YAML flow list (``[0, 1, 2]``); a one-line ``ParameterError`` otherwise."""
    import yaml  # a core dependency, imported only when a list is written this way

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        why = getattr(exc, "problem", None) or type(exc).__name__
        raise ParameterError(f"{name} must be a list such as [0,1,2], got {text!r} ({why})") from None
    if not isinstance(value, list):
        raise ParameterError(f"{name} must be a list such as [0,1,2], got {text!r}")
    return value


def _parse_item(name: str, value, tp):
    """One item of a YAML list as the tuple's item type ``tp`` (checked as the ``key=value`` text is)."""
    if isinstance(value, list):
        if typing.get_origin(tp) is not tuple:
            raise ParameterError(f"{name} holds single values, not lists; got {value!r}")
        elem = (typing.get_args(tp) or (str,))[0]
        return tuple(_parse_item(name, v, elem) for v in value)
    if isinstance(value, (dict, set)):
        raise ParameterError(f"{name} items must be numbers or strings, got {value!r}")
    return _parse_value(name, value_text(name, value), tp)


def did_you_mean(key: str, known, listed=None) -> str:
    """The tail of an unknown-key message: ``"; did you mean 'a' or 'b'?"`` for the names of ``known``
    closest to ``key`` (:mod:`difflib`: first the names of the same section, then a misspelt section,
    then a field of any section, so that ``width`` finds ``teacher.width``), else ``"; known keys: ..."``
    listing ``listed`` (default: ``known``)."""
    known = list(known)
    section, _, tail = key.rpartition(".")
    same = {n.rpartition(".")[2]: n for n in known if n.rpartition(".")[0] == section}
    close = [same[c] for c in difflib.get_close_matches(tail, list(same), n=3, cutoff=0.6)]
    close = close or difflib.get_close_matches(key, known, n=3, cutoff=0.8)
    close = close or [n for n in known if difflib.get_close_matches(tail, [n.rpartition(".")[2]], cutoff=0.75)][:3]
    if close:
        return "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    return f"; known keys: {', '.join(sorted(known if listed is None else listed))}"


def parse_overrides(words) -> dict[str, str]:
    out = {}
    for word in words:
        if "=" not in word:
            raise ParameterError(f"overrides are key=value words, got {word!r}")
        key, value = word.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def apply_overrides(cfg, words, _section: str = ""):
    """A copy of the frozen dataclass ``cfg`` with ``key=value`` words applied (validated anew); when
    ``steps`` changes, the intervals not given follow it (:func:`follow_steps`)."""
    raw = parse_overrides(words) if not isinstance(words, dict) else words
    hints = typing.get_type_hints(type(cfg))
    fields = {f.name for f in dataclasses.fields(cfg)}
    changes, nested = {}, {}
    for key, value in raw.items():
        head, dot, rest = key.partition(".")
        if head not in fields:
            renamed = CONFIG_ALIASES.get(type(cfg).__name__, {}).get(head)
            if renamed:
                raise ParameterError(f"config key {head!r} was renamed {renamed!r} (the same name in every engine)")
            known = [f"{_section}{n}" for n in _dotted_names(cfg)]
            raise ParameterError(f"unknown config key {key!r}{did_you_mean(_section + key, known, sorted(fields))}")
        if dot:
            if not dataclasses.is_dataclass(getattr(cfg, head)):
                raise ParameterError(f"config key {head!r} has no sub-keys (got {key!r})")
            nested.setdefault(head, {})[rest] = value
        elif dataclasses.is_dataclass(getattr(cfg, head)):
            raise ParameterError(f"config key {key!r} is a section; set its fields as {key}.FIELD=VALUE")
        else:
            changes[key] = _parse_value(key, value, hints[key]) if isinstance(value, str) else value
    changes = follow_steps(cfg, changes, given=raw)
    for head, sub in nested.items():
        try:
            changes[head] = apply_overrides(getattr(cfg, head), sub, f"{_section}{head}.")
        except ParameterError as exc:  # name the field by its section: student.width, not width
            text = str(exc)
            first = re.match(r"[A-Za-z_]\w*", text)
            section_fields = {f.name for f in dataclasses.fields(getattr(cfg, head))}
            named = first is not None and first.group() in section_fields and not text.startswith(f"{head}.")
            raise type(exc)(f"{head}.{text}" if named else f"{head}: {text}") from None
    return dataclasses.replace(cfg, **changes)


def _dotted_names(cfg) -> list[str]:
    """Every settable key of ``cfg``: its fields, a section's as ``section.field``."""
    out = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        out += [f"{f.name}.{n}" for n in _dotted_names(value)] if dataclasses.is_dataclass(value) else [f.name]
    return out


#: Intervals kept a multiple of ``eval_every`` (at the defaults: the same multiple); with ``eval_every``
#: they follow ``steps`` (:func:`follow_steps`).
INTERVAL_MULTIPLES = ("checkpoint_every", "probe_every", "measure_every")


def _interval_rule(defaults: dict, steps: int) -> dict[str, int]:
    """The intervals the proportional rule gives at ``steps`` (see :func:`follow_steps`)."""
    s0, e0 = defaults["steps"], defaults["eval_every"]
    every = min(steps, max(1, round(e0 * steps / s0)))
    out = {"eval_every": every}
    for name in INTERVAL_MULTIPLES:
        f0 = defaults.get(name)
        if isinstance(f0, int) and f0 % e0 == 0:
            out[name] = 0 if f0 == 0 else max(1, min(f0 // e0, steps // every)) * every
    return out


def follow_steps(cfg, changes: dict, given) -> dict:
    """``changes`` of ``cfg`` with the intervals that follow ``steps`` set (a config with fields ``steps``
    and ``eval_every`` whose defaults are > 0; others unchanged).

    When ``changes`` sets ``steps`` to a new value, each of ``eval_every`` and :data:`INTERVAL_MULTIPLES`
    not in ``given`` (the keys of the same overrides) whose current value is what the rule gives at
    the current steps (at the class defaults: the default itself) takes the rule's value at the new
    steps: ``eval_every = max(1, round(E0 * steps / S0))`` (``S0``, ``E0``: the class defaults), and
    ``checkpoint_every`` / ``probe_every`` / ``measure_every`` = the multiple of the resulting
    ``eval_every`` that their defaults are of ``E0`` (0 stays 0); each clipped to ``<= steps``. An
    interval given, or set earlier to another value, is kept. So ``steps=2000`` alone is valid, and
    every existing config that gives its intervals is unchanged."""
    names = {f.name: f for f in dataclasses.fields(cfg)}
    if "steps" not in changes or "eval_every" not in names or "steps" not in names:
        return changes
    defaults = {n: f.default for n, f in names.items() if n in ("steps", "eval_every", *INTERVAL_MULTIPLES)}
    new, old = changes["steps"], cfg.steps
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
               for v in (defaults["steps"], defaults["eval_every"], new, old)) or new == old:
        return changes
    now, then = _interval_rule(defaults, old), _interval_rule(defaults, new)
    out = dict(changes)
    follows = [n for n in then if n not in given and getattr(cfg, n) == now[n]]
    if "eval_every" in follows:
        out["eval_every"] = then["eval_every"]
    every = out.get("eval_every", cfg.eval_every)
    for name in follows:
        if name != "eval_every" and isinstance(every, int) and 0 < every <= new:
            multiple = defaults[name] // defaults["eval_every"]
            out[name] = 0 if multiple == 0 else max(1, min(multiple, new // every)) * every
    return out


def value_text(key: str, value) -> str:
    """A YAML/TOML value (number, string, bool, None or a list of those) as the ``key=value`` text that
    :func:`apply_overrides` parses and checks."""
    if isinstance(value, (list, tuple)):
        parts = [value_text(key, v) for v in value]
        if any("," in p for p in parts):
            raise ParameterError(f"{key}: list items must not contain ',', got {value!r}")
        return ",".join(parts)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, (int, float, str)):
        return repr(value) if isinstance(value, float) else str(value)
    raise ParameterError(f"{key} must be a number, string, bool or list, got {type(value).__name__}")


#: Renamed config fields, ``{config class name: {old key: new key}}``: a stored ``config.json`` written
#: with an old key loads as the new field (:func:`config_from_dict`; nested sections included).
CONFIG_ALIASES: dict[str, dict[str, str]] = {
    # one vocabulary of the first checkpoint in every engine (infra.first_checkpoint)
    "StudentConfig": {"intermediate": "first_checkpoint", "intermediate_rule": "first_rule"},
}
