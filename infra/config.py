"""Frozen dataclass configs: their JSON form, hashes, stored configs, and the checks shared by the engines'
configs (seeds, checkpoints, extraction, memory).

``key=value`` overrides (``apply_overrides``, ``value_text``, the alias table of renamed fields, the
intervals that follow ``steps``) live in :mod:`infra.overrides` and are re-exported here.
"""
from __future__ import annotations

import contextvars
import dataclasses
import hashlib
import json
import typing
from pathlib import Path
from typing import Any

from theory._checks import ParameterError, check_int, check_real

from .overrides import (CONFIG_ALIASES, INTERVAL_MULTIPLES, MAX_INT, apply_overrides, did_you_mean, follow_steps,
                        parse_int, parse_overrides, value_text)

__all__ = ["apply_overrides", "parse_overrides", "config_to_dict", "config_from_dict", "config_hash", "value_text",
           "check_seeds", "check_checkpoints", "check_extraction", "CONFIG_ALIASES", "HASH_NEW_FIELDS",
           "renamed_config_keys", "MAX_INT", "follow_steps", "INTERVAL_MULTIPLES", "did_you_mean", "parse_int",
           "machine_memory", "check_memory", "human_bytes", "read_json_file", "stored_config", "IcurrWarning"]


class IcurrWarning(UserWarning):
    """A warning about an input that does not stop the work (a run skipped by a report, a grammar name that
    resolves to another grammar than the stored copy); the command line prints it as one line."""


