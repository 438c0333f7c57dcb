"""``icurr <family> teacher|student|compare`` for every family of :mod:`experiments.registry`
(``parity``, ``parity-two-stage``, ``pcfg``, ``parity-transformer``, ``text``): one parser builder and one
handler.

A family's own tools (``icurr pcfg stats|probe|optimal``, ``icurr text corpus``) are added by the
modules named in :data:`FAMILY_TOOLS`.

``--out`` naming a run of another config is refused (exit 2, the first differing field named) unless
``--overwrite``; a finished run of the same config is shown, not retrained ("finished (not
retrained): DIR" on stderr); an unfinished one resumes ("resuming from step N: DIR"), under the CPU
thread count it was trained with unless ``--allow-thread-change``. A run whose loss or parameters
became non-finite is reported on stderr when it diverges ("diverged at step N: ..."); the command
still exits 0 (the run is finished: its summary records ``diverged`` and each run's ``diverged_at``,
shown as a column of the table).
"""
from __future__ import annotations

import importlib

from experiments.registry import FAMILIES, family_kinds, presets
from infra.schedule import STRATEGIES
from simulate.two_stage_config import SUPERVISIONS

from ..output import FORMATS, emit, library_messages

EPILOG = ("Fields are changed with key=value words (e.g. width=1000 lr=0.01 seeds=0,1,2 or seeds=[0,1,2]); unknown "
          "keys raise with the closest known ones. Order: defaults, --preset, --config, the option flags, key=value "
          "words.{follow} Every field with its type, range and comment: icurr config show {kind}.")
FOLLOW = (" Changing steps moves the intervals that were following it (eval_every, checkpoint_every, ...) unless "
          "they are given.")
_HELP = {"teacher": "train a teacher (saves checkpoints and metrics)",
         "student": "train students of a saved teacher",
         "compare": "train one teacher and a student per strategy; one row per strategy"}
#: The values of each kind's varied student field (Kind.choice): --strategy / --supervision.
_CHOICES = {"strategy": STRATEGIES, "supervision": SUPERVISIONS}
#: Family tools: module with ``register(family_subparsers)``.
FAMILY_TOOLS = {"pcfg": "icurr.commands.pcfg_tools", "text": "icurr.commands.text_tools"}


def register(subparsers) -> None:
    for family in FAMILIES:
        kinds = family_kinds(family)
        about = kinds["teacher"].description
        p = subparsers.add_parser(family, help=about, description=about)
        sub = p.add_subparsers(dest=f"{family}_command", metavar="SUBCOMMAND", parser_class=type(p), required=True)
        for role, kind in kinds.items():
            follow = FOLLOW if family != "parity-two-stage" else ""  # its T2 has eval_every=0 (T2 // 20)
            epilog = EPILOG.format(kind=kind.name, follow=follow) + (" Use teacher.FIELD=... and student.FIELD=..."
                                                                     if role == "compare" else "")
            s = sub.add_parser(role, help=_HELP[role], description=f"{_HELP[role]} ({kind.name})", epilog=epilog)
            s.help_extra = _field_list(kind)
            s.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
            if role == "student":
                s.add_argument("--teacher", default=None, help="teacher run directory (overrides teacher=)")
                s.add_argument(f"--{kind.choice}", default=None, choices=_CHOICES[kind.choice],
                               help=f"overrides {kind.choice}=")
            for flag, field, help_ in kind.options:
                s.add_argument(flag, default=None, help=f"overrides {field}=: {help_}")
            default_out = "runs/compare-<config hash>" if role == "compare" else "runs/<config hash>"
            s.add_argument("--out", default=None, help=f"output directory (default: {default_out})")
            s.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None, help="overrides device=")
            s.add_argument("--preset", choices=tuple(presets(family)), default=None,
                           help=f"start from a named preset (experiments/sweeps/presets/{family}.yaml; tiny: a run "
                                "of seconds)")
            s.add_argument("--config", default=None, metavar="FILE.yaml",
                           help="fields from a YAML file, as a sweep's base: {field: value}"
                                + (", teacher.FIELD / student.FIELD or nested teacher: {...}" if role == "compare"
                                   else ""))
            s.add_argument("--format", choices=FORMATS, default="table")
            s.add_argument("--no-progress", action="store_true", help="hide the progress bar")
            s.add_argument("--overwrite", action="store_true",
                           help="replace what --out holds (a run of another config, or a finished one) and train anew")
            s.add_argument("--allow-thread-change", action="store_true",
                           help="resume a run under another CPU thread count than it was trained with "
                                "(its numbers then differ from an unkilled run's)")
            s.add_argument("--show-config", action="store_true", help="print the resolved config and exit")
            s.set_defaults(handler=_run, kind=kind.name)
        if family in FAMILY_TOOLS:
            importlib.import_module(FAMILY_TOOLS[family]).register(sub)


