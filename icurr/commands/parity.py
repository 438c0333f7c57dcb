"""``icurr parity``: teachers, students and strategy comparisons on sparse parity (MLPs)."""
from __future__ import annotations

import argparse

from ..output import FORMATS, emit

_EPILOG = "Fields are changed with key=value words (e.g. width=1000 lr=0.01 seeds=0,1,2); unknown keys raise."


def _common(p: argparse.ArgumentParser, default_out: str) -> None:
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    p.add_argument("--out", default=None, help=f"output directory (default: {default_out})")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None, help="overrides device=")
    p.add_argument("--preset", choices=("paper",), default=None, help="start from a named preset")
    p.add_argument("--format", choices=FORMATS, default="table")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument("--show-config", action="store_true", help="print the resolved config and exit")


def register(subparsers) -> None:
    p = subparsers.add_parser("parity", help="sparse parity with MLPs: teacher, student, compare")
    sub = p.add_subparsers(dest="parity_command", metavar="SUBCOMMAND", parser_class=type(p), required=True)
    t = sub.add_parser("teacher", help="train a teacher (saves checkpoints and metrics)", epilog=_EPILOG)
    _common(t, "runs/<config hash>")
    t.set_defaults(handler=_teacher)
    s = sub.add_parser("student", help="train students of a saved teacher", epilog=_EPILOG)
    s.add_argument("--teacher", required=True, help="teacher run directory")
    s.add_argument("--strategy", default=None,
                   choices=("ce", "oneshot", "progressive", "two-shot", "equal-split"), help="overrides strategy=")
    _common(s, "runs/<config hash>")
    s.set_defaults(handler=_student)
    c = sub.add_parser("compare", help="train one teacher and a student per strategy; one row per strategy",
                       epilog=_EPILOG + " Use teacher.FIELD=... and student.FIELD=...")
    _common(c, "runs/compare-<config hash>")
    c.set_defaults(handler=_compare)


def _resolve(cls, args, extra=None, section=None):
    """The config: ``cls()``, then the preset (its ``section``, or all sections of a compare config
    when ``section`` is None), ``extra``, the KEY=VALUE words, and ``--device``."""
    from icurr.config import apply_overrides, config_to_dict
    from simulate.config import PRESETS

    sections = ("teacher", "student") if section is None else None
    cfg = cls()
    if args.preset:
        preset = PRESETS[args.preset]
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


def _runs_rows(rd) -> list[dict]:
    summary = rd.read_json("summary.json")
    keep = ("run", "seed", "samples_to_60", "samples_to_95", "samples_to_99", "final_accuracy",
            "corr1_gap_peak", "corr1_gap_peak_step")
    return [{k: r.get(k) for k in keep} for r in summary["runs"]]


def _teacher(args) -> None:
    from icurr.config import config_hash
    from simulate.config import TeacherConfig
    from simulate.teacher import train_teacher

    cfg = _resolve(TeacherConfig, args, section="teacher")
    if cfg is None:
        return
    rd = train_teacher(cfg, args.out or f"runs/{config_hash(cfg)}", progress=not args.no_progress)
    emit(_runs_rows(rd), args.format, title=f"# teacher: {rd.path}" if args.format == "table" else None)


def _student(args) -> None:
    from icurr.config import config_hash
    from simulate.config import StudentConfig
    from simulate.student import train_student

    extra = {"teacher": args.teacher}
    if args.strategy:
        extra["strategy"] = args.strategy
    cfg = _resolve(StudentConfig, args, extra, section="student")
    if cfg is None:
        return
    rd = train_student(cfg, args.out or f"runs/{config_hash(cfg)}", progress=not args.no_progress)
    emit(_runs_rows(rd), args.format, title=f"# students ({cfg.strategy}): {rd.path}" if args.format == "table" else None)


def _compare(args) -> None:
    from icurr.config import config_hash
    from simulate.compare import run_compare
    from simulate.config import CompareConfig

    cfg = _resolve(CompareConfig, args)
    if cfg is None:
        return
    rows = run_compare(cfg, args.out or f"runs/compare-{config_hash(cfg)}", progress=not args.no_progress)
    emit(rows, args.format)
