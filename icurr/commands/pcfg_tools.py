"""``icurr pcfg stats|probe|optimal``: the PCFG family's own tools (grammar statistics, the
measures and probes of a saved run, the exact Bayes-optimal masked predictor). Its
``teacher|student|compare`` subcommands come from :mod:`icurr.commands.experiment`.

A PCFG teacher stores the grammar it trains on in its run directory (``grammar.json``, with its hash);
its students and ``icurr pcfg probe`` use that copy, not what the grammar's name resolves to from
their working directory (a name that now resolves to another grammar gets a one-line warning).

``probe`` and ``optimal`` show a progress bar on stderr (over the checkpoints, over the sentences;
plain lines when stderr is not a terminal); ``--no-progress`` hides it."""
from __future__ import annotations

from ..output import FORMATS, emit

_GRAMMAR_HELP = ("a grammar name (looked up as NAME.json in $ICURR_GRAMMAR_PATH, then ../shared/data/pcfg, then the package's copies), "
                 "a JSON path, or random:levels=L,seed=S")


def register(sub) -> None:
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
    pr.add_argument("--no-progress", action="store_true", help="hide the progress bar (over the checkpoints)")
    pr.set_defaults(handler=_probe)
    about = ("exact Bayes-optimal masked accuracy and cross-entropy of a grammar (inside-outside posteriors): "
             "the ceiling of masked-LM models")
    op = sub.add_parser("optimal", help=about, description=about + "; with standard errors over sentences, the "
                        "unigram baseline and the throughput")
    op.add_argument("--grammar", default="cfg3b", help=_GRAMMAR_HELP)
    op.add_argument("--mask-rate", type=float, default=0.3, help="probability p that a position is selected "
                                                                 "(default 0.3)")
    op.add_argument("--replacement", default="bert", help="corruption of a selected position: bert (80/10/10 "
                                                          "[mask] / random / kept, as training; default) or mask")
    op.add_argument("--samples", type=int, default=1000, help="held-out sentences to sample (default 1000)")
    op.add_argument("--seed", type=int, default=0)
    op.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    op.add_argument("--chunk", type=int, default=None, help="sentences per inside-outside chunk (default: sized "
                                                            "to the cache on CPU, to memory on CUDA)")
    op.add_argument("--format", choices=FORMATS, default="table")
    op.add_argument("--no-progress", action="store_true", help="hide the progress bar (over the sentences)")
    op.set_defaults(handler=_optimal)


def _stats(args) -> None:
    import torch

    from distill.grammar import load_grammar
    from distill.sampler import length_stats
    from theory._checks import check_int

    samples = check_int("samples", args.samples, 1, 10_000_000)
    seed = check_int("seed", args.seed, 0, 2**63 - 1)  # torch.Generator.manual_seed's range
    grammar = load_grammar(args.grammar)
    stats = length_stats(grammar, samples, generator=torch.Generator().manual_seed(seed))
    if args.format == "json":
        emit(stats, "json", single=True)
        return
    pct = stats["length_percentiles"]
    emit([{"grammar": stats["grammar"], "samples": stats["samples"], **{f"p{k}": v for k, v in pct.items()}}],
         args.format, title="# sentence lengths" if args.format == "table" else None)
    rows = [{"level": lv["level"], "nonterminal": nt, "count": n}
            for lv in stats["levels"] for nt, n in lv["counts"].items()]
    emit(rows, args.format, title="# non-terminal nodes per level" if args.format == "table" else None)


def _optimal(args) -> None:
    from distill.grammar import load_grammar
    from distill.optimal import REPLACEMENTS, grammar_ceiling
    from infra.device import resolve_device
    from theory._checks import check_choice, check_int, check_real

    rate = check_real("mask-rate", args.mask_rate, 0, 1, lo_open=True)
    check_choice("replacement", args.replacement, REPLACEMENTS)
    check_int("samples", args.samples, 2, 10_000_000)
    check_int("seed", args.seed, 0, 2**53 - 1)
    if args.chunk is not None:
        check_int("chunk", args.chunk, 1, 10_000_000)
    device = resolve_device(args.device)
    grammar = load_grammar(args.grammar)
    m, seconds = grammar_ceiling(grammar, rate=rate, samples=args.samples, seed=args.seed,
                                 replacement=args.replacement, device=device, chunk=args.chunk,
                                 progress=not args.no_progress)
    row = {"grammar": grammar.name, "mask_rate": rate, "replacement": args.replacement, "sentences": m.sentences,
           "positions": m.positions, "bayes_accuracy": m.accuracy, "bayes_accuracy_se": m.accuracy_se,
           "bayes_loss": m.loss, "bayes_loss_se": m.loss_se, "expected_accuracy": m.expected_accuracy,
           "expected_loss": m.expected_loss, "unigram_accuracy": m.unigram_accuracy, "unigram_loss": m.unigram_loss,
           "sentences_per_s": m.sentences / seconds, "device": str(device)}
    emit(row, args.format, single=True,
         title="# Bayes-optimal masked prediction (exact inside-outside posterior)" if args.format == "table" else None)


def _probe(args) -> None:
    from distill.probe_runs import probe_run

    rows = probe_run(args.run, steps=args.steps, overrides=args.overrides, device=args.device,
                     progress=not args.no_progress)
    emit(rows, args.format)
