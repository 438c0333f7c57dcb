"""``icurr config list`` and ``icurr config show KIND``: the experiment kinds, and every field of a
kind's config with its type, default, allowed range and the comment it carries in the source
(:func:`experiments.registry.field_docs`)."""
from __future__ import annotations

import textwrap

from ..output import FORMATS, emit

#: The note on intervals that follow ``steps`` (:func:`infra.overrides.follow_steps`), shown under kinds
#: that have them.
FOLLOW_NOTE = ("Intervals follow steps: when steps is changed (steps=2000; teacher.steps / student.steps in a "
               "compare), eval_every = max(1, round(default eval_every * steps / default steps)) and "
               "checkpoint_every / probe_every / measure_every the same multiple of eval_every as at the defaults "
               "(0 stays 0), all clipped to <= steps, unless given in the same overrides or set before to another "
               "value.")


def register(subparsers) -> None:
    p = subparsers.add_parser("config", help="the experiment kinds and their config fields (types, defaults, ranges)",
                              description="The config of every experiment kind: its fields with type, default, "
                                          "allowed range and comment. Set fields with KEY=VALUE words, "
                                          "--config FILE.yaml or --preset NAME on icurr <family> "
                                          "teacher|student|compare.")
    sub = p.add_subparsers(dest="config_command", metavar="SUBCOMMAND", parser_class=type(p), required=True)
    ls = sub.add_parser("list", help="every experiment kind: its command, config class and presets")
    ls.add_argument("--format", choices=FORMATS, default="table")
    ls.set_defaults(handler=_list)
    show = sub.add_parser("show", help="every field of a kind's config: type, default, range and comment",
                          description="Every field of the config of KIND (teacher, student, compare, pcfg-teacher, "
                                      "...: see icurr config list), read from the config class itself.",
                          epilog="A preset's values: icurr <family> <role> --preset NAME --show-config.")
    show.add_argument("kind", metavar="KIND", help="experiment kind (icurr config list), e.g. teacher or pcfg-compare")
    show.add_argument("--format", choices=FORMATS, default="table")
    show.set_defaults(handler=_show)


def _list(args) -> None:
    from experiments.registry import KINDS, presets

    rows = [{"kind": k.name, "command": f"icurr {k.family} {k.role}",
             "config": k.config_path.replace(":", "."), "presets": ", ".join(presets(k.family)) or "-"}
            for k in KINDS.values()]
    emit(rows, args.format)


def _show(args) -> None:
    from experiments.registry import field_docs, get_kind, presets

    kind = get_kind(args.kind)
    doc, rows = field_docs(kind)
    if args.format != "table":
        emit(rows, args.format)
        return
    width = max(len(r["field"]) for r in rows)
    first = " ".join(doc.split("\n\n")[0].split())
    out = [f"{kind.name} (icurr {kind.family} {kind.role}; {kind.config_path.replace(':', '.')}): {first}",
           f"Set fields with KEY=VALUE words, --config FILE.yaml, or --preset "
           f"{' | '.join(presets(kind.family)) or '(none)'}; lists as 0,1,2 or [0,1,2].", ""]
    for r in rows:
        rng = "" if r["range"] == "-" else f"  range {r['range']}"
        out.append(f"{r['field'].ljust(width)}  {r['type']} = {r['default']}{rng}")
        if r["help"]:
            out += textwrap.wrap(r["help"], 100, initial_indent="    ", subsequent_indent="    ")
    if any(r["field"].rpartition(".")[2] == "eval_every" for r in rows) and \
            any(r["field"].rpartition(".")[2] == "steps" for r in rows):
        out += [""] + textwrap.wrap(FOLLOW_NOTE, 104)
    print("\n".join(out))
