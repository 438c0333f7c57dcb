"""Pieces shared by the training subcommands: common options and config resolution."""
from __future__ import annotations

import argparse

EPILOG = "Fields are changed with key=value words (e.g. width=1000 lr=0.01 seeds=0,1,2); unknown keys raise."


def add_common(p: argparse.ArgumentParser, default_out: str, presets=("paper",)) -> None:
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    p.add_argument("--out", default=None, help=f"output directory (default: {default_out})")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None, help="overrides device=")
    p.add_argument("--preset", choices=tuple(presets), default=None, help="start from a named preset")
    from ..output import FORMATS

    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--show-config", action="store_true", help="print the resolved config and exit")


def resolve_config(cls, args, presets, extra=None, section=None):
    """The config: ``cls()``, then the preset ``presets[args.preset]`` (its ``section``, or all
    sections of a compare config when ``section`` is None), ``extra``, the KEY=VALUE words, and
    ``--device``. Returns None after printing it when ``--show-config`` is given."""
    from infra.config import apply_overrides, config_to_dict

    sections = ("teacher", "student") if section is None else None
    cfg = cls()
    if args.preset:
        preset = presets[args.preset]
        words = preset[section] if section else {f"{sec}.{k}": v for sec, kv in preset.items() for k, v in kv.items()}
        cfg = apply_overrides(cfg, words)
    cfg = apply_overrides(cfg, dict(extra or {}))
    cfg = apply_overrides(cfg, args.overrides)
    if args.device:
        dev = {f"{s}.device": args.device for s in sections} if sections else {"device": args.device}
        cfg = apply_overrides(cfg, dev)
    if args.show_config:
        import json

        print(json.dumps(config_to_dict(cfg), indent=2))
        return None
    return cfg
