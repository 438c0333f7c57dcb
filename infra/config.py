"""``key=value`` overrides of frozen dataclass configs, and their JSON form.

One frozen dataclass per experiment kind holds every setting with a commented default and checks
itself in ``__post_init__``; the command line changes it with ``key=value`` words:

    cfg = apply_overrides(TeacherConfig(), ["width=1000", "lr=0.01", "seeds=0,1,2"])

Values are parsed by the field's annotated type (int, float, str, bool, tuples of those, or
``X | None``); an unknown key raises with the list of known keys.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing

from theory._checks import ParameterError, check_int, check_real

__all__ = ["apply_overrides", "parse_overrides", "config_to_dict", "config_from_dict", "config_hash", "value_text",
           "check_seeds", "check_extraction", "CONFIG_ALIASES", "renamed_config_keys"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


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
        parts = [p for p in text.split(",") if p.strip()]
        return tuple(_parse_value(name, p.strip(), elem) for p in parts)
    if origin is typing.Literal:
        if text not in args:
            raise ParameterError(f"{name} must be one of {', '.join(map(str, args))}; got {text!r}")
        return text
    try:
        if tp is bool:
            low = text.strip().lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError(text)
        if tp is int:
            value = float(text)
            if not value.is_integer():
                raise ValueError(text)
            return int(value)
        if tp is float:
            return float(text)
    except ValueError:
        raise ParameterError(f"{name} must be of type {tp.__name__}, got {text!r}") from None
    return text


def parse_overrides(words) -> dict[str, str]:
    out = {}
    for word in words:
        if "=" not in word:
            raise ParameterError(f"overrides are key=value words, got {word!r}")
        key, value = word.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def apply_overrides(cfg, words):
    """A copy of the frozen dataclass ``cfg`` with ``key=value`` words applied (validated anew)."""
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
            raise ParameterError(f"unknown config key {key!r}; known keys: {', '.join(sorted(fields))}")
        if dot:
            if not dataclasses.is_dataclass(getattr(cfg, head)):
                raise ParameterError(f"config key {head!r} has no sub-keys (got {key!r})")
            nested.setdefault(head, {})[rest] = value
        elif dataclasses.is_dataclass(getattr(cfg, head)):
            raise ParameterError(f"config key {key!r} is a section; set its fields as {key}.FIELD=VALUE")
        else:
            changes[key] = _parse_value(key, value, hints[key]) if isinstance(value, str) else value
    for head, sub in nested.items():
        changes[head] = apply_overrides(getattr(cfg, head), sub)
    return dataclasses.replace(cfg, **changes)


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


def config_to_dict(cfg) -> dict:
    """JSON-ready dict, with the config class name under ``"kind"``."""
    out = {"kind": type(cfg).__name__}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        out[f.name] = config_to_dict(v) if dataclasses.is_dataclass(v) else list(v) if isinstance(v, tuple) else v
    return out


#: Renamed config fields, ``{config class name: {old key: new key}}``: a stored ``config.json`` written
#: with an old key loads as the new field (:func:`config_from_dict`; nested sections included).
CONFIG_ALIASES: dict[str, dict[str, str]] = {
    # one vocabulary of the first checkpoint in every engine (infra.first_checkpoint)
    "StudentConfig": {"intermediate": "first_checkpoint", "intermediate_rule": "first_rule"},
}


def _unalias(cls, data: dict) -> dict:
    aliases = CONFIG_ALIASES.get(cls.__name__, {})
    out = {}
    for key, value in data.items():
        new = aliases.get(key, key)
        if new in out or (new != key and new in data):
            raise ParameterError(f"config of {cls.__name__} holds both {key!r} and its new name {new!r}")
        out[new] = value
    return out


def renamed_config_keys(data: dict) -> dict:
    """A stored config dict (``config.json``) with the old keys of :data:`CONFIG_ALIASES` renamed, by
    its ``kind`` and the ``kind`` of every nested section; other keys as they are."""
    aliases = CONFIG_ALIASES.get(data.get("kind"), {})
    return {aliases.get(k, k): renamed_config_keys(v) if isinstance(v, dict) else v for k, v in data.items()}


def config_from_dict(cls, data: dict):
    """Inverse of :func:`config_to_dict` (``kind`` is checked when present). Old field names of
    :data:`CONFIG_ALIASES` load as their new names; a field missing from ``data`` takes its default."""
    data = dict(data)
    kind = data.pop("kind", cls.__name__)
    if kind != cls.__name__:
        raise ParameterError(f"config of kind {kind!r} where {cls.__name__!r} was expected")
    data = _unalias(cls, data)
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - fields
    if unknown:
        raise ParameterError(f"unknown config key(s) {sorted(unknown)} for {cls.__name__}")
    kwargs = {}
    for key, value in data.items():
        if dataclasses.is_dataclass(hints[key]):
            kwargs[key] = config_from_dict(hints[key], value)
            continue
        if isinstance(value, list) or typing.get_origin(hints[key]) is tuple:
            value = tuple(value) if value is not None else None
        kwargs[key] = value
    return cls(**kwargs)


def config_hash(cfg, length: int = 12) -> str:
    """Stable hash of the full config (sorted-key JSON): equal configs, equal hashes."""
    text = json.dumps(config_to_dict(cfg), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


# ---------------------------------------------------------------- checks shared by the engines' configs

def check_extraction(cfg, layers: int = 1, *, active: bool | None = None, prefix: str = "") -> None:
    """Curriculum Extraction's fields of a student config (MLP: one hidden layer; Transformers: the
    ``layers`` extracted blocks). When extraction runs (``active``; default: ``cfg.strategy ==
    "extraction"``) its ``layers * extract_steps`` alignment steps must leave steps for the final
    teacher. ``prefix`` ("student.") names the fields inside a compare config."""
    check_int(f"{prefix}extract_steps", cfg.extract_steps, 1)
    check_real(f"{prefix}projection_scale", cfg.projection_scale, 0, lo_open=True)
    check_int(f"{prefix}projection_seed", cfg.projection_seed, 0)
    if (cfg.strategy == "extraction" if active is None else active) and layers * cfg.extract_steps >= cfg.steps:
        raise ParameterError(f"{prefix}extract_steps must leave steps for the final teacher: {layers} extracted "
                             f"layer(s) * {prefix}extract_steps = {layers * cfg.extract_steps} must be < "
                             f"{prefix}steps = {cfg.steps} for extraction")


def check_seeds(seeds, **per_run) -> None:
    """Seeds of a batched program: at least one, each an int >= 0. ``per_run``: fields holding one
    value per run (``run_lrs=(...)``; empty: not used); the runs' (seed, per-run values) must be distinct."""
    if not seeds:
        raise ParameterError("seeds must hold at least one seed")
    for s in seeds:
        check_int("seeds", s, 0)
    used = {k: tuple(v) for k, v in per_run.items() if v}
    for name, values in used.items():
        if len(values) != len(seeds):
            raise ParameterError(f"{name} must hold one value per seed ({len(seeds)}), got {len(values)}")
        for v in values:
            check_real(name, v, 0, lo_open=name == "run_lrs")
    keys = list(zip(seeds, *used.values()))
    if len(set(keys)) != len(keys):
        what = "seeds" if not used else f"(seed, {', '.join(used)}) combinations"
        raise ParameterError(f"{what} must be distinct, got {keys if used else seeds}")