def config_to_dict(cfg) -> dict:
    """JSON-ready dict, with the config class name under ``"kind"``."""
    out = {"kind": type(cfg).__name__}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        out[f.name] = config_to_dict(v) if dataclasses.is_dataclass(v) else list(v) if isinstance(v, tuple) else v
    return out


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
    :data:`CONFIG_ALIASES` load as their new names; a field missing from ``data`` takes its default.
    Every field is checked as on construction, except whether the run fits this machine's memory
    (:func:`check_memory`): a stored config may describe a run made on another machine."""
    token = _MEMORY_CHECKS.set(False)
    try:
        return _config_from_dict(cls, data)
    finally:
        _MEMORY_CHECKS.reset(token)


def _config_from_dict(cls, data: dict):
    if not isinstance(data, dict):
        raise ParameterError(f"config of {cls.__name__} must be a JSON object, got {type(data).__name__}")
    data = dict(data)
    kind = data.pop("kind", cls.__name__)
    if kind != cls.__name__:
        raise ParameterError(f"config of kind {kind!r} where {cls.__name__!r} was expected")
    data = _unalias(cls, data)
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - fields
    if unknown:
        hint = did_you_mean(sorted(unknown)[0], fields, ()).partition("; known keys")[0] if len(unknown) == 1 else ""
        raise ParameterError(f"unknown config key(s) {sorted(unknown)} for {cls.__name__}{hint}")
    kwargs = {}
    for key, value in data.items():
        if dataclasses.is_dataclass(hints[key]):
            kwargs[key] = _config_from_dict(hints[key], value)
            continue
        if isinstance(value, list) or typing.get_origin(hints[key]) is tuple:
            value = tuple(value) if value is not None else None
        kwargs[key] = value
    return cls(**kwargs)


def read_json_file(path, what: str = "file"):
    """The JSON value stored in ``path``; a one-line ``ParameterError`` naming the file when it is missing,
    not UTF-8 or not valid JSON (truncated, or nested too deeply to parse). Other ``OSError``s pass."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParameterError(f"{what} {str(path)!r} does not exist") from None
    except UnicodeDecodeError as exc:
        raise ParameterError(f"{what} {str(path)!r} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParameterError(f"{what} {str(path)!r} is not valid JSON ({exc.msg} at line {exc.lineno} column "
                             f"{exc.colno}; truncated?)") from None
    except RecursionError:
        raise ParameterError(f"{what} {str(path)!r} is nested too deeply to read") from None


def stored_config(classes, path, what: str = "config"):
    """The config stored in ``path`` (a run's ``config.json``) as the class of ``classes`` its ``kind``
    names (:func:`config_from_dict`); one-line ``ParameterError`` naming the file when it cannot be read
    or holds no valid config of those classes."""
    classes = {c.__name__: c for c in (classes if isinstance(classes, (list, tuple)) else (classes,))}
    data = read_json_file(path, what)
    if not isinstance(data, dict):
        raise ParameterError(f"{what} {str(path)!r} must hold a JSON object, got {type(data).__name__}")
    kind = data.get("kind")
    cls = classes.get(kind) if kind is not None or len(classes) != 1 else next(iter(classes.values()))
    if cls is None:
        raise ParameterError(f"{what} {str(path)!r} holds a {kind!r} config, not one of {', '.join(classes)}")
    try:
        return config_from_dict(cls, data)
    except (ParameterError, TypeError, ValueError) as exc:
        raise ParameterError(f"{what} {str(path)!r} is not a valid {cls.__name__}: {exc}") from None


#: Fields added after run directories named by :func:`config_hash` were published, ``{config class
#: name: {field: the value it had implicitly before}}``. At that value a field is left out of the hash,
#: so that adding it renames no existing run (``config.json`` still lists it).
HASH_NEW_FIELDS: dict[str, dict[str, Any]] = {
    # progressive's explicit intermediate checkpoints; a finite training pool, the probed degrees, the
    # supervision's label smoothing, alpha schedule and temperature annealing, the block backend (simulate)
    "StudentConfig": {"checkpoints": [], "train_size": 0, "probe_degrees": [1, 2, 3], "label_smoothing": 0.0,
                      "alpha_end": None, "temperature_end": None, "backend": "auto"},
    "TeacherConfig": {"train_size": 0, "probe_degrees": [1, 2, 3], "backend": "auto"},  # the MLP teacher (simulate)
    "ParityTransformerStudentConfig": {"checkpoints": []},
    "PcfgStudentConfig": {"checkpoints": []},
    "TextStudentConfig": {"checkpoints": []},
}


def _hashed(data: dict) -> dict:
    new = HASH_NEW_FIELDS.get(data.get("kind"), {})
    return {k: _hashed(v) if isinstance(v, dict) else v for k, v in data.items()
            if not (k in new and v == new[k])}


def config_hash(cfg, length: int = 12) -> str:
    """Stable hash of the full config (sorted-key JSON): equal configs, equal hashes. Fields of
    :data:`HASH_NEW_FIELDS` at their former implicit value are left out."""
    text = json.dumps(_hashed(config_to_dict(cfg)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


# ---------------------------------------------------------------- checks shared by the engines' configs

def check_extraction(cfg, layers: int = 1, *, active: bool | None = None, prefix: str = "") -> None:
    """Curriculum Extraction's fields of a student config (MLP: one hidden layer; Transformers: the
    ``layers`` extracted blocks). When extraction runs (``active``; default: ``cfg.strategy ==
    "extraction"``) its ``layers * extract_steps`` alignment steps must leave steps for the final
    teacher. ``prefix`` ("student.") names the fields inside a compare config."""
    check_int(f"{prefix}extract_steps", cfg.extract_steps, 1)
    check_real(f"{prefix}projection_scale", cfg.projection_scale, 0, lo_open=True)
    check_int(f"{prefix}projection_seed", cfg.projection_seed, 0, MAX_INT)
    if (cfg.strategy == "extraction" if active is None else active) and layers * cfg.extract_steps >= cfg.steps:
        raise ParameterError(f"{prefix}extract_steps must leave steps for the final teacher: {layers} extracted "
                             f"layer(s) * {prefix}extract_steps = {layers * cfg.extract_steps} must be < "
                             f"{prefix}steps = {cfg.steps} for extraction")


def check_checkpoints(cfg) -> None:
    """A student's explicit intermediate checkpoints (``checkpoints``; read by progressive only): teacher steps
    >= 1, strictly increasing; ``n_checkpoints`` 0 or ``len(checkpoints) + 1``. Whether they lie before the
    teacher's last step is checked when the teacher is known (:func:`infra.schedule.stage_plan`)."""
    cks = tuple(cfg.checkpoints)
    for c in cks:
        check_int("checkpoints", c, 1, MAX_INT)
    if any(b <= a for a, b in zip(cks, cks[1:])):
        raise ParameterError(f"checkpoints must be strictly increasing teacher steps, got {list(cks)}")
    if cks and cfg.n_checkpoints not in (0, len(cks) + 1):
        raise ParameterError(f"n_checkpoints must be 0 or len(checkpoints) + 1 = {len(cks) + 1} when checkpoints "
                             f"are given, got {cfg.n_checkpoints}")


def check_seeds(seeds, **per_run) -> None:
    """Seeds of a batched program: at least one, each an int >= 0. ``per_run``: fields holding one
    value per run (``run_lrs=(...)``; empty: not used); the runs' (seed, per-run values) must be distinct."""
    if not seeds:
        raise ParameterError("seeds must hold at least one seed")
    for s in seeds:
        check_int("seeds", s, 0, MAX_INT)
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


# ---------------------------------------------------------------- memory: refuse what cannot fit, before any work

#: Estimates below this many bytes pass without asking the machine (no device query, no torch import).
_SMALL = 1 << 30
#: Off while :func:`config_from_dict` reads a stored config (a run made elsewhere is not refused here).
_MEMORY_CHECKS: contextvars.ContextVar[bool] = contextvars.ContextVar("icurr_memory_checks", default=True)


def human_bytes(n: float) -> str:
    """``n`` bytes in binary units: ``24 GiB``, ``3.6 TiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if n < 1024 or unit == "EiB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.3g} EiB"  # pragma: no cover


def machine_memory(device: str = "cpu") -> tuple[int, str]:
    """``(bytes, what)``: the memory that holds a run's tensors on ``device``. ``cpu``: the machine's
    physical memory (``os.sysconf``); ``cuda`` (and ``auto`` when CUDA is available): the total memory
    of CUDA device 0. Without ``os.sysconf`` (not POSIX): a fixed 1 TiB, a bound that still refuses
    the absurd."""
    import os

    if device in ("cuda", "auto"):
        import torch  # only asked for estimates above _SMALL

        if torch.cuda.is_available():
            return int(torch.cuda.get_device_properties(0).total_memory), "memory of CUDA device 0"
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES")), "RAM"
    except (AttributeError, ValueError, OSError):  # pragma: no cover (non-POSIX)
        return 1 << 40, "RAM (assumed: os.sysconf unavailable)"


def check_memory(terms, device: str = "cpu", *, what: str = "this run") -> None:
    """Refuse a config whose tensors cannot fit: ``terms`` are ``(formula, count, unit, bytes)`` of the
    largest tensors the run must hold at once (a lower bound of its memory: parameters and optimizer
    state, one batch of activations, the evaluation and probe sets); the error names the largest
    term's formula (its fields), its size, the total and the machine's memory (:func:`machine_memory`)."""
    terms = [t for t in terms if t[3] > 0]
    total = sum(float(t[3]) for t in terms)
    if total < _SMALL or not _MEMORY_CHECKS.get():
        return
    have, where = machine_memory(device)
    if total <= have:
        return
    formula, count, unit, nbytes = max(terms, key=lambda t: t[3])
    share = "" if nbytes >= 0.99 * total else f" ({human_bytes(total)} in all)"
    raise ParameterError(f"{formula} = {float(count):.3g} {unit} need at least {human_bytes(nbytes)}{share}; "
                         f"this machine has {human_bytes(have)} ({where}, device={device})")
