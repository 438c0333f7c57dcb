"""Sweeps: a YAML or TOML file that expands into single-seed runs, grouped into batched programs.

A sweep file names the experiment ``kind`` (one of :data:`experiments.registry.KINDS`: ``teacher``,
``student`` or ``compare`` for MLPs on sparse parity; ``pcfg-*``, ``parity-transformer-*`` and ``text-*``
for the Transformers of :mod:`distill`, whose runs keep all their seeds in one directory), a ``base``
mapping of config overrides, a ``grid`` mapping ``key -> list`` (Cartesian product, first key
slowest) and an optional ``zip`` mapping ``key -> list`` (lists of equal length, taken together,
then crossed with the grid)::

    kind: teacher
    base: {d: 10, k: 2, width: 64, steps: 2000, eval_every: 250, checkpoint_every: 500, device: cpu}
    grid:
      lr: [0.05, 0.1]
      seeds: [0, 1, 2]          # an ordinary key: three runs, one seed each
    zip:
      width: [64, 128]
      batch: [1, 2]

Keys are the config's fields (``key=value`` words of the command line); compare sweeps use
``teacher.FIELD`` / ``student.FIELD`` (or nested mappings, as TOML's dotted keys give). An optional
``preset: paper`` starts from the kind's preset file (``experiments/sweeps/presets/<family>.yaml``). Unknown keys, bad values,
mismatched zip lengths, a key written twice in one mapping of a YAML file, and file inputs that cannot
be read (every distinct ``grammar`` is loaded and validated; every ``corpus`` path must exist and hold
UTF-8 text) raise :class:`ParameterError` for the first bad point, before any run trains or any
file is written.

Every point of an MLP kind is split into runs of ONE seed (compare: one teacher seed and one student seed); a
run is named by :func:`infra.config.config_hash` of its full config. Runs that differ only in their
seeds form a :class:`Group`, trained as one batched program (``seeds=(s1, s2, ...)``) and then
split into per-run directories (:mod:`experiments.sweep_exec`). Any number of workers may run the
same sweep into one directory at once: each group is claimed by one of them with an OS file lock
(:mod:`infra.claims`), so each run trains exactly once; the others report it ``busy``.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from infra.config import apply_overrides, config_hash, did_you_mean, value_text
from infra.yamlfile import load_yaml
from theory._checks import ParameterError

from .registry import KINDS, get_kind, preset_words, presets
from .sweep_groups import Group, RunSpec, group_runs

__all__ = ["SWEEPS_DIR", "config_class", "Sweep", "RunSpec", "Group", "load_sweep", "parse_sweep", "expand", "group_runs",
           "run_sweep", "SweepOutcome", "flatten_mapping"]

log = logging.getLogger(__name__)

#: The sweep files shipped with the package: the demo's sweep, the presets and the examples.
SWEEPS_DIR = Path(__file__).resolve().parent / "sweeps"

def config_class(kind: str):
    """The config class of a sweep kind (:mod:`experiments.registry`)."""
    return get_kind(kind).config_class()


_TOP_KEYS = ("kind", "base", "grid", "zip", "preset", "name", "description")


@dataclass(frozen=True)
class Sweep:
    """A parsed sweep: ``base`` overrides, ``grid`` and ``zip`` axes as ``(key, values)`` pairs."""

    kind: str
    base: tuple[tuple[str, Any], ...] = ()
    grid: tuple[tuple[str, tuple], ...] = ()
    zip: tuple[tuple[str, tuple], ...] = ()
    preset: str | None = None
    source: str = "<sweep>"  # file the sweep was read from (for messages)


# ---------------------------------------------------------------- file format

def flatten_mapping(mapping: Mapping, where: str, prefix: str = "") -> dict[str, Any]:
    """Nested mappings become dotted keys (``{teacher: {width: 8}}`` -> ``teacher.width``)."""
    if not isinstance(mapping, Mapping):
        raise ParameterError(f"{where} must be a mapping of config keys, got {type(mapping).__name__}")
    out = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten_mapping(value, where, name + "."))
        else:
            out[name] = value
    return out


def _frozen(value):
    """Lists as tuples, so that a :class:`Sweep` is hashable like every frozen config."""
    return tuple(_frozen(v) for v in value) if isinstance(value, (list, tuple)) else value


def _axis(data, name: str) -> tuple[tuple[str, tuple], ...]:
    if data is None:
        return ()
    flat = flatten_mapping(data, name)
    out = []
    for key, values in flat.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise ParameterError(f"{name}.{key} must be a non-empty list of values, got {values!r}")
        out.append((key, tuple(_frozen(v) for v in values)))
    return tuple(out)


def parse_sweep(data: Mapping, *, source: str = "<sweep>") -> Sweep:
    """A :class:`Sweep` from the mapping of a sweep file; checks every key (no work is done)."""
    if not isinstance(data, Mapping):
        raise ParameterError(f"sweep {source} must be a mapping with kind, base, grid, zip")
    unknown = sorted(set(data) - set(_TOP_KEYS))
    if unknown:
        hint = did_you_mean(str(unknown[0]), _TOP_KEYS)
        hint = hint.split("; known keys")[0] if "did you mean" in hint else ""
        raise ParameterError(f"sweep {source}: unknown top-level key(s) {unknown}{hint}; known: {', '.join(_TOP_KEYS)}")
    kind = data.get("kind")
    if kind not in KINDS:
        raise ParameterError(f"kind must be one of {', '.join(KINDS)} in sweep {source}, got {kind!r}")
    preset = data.get("preset")
    if preset is not None and preset not in presets(KINDS[kind].family):
        raise ParameterError(f"preset must be one of {', '.join(presets(KINDS[kind].family)) or '(none)'} for kind "
                             f"{kind} in sweep {source}, got {preset!r}")
    base = tuple((k, _frozen(v)) for k, v in flatten_mapping(data.get("base") or {}, "base").items())
    grid, zipped = _axis(data.get("grid"), "grid"), _axis(data.get("zip"), "zip")
    both = sorted({k for k, _ in grid} & {k for k, _ in zipped})
    if both:
        raise ParameterError(f"key(s) {both} appear in both grid and zip of sweep {source}")
    lengths = {k: len(v) for k, v in zipped}
    if len(set(lengths.values())) > 1:
        raise ParameterError(f"zip lists must have equal lengths in sweep {source}, got {lengths}")
    sweep = Sweep(kind, base, grid, zipped, preset, source)
    expand(sweep)  # validates every key and value now
    return sweep


def load_sweep(path) -> Sweep:
    """Read a ``.yaml``/``.yml`` or ``.toml`` sweep file (see the module doc)."""
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"sweep file {str(path)!r} does not exist")
    text = path.read_text()
    if path.suffix.lower() == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            try:
                import tomli as tomllib
            except ImportError:
                raise ParameterError("TOML sweep files need Python >= 3.11 or the 'tomli' package") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ParameterError(f"sweep file {path} is not valid TOML: {exc}") from None
    else:
        data = load_yaml(text, f"sweep file {path}")
    return parse_sweep(data or {}, source=str(path))


# ---------------------------------------------------------------- expansion

def _base_config(sweep: Sweep):
    kind = get_kind(sweep.kind)
    cfg = kind.config_class()()
    if sweep.preset:
        cfg = apply_overrides(cfg, preset_words(kind, sweep.preset))
    return cfg


def _apply(cfg, items, where: str):
    words = {key: value_text(key, value) for key, value in items}
    try:
        return apply_overrides(cfg, words)
    except ParameterError as exc:
        raise ParameterError(f"{exc} ({where})") from None


def _resolve_teacher(cfg, source: str, kind: str = "student"):
    """A student's teacher directory as an absolute path; it must hold a finished teacher."""
    field = "strategy" if hasattr(cfg, "strategy") else "supervision"  # Algorithm 1's students: supervision
    choice = getattr(cfg, field)
    if choice in ("ce", "labels") and not cfg.teacher:
        return cfg
    if not cfg.teacher:
        raise ParameterError(f"teacher must name a teacher run directory for {field} {choice!r} ({source})")
    path = Path(cfg.teacher).expanduser().resolve()
    if not (path / "config.json").is_file():
        raise ParameterError(f"teacher {cfg.teacher!r} is not a teacher run directory (no config.json) ({source})")
    if not (path / "summary.json").is_file():
        raise ParameterError(f"teacher {cfg.teacher!r} is not finished (no summary.json) ({source})")
    teacher_kind = KINDS[kind].family_kind("teacher")
    want = teacher_kind.config_path.rpartition(":")[2]
    if json.loads((path / "config.json").read_text()).get("kind") != want:
        raise ParameterError(f"teacher {cfg.teacher!r} holds no {want} run ({source})")
    return dataclasses.replace(cfg, teacher=str(path))


