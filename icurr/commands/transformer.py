"""``icurr pcfg`` and ``icurr parity-transformer``: Transformer teachers, students and comparisons.

``icurr pcfg teacher|student|compare|probe|stats`` (BERT masked prediction or GPT next-token on a
PCFG, Section 4.1 and Appendices D-E) and ``icurr parity-transformer teacher|student|compare``
(sparse parity as a token sequence, Appendix C.2), with the conventions of ``icurr parity``.
"""
from __future__ import annotations

from ..output import FORMATS, emit
from ._shared import EPILOG, add_common, resolve_config

_STRATEGIES = ("ce", "oneshot", "progressive", "two-shot", "equal-split")
_KINDS = {
    "pcfg": ("PcfgTeacherConfig", "PcfgStudentConfig", "PcfgCompareConfig"),
    "parity-transformer": ("ParityTransformerTeacherConfig", "ParityTransformerStudentConfig",
                           "ParityTransformerCompareConfig"),
}
_HELP = {
    "pcfg": "Transformers on PCFGs (BERT masked LM / GPT next-token): teacher, student, compare, probe, stats",
    "parity-transformer": "Transformers on sparse parity: teacher, student, compare",
}
_GRAMMAR_HELP = ("a grammar name (looked up as NAME.json in $ICURR_GRAMMAR_PATH, then ../shared/data/pcfg), "
                 "a JSON path, or random:levels=L,seed=S")


def register(subparsers) -> None:
    for kind in _KINDS:
        p = subparsers.add_parser(kind, help=_HELP[kind], description=_HELP[kind])
        sub = p.add_subparsers(dest=f"{kind}_command", metavar="SUBCOMMAND", parser_class=type(p), required=True)
        t = sub.add_parser("teacher", help="train a teacher (checkpoints, metrics, measures)", epilog=EPILOG)
        add_common(t, "runs/<config hash>")
        if kind == "pcfg":
            t.add_argument("--grammar", default=None, help=f"overrides grammar=: {_GRAMMAR_HELP}")
        t.set_defaults(handler=_teacher, kind=kind)
        s = sub.add_parser("student", help="train students of a saved teacher", epilog=EPILOG)
        s.add_argument("--teacher", required=True, help="teacher run directory")
        s.add_argument("--strategy", default=None, choices=_STRATEGIES, help="overrides strategy=")
        add_common(s, "runs/<config hash>")
        s.set_defaults(handler=_student, kind=kind)
        c = sub.add_parser("compare", help="train one teacher and a student per strategy; one row per strategy",
                           epilog=EPILOG + " Use teacher.FIELD=... and student.FIELD=...")
        add_common(c, "runs/compare-<config hash>")
        if kind == "pcfg":
            c.add_argument("--grammar", default=None, help=f"overrides teacher.grammar=: {_GRAMMAR_HELP}")
        c.set_defaults(handler=_compare, kind=kind)
        if kind == "pcfg":
            _register_pcfg_tools(sub)


def _register_pcfg_tools(sub) -> None:
    st = sub.add_parser("stats", help="sentence-length percentiles and non-terminal counts of a grammar")
    st.add_argument("--grammar", default="cfg3b", help=_GRAMMAR_HELP)
    st.add_argument("--samples", type=int, default=10000, help="sentences to sample (default 10000)")
    st.add_argument("--seed", type=int, default=0)
    st.add_argument("--format", choices=FORMATS, default="table")
    st.set_defaults(handler=_stats)
    pr = sub.add_parser("probe", help="n-gram measures and non-terminal probes of a saved run's checkpoints",
                        epilog="KEY=VALUE words change the probe settings of the run's config "
                               "(measure_positions, probe_train, probe_test, probe_steps, eval_size).")
    pr.add_argument("run", help="a PCFG run directory (teacher or student) with checkpoints")
    pr.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    pr.add_argument("--steps", default="all", help="checkpoint steps, comma-separated, or 'all' (default)")
    pr.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None)
    pr.add_argument("--format", choices=FORMATS, default="table")
    pr.set_defaults(handler=_probe)


def _configs(kind):
    import distill.config as C

    return tuple(getattr(C, name) for name in _KINDS[kind]), C.PRESETS[kind]


def _runs_rows(rd) -> list[dict]:
    summary = rd.read_json("summary.json")
    return [{k: v for k, v in r.items() if not k.startswith("steps_to")} for r in summary["runs"]]


def _teacher(args) -> None:
    from icurr.config import config_hash
    from distill.runs import train_teacher

    (tcls, _, _), presets = _configs(args.kind)
    extra = {"grammar": args.grammar} if getattr(args, "grammar", None) else None
    cfg = resolve_config(tcls, args, presets, extra, section="teacher")
    if cfg is None:
        return
    rd = train_teacher(cfg, args.out or f"runs/{config_hash(cfg)}", progress=not args.no_progress)
    emit(_runs_rows(rd), args.format, title=f"# teacher: {rd.path}" if args.format == "table" else None)


def _student(args) -> None:
    from icurr.config import config_hash
    from distill.runs import train_student

    (_, scls, _), presets = _configs(args.kind)
    extra = {"teacher": args.teacher}
    if args.strategy:
        extra["strategy"] = args.strategy
    cfg = resolve_config(scls, args, presets, extra, section="student")
    if cfg is None:
        return
    rd = train_student(cfg, args.out or f"runs/{config_hash(cfg)}", progress=not args.no_progress)
    emit(_runs_rows(rd), args.format, title=f"# students ({cfg.strategy}): {rd.path}" if args.format == "table" else None)


def _compare(args) -> None:
    from icurr.config import config_hash
    from distill.runs import run_compare

    (_, _, ccls), presets = _configs(args.kind)
    extra = {"teacher.grammar": args.grammar} if getattr(args, "grammar", None) else None
    cfg = resolve_config(ccls, args, presets, extra)
    if cfg is None:
        return
    rows = run_compare(cfg, args.out or f"runs/compare-{config_hash(cfg)}", progress=not args.no_progress)
    emit(rows, args.format)


def _stats(args) -> None:
    import torch

    from distill.grammar import load_grammar
    from distill.sampler import length_stats
    from theory._checks import check_int

    samples = check_int("samples", args.samples, 1, 10_000_000)
    grammar = load_grammar(args.grammar)
    stats = length_stats(grammar, samples, generator=torch.Generator().manual_seed(check_int("seed", args.seed, 0)))
    if args.format == "json":
        emit(stats, "json", single=True)
        return
    pct = stats["length_percentiles"]
    emit([{"grammar": stats["grammar"], "samples": stats["samples"], **{f"p{k}": v for k, v in pct.items()}}],
         args.format, title="# sentence lengths" if args.format == "table" else None)
    rows = [{"level": lv["level"], "nonterminal": nt, "count": n}
            for lv in stats["levels"] for nt, n in lv["counts"].items()]
    emit(rows, args.format, title="# non-terminal nodes per level" if args.format == "table" else None)


def _probe(args) -> None:
    from distill.probe_runs import probe_run

    rows = probe_run(args.run, steps=args.steps, overrides=args.overrides, device=args.device)
    emit(rows, args.format)