def _field_list(kind):
    """The ``--help`` text listing ``kind``'s fields and defaults (read from the source, not imported)."""

    def text() -> str:
        from experiments.registry import field_defaults

        if kind.role == "compare":
            fields = [f"{n}.FIELD (icurr config show {kind.family_kind(n).name})" if n in ("teacher", "student")
                      else f"{n}={d}" if d else n for n, d in field_defaults(kind)]
        else:
            fields = [f"{n}={d}" if d else n for n, d in field_defaults(kind)]
        return f"Fields and defaults: {', '.join(fields)}."

    return text


def config_file_words(path) -> dict[str, str]:
    """The ``key=value`` words of a ``--config`` YAML file: a mapping of fields as a sweep's ``base``
    (nested mappings give dotted keys, lists as lists), read by the sweep's own parser."""
    from pathlib import Path

    from experiments.sweep import flatten_mapping
    from infra.config import value_text
    from infra.yamlfile import load_yaml
    from theory._checks import ParameterError

    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"--config {str(path)!r} is not a file")
    data = load_yaml(path.read_text(encoding="utf-8"), f"config file {path}")
    return {key: value_text(key, value) for key, value in flatten_mapping(data or {}, f"config file {path}").items()}


def resolve_config(kind, args):
    """``kind``'s config: the defaults, then ``--preset``, ``--config FILE``, the option flags
    (``--teacher``, ``--strategy``, the kind's own options), the KEY=VALUE words and ``--device``, in
    that order."""
    from experiments.registry import preset_words
    from infra.config import apply_overrides
    from theory._checks import ParameterError

    cfg = kind.config_class()()
    if args.preset:
        cfg = apply_overrides(cfg, preset_words(kind, args.preset))
    if getattr(args, "config", None):
        try:
            cfg = apply_overrides(cfg, config_file_words(args.config))
        except ParameterError as exc:
            raise ParameterError(f"{exc} (--config {args.config})") from None
    extra = {}
    if kind.role == "student":
        if args.teacher is not None:
            extra["teacher"] = args.teacher
        if getattr(args, kind.choice):
            extra[kind.choice] = getattr(args, kind.choice)
    for flag, field, _ in kind.options:
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if value is not None:
            extra[field] = value
    cfg = apply_overrides(cfg, extra)
    cfg = apply_overrides(cfg, args.overrides)
    if args.device:
        sections = ("teacher", "student") if kind.role == "compare" else ("",)
        cfg = apply_overrides(cfg, {f"{s}.device" if s else "device": args.device for s in sections})
    return cfg


def _rows(rd) -> list[dict]:
    """The per-run rows of a teacher or student run's ``summary.json`` (steps_to_* left out: the
    samples_to_* columns say the same at batch size 1; ``diverged_at`` only when a run diverged)."""
    runs = rd.read_json("summary.json")["runs"]
    drop = not any(r.get("diverged_at") is not None for r in runs)
    return [{k: v for k, v in r.items() if not k.startswith("steps_to") and not (drop and k == "diverged_at")}
            for r in runs]


def _run(args) -> None:
    import json

    from experiments.registry import get_kind
    from infra.config import config_hash, config_to_dict

    kind = get_kind(args.kind)
    cfg = resolve_config(kind, args)
    if args.show_config:
        print(json.dumps(config_to_dict(cfg), indent=2))
        return
    prefix = "compare-" if kind.role == "compare" else ""
    out = args.out or f"runs/{prefix}{config_hash(cfg)}"
    with library_messages():
        result = kind.train()(cfg, out, progress=not args.no_progress, overwrite=args.overwrite,
                              allow_thread_change=args.allow_thread_change)
    if kind.role == "compare":
        emit(result, args.format)
        return
    what = "teacher" if kind.role == "teacher" else f"students ({getattr(cfg, kind.choice)})"
    emit(_rows(result), args.format, title=f"# {kind.family} {what}: {result.path}" if args.format == "table" else None)