def _single_seed_configs(kind: str, cfg):
    """``(seed point, config)`` for every seed (compare: every teacher seed x student seed); Transformer
    kinds are not split."""
    if not KINDS[kind].split_seeds:
        yield (), cfg
    elif KINDS[kind].role == "compare":
        for t in cfg.teacher.seeds:
            for s in cfg.student.seeds:
                yield ((("teacher.seeds", t), ("student.seeds", s)),
                       dataclasses.replace(cfg, teacher=dataclasses.replace(cfg.teacher, seeds=(t,)),
                                           student=dataclasses.replace(cfg.student, seeds=(s,))))
    else:
        for s in cfg.seeds:
            yield (("seeds", s),), dataclasses.replace(cfg, seeds=(s,))


def _file_inputs(cfg, prefix: str = ""):
    """``(field, value, section)`` for every ``grammar`` and ``corpus`` field of a config (sections
    of a compare config included)."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            yield from _file_inputs(value, f"{prefix}{f.name}.")
        elif f.name in ("grammar", "corpus") and isinstance(value, str):
            yield f"{prefix}{f.name}", value, cfg


def _check_grammar(spec: str) -> None:
    from distill.grammar import load_grammar  # the engine's own loader and checks

    try:
        load_grammar(spec)
    except ParameterError:
        raise
    except Exception as exc:  # noqa: BLE001 - a malformed file: name the problem in one line
        raise ParameterError(f"grammar {spec!r} cannot be loaded: {type(exc).__name__}: {exc}") from None


def _check_inputs(cfg, where: str, checked: set) -> None:
    """Load every distinct grammar and look at every distinct corpus of ``cfg`` once (``checked``)."""
    for field, value, section in _file_inputs(cfg):
        kind = field.rpartition(".")[2]
        key = (kind, value, getattr(section, "corpus_glob", None))
        if key in checked:
            continue
        try:
            if kind == "grammar":
                _check_grammar(value)
            else:
                from distill.corpus import check_corpus

                check_corpus(value, key[2] or "*.txt")
        except ParameterError as exc:
            raise ParameterError(f"{' '.join(str(exc).split())} (field {field} of {where})") from None
        checked.add(key)


def expand(sweep: Sweep) -> list[RunSpec]:
    """Every run of ``sweep`` in order (zip outer, then the grid, then seeds); duplicates dropped.

    Every point is checked first: its config, its teacher directory (students) and its file inputs
    (grammars loaded, corpora looked at), so that a bad point fails before any run starts."""
    base = _apply(_base_config(sweep), sweep.base, f"base of {sweep.source}")
    zkeys = [k for k, _ in sweep.zip]
    zpoints = list(zip(*(v for _, v in sweep.zip))) if sweep.zip else [()]
    gkeys = [k for k, _ in sweep.grid]
    gpoints = list(itertools.product(*(v for _, v in sweep.grid)))
    runs, seen, checked = [], set(), set()
    for zp in zpoints:
        for gp in gpoints:
            point = tuple(zip(zkeys, zp)) + tuple(zip(gkeys, gp))
            where = ", ".join(f"{k}={v!r}" for k, v in point) or "base"
            cfg = _apply(base, point, f"point {where} of {sweep.source}")
            if KINDS[sweep.kind].role == "student":
                cfg = _resolve_teacher(cfg, f"point {where} of {sweep.source}", sweep.kind)
            _check_inputs(cfg, f"point {where} of {sweep.source}", checked)
            for seed_point, one in _single_seed_configs(sweep.kind, cfg):
                h = config_hash(one)
                if h in seen:
                    continue
                seen.add(h)
                kept = tuple((k, v) for k, v in point if k not in ("seeds", "teacher.seeds", "student.seeds"))
                runs.append(RunSpec(sweep.kind, one, h, kept + seed_point))
    return runs


# ---------------------------------------------------------------- running

@dataclass(frozen=True)
class SweepOutcome:
    """What :func:`run_sweep` did: run hashes skipped (finished before, or by another worker meanwhile),
    trained now, failed, and busy (claimed by another live worker, left alone)."""

    out: str
    total: int
    skipped: tuple[str, ...]
    done: tuple[str, ...]
    failed: tuple[str, ...]
    busy: tuple[str, ...]  # runs that another live process holds (left alone)
    groups: int

    def rows(self) -> list[dict]:
        return [{"out": self.out, "runs": self.total, "already_done": len(self.skipped), "done_now": len(self.done),
                 "failed": len(self.failed), "busy": len(self.busy), "groups_run": self.groups}]


def run_sweep(sweep, out, *, backend: str = "local", address: str | None = None, progress: bool = True,
              gpu_fraction: float = 1.0, cpus_per_group: float = 1.0, allow_thread_change: bool = False) -> SweepOutcome:
    """Expand ``sweep`` (a :class:`Sweep` or a file path), skip finished runs, train the rest.
    ``allow_thread_change``: a killed group may resume under another CPU thread count.

    Every point is validated (:func:`expand`) before anything is written. ``backend="local"`` trains
    the groups one after another in this process; ``"ray"`` submits one Ray task per group to the
    cluster at ``address`` (see :mod:`experiments.sweep_ray`). Each group is claimed before it
    trains (:func:`experiments.sweep_exec.execute_group`): runs claimed by another live worker are
    left alone and reported busy, and the local backend looks once more at its busy groups at the
    end (their workers may have finished or died meanwhile). Failed groups write ``error.json``
    into their runs and the sweep goes on.

    ``progress``: a runs bar that moves as each run finishes and, with the local backend, each
    program's step bar below it (plain lines on stderr when it is not a terminal:
    :class:`infra.runloop.Progress`). Finished runs found are logged ("N of M runs finished (not
    retrained)"), and a group resumed from its checkpoints logs "resuming from step N".
    """
    from infra import store
    from infra.runloop import Progress
    from .sweep_exec import execute_group, write_manifest

    if backend not in ("local", "ray"):
        raise ParameterError(f"backend must be 'local' or 'ray', got {backend!r}")
    if address is not None and backend != "ray":
        raise ParameterError("address is the Ray cluster's address; it needs backend='ray' (--backend ray)")
    if not isinstance(sweep, Sweep):
        sweep = load_sweep(sweep)
    out = Path(out).resolve()
    runs = expand(sweep)
    write_manifest(out, sweep, runs)
    skipped, busy, todo = [], [], []
    for spec in runs:
        state = store.run_state(out / spec.hash)
        (skipped if state == "done" else busy if state == "running" else todo).append(spec)
    skipped, busy = [s.hash for s in skipped], [s.hash for s in busy]
    groups = group_runs(todo)
    store.clean_work(out, keep={g.id for g in groups})
    if skipped:
        log.info("%d of %d runs finished (not retrained): %s", len(skipped), len(runs), out)
    bar = Progress(len(runs), initial=len(skipped), desc=f"sweep {sweep.kind}", unit="run", enabled=progress,
                   leave=True)
    done, failed, busy_in = [], [], {}  # busy_in: group id -> its runs found claimed by another worker
    seen = set(skipped)  # runs counted by the bar

    def on_run(run_hash: str) -> None:  # a run's summary.json was just written (local backend)
        seen.add(run_hash)
        bar.update_to(len(seen), failed=len(failed) or None)

    def on_done(result: dict) -> None:
        done.extend(result["done"])
        failed.extend(result["failed"])
        skipped.extend(result.get("skipped", ()))
        busy_in[result["group"]] = list(result.get("busy", ()))
        seen.update(done, failed, skipped)
        bar.update_to(len(seen), failed=len(failed) or None)

    try:
        if backend == "local":
            kw = {"allow_thread_change": allow_thread_change, "progress": progress, "on_run": on_run}
            for g in groups:
                on_done(execute_group(g, out, **kw))
            for g in [g for g in groups if busy_in.get(g.id)]:  # a second look at the busy groups
                on_done(execute_group(g, out, **kw))
        else:
            from .sweep_ray import run_groups_ray

            run_groups_ray(groups, out, address=address, gpu_fraction=gpu_fraction, cpus_per_group=cpus_per_group,
                           on_done=on_done, allow_thread_change=allow_thread_change)
    finally:
        bar.close()
        store.clean_work(out)
    busy = [*busy, *(h for hs in busy_in.values() for h in hs)]
    finished = [h for h in busy if (out / h / store.SUMMARY).is_file()]  # finished by their worker meanwhile
    return SweepOutcome(str(out), len(runs), tuple(dict.fromkeys(skipped + finished)), tuple(done), tuple(failed),
                        tuple(h for h in busy if h not in finished), len(groups))
