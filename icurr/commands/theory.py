"""``icurr theory``: exact Fourier coefficients, the Fourier gap, Claim B.3 and the bounds."""
from __future__ import annotations

import argparse
from decimal import Decimal, InvalidOperation
from fractions import Fraction

from theory._checks import ParameterError, check_int, check_real

from ..output import FORMATS, emit


#: The largest integer argument (2^53 - 1), the largest n or d (the float path's: 10^9) and the largest
#: decimal exponent of a real argument.
_MAX_INT = 2**53 - 1
MAX_FLOAT_N = 10**9  # theory.fourier.MAX_FLOAT_N (not imported: it pulls in scipy)
_MAX_EXPONENT = 300


def _ints(name: str, text: str, lo: int = 1, hi: int = _MAX_INT) -> list[int]:
    """A comma-separated list of integers in ``[lo, hi]`` (digits, or an exact integer such as ``1e6``)."""
    from infra.config import parse_int

    out = []
    for part in str(text).split(","):
        try:
            value = parse_int(name, part.strip())
        except ParameterError:
            raise ParameterError(f"{name} must be an integer >= {lo} (or a comma-separated list), got {text!r}") from None
        out.append(check_int(name, value, lo, hi))
    return out


def _real(name: str, text: str) -> Fraction:
    """A real number, exactly: a decimal (``0.5``, ``1e-3``) or a fraction ``p/q``, of magnitude between
    1e-300 and 1e300 (or 0)."""
    parts = str(text).strip().split("/")
    try:
        decs = [Decimal(x.strip()) for x in parts]
        if len(decs) > 2 or not all(d.is_finite() for d in decs) or (len(decs) == 2 and decs[1] == 0):
            raise InvalidOperation
    except InvalidOperation:
        raise ParameterError(f"{name} must be a real number (e.g. 0.5 or 1/3), got {text!r}") from None
    if any(d != 0 and abs(d.adjusted()) > _MAX_EXPONENT for d in decs):
        raise ParameterError(f"{name} must be 0 or between 1e-{_MAX_EXPONENT} and 1e{_MAX_EXPONENT} in magnitude, "
                             f"got {text!r}")
    value = Fraction(decs[0])
    return value / Fraction(decs[1]) if len(decs) == 2 else value


def _add_format(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "theory", help="exact theory: Fourier coefficients, gap, Claim B.3, bounds (no torch)",
        description="Without a subcommand: print the summary tables.",
    )
    _add_format(p)
    p.set_defaults(handler=_summary)
    sub = p.add_subparsers(dest="theory_command", metavar="SUBCOMMAND", parser_class=type(p))

    f = sub.add_parser("fourier", help="one Fourier coefficient of Majority or a threshold neuron")
    f.add_argument("--fn", choices=("majority", "threshold"), default="majority",
                   help="majority: Maj_n (ties to --tie for even n); threshold: x -> 1[sum_j x_j + bias >= 0]")
    f.add_argument("--n", required=True, help="number of input bits, n >= 1")
    f.add_argument("--degree", required=True, help="size of the set S, 0 <= degree <= n")
    f.add_argument("--bias", default="0", help="threshold bias b (any real, e.g. 0.5 or 1/3); --fn threshold only")
    f.add_argument("--tie", type=int, choices=(1, -1, 0), default=1,
                   help="Majority's value on ties (even n): 1 or -1 (as a ReLU neuron breaks them), or 0 "
                        "(sign(0) = 0, the paper's Maj)")
    f.add_argument("--exact", action="store_true", help="also print the exact rational value p/q")
    _add_format(f)
    f.set_defaults(handler=_fourier)

    g = sub.add_parser("gap", help="Fourier gap |zeta_(k-1)| - |zeta_(k+1)| vs the paper's bound")
    g.add_argument("--d", required=True, help="input dimension(s), comma-separated")
    g.add_argument("--k", required=True, help="parity degree(s) k, 1 <= k <= d - 1")
    _add_format(g)
    g.set_defaults(handler=_gap)

    r = sub.add_parser("gradient", help="Claim B.3: population gradient of a neuron at symmetric init")
    r.add_argument("--d", required=True, help="input dimension d >= 2")
    r.add_argument("--k", required=True, help="parity degree, 1 <= k <= d - 1")
    r.add_argument("--bias", default="0", help="the neuron's bias b (paper's grid: -1+1/k, ..., 1-1/k)")
    r.add_argument("--relu-grad-at-zero", type=int, choices=(0, 1), default=1,
                   help="ReLU'(0): 1 is the paper's 1[z >= 0], 0 is PyTorch's")
    _add_format(r)
    r.set_defaults(handler=_gradient)

    b = sub.add_parser("bounds", help="sample-complexity bounds of Appendix B, with their d-exponents")
    b.add_argument("--d", default="20,50,100", help="input dimension(s), comma-separated")
    b.add_argument("--k", default="2,4,6", help="parity degree(s), comma-separated")
    b.add_argument("--eps", default="0.01", help="target loss, in (0, 1)")
    b.add_argument("--delta", default="0.01", help="failure probability, in (0, 1)")
    b.add_argument("--c", default="1", help="teacher loss O(d^-c) for the one-shot lower bound, c > 0")
    b.add_argument("--tau", default="0.1", help="gradient tolerance for Lemma B.10 and the SQ bound, in (0, 1)")
    b.add_argument("--width", default=None, help="width m for Lemma B.10 (default 2^k k)")
    _add_format(b)
    b.set_defaults(handler=_bounds)

    e = sub.add_parser("errata", help="print theory/ERRATA.md as computed by the code (--write PATH to write it)")
    e.add_argument("--write", metavar="PATH", default=None,
                   help="write it to PATH instead of printing it (the repository's copy: theory/ERRATA.md)")
    e.set_defaults(handler=_errata)


def _summary(args) -> None:
    from theory.tables import summary

    tables = summary()
    if args.format == "json":
        import json

        print(json.dumps(tables, indent=2))
        return
    for title, rows in tables.items():
        emit(rows, args.format, title=f"# {title}" if args.format == "table" else None)
        print()


def _fourier(args) -> None:
    from theory.tables import fourier_row

    (n,) = _ints("n", args.n, 1, MAX_FLOAT_N)
    (degree,) = _ints("degree", args.degree, 0)
    check_int("degree", degree, 0, n)
    bias = _real("bias", args.bias)
    emit(fourier_row(args.fn, n, degree, exact=args.exact, bias=bias, tie=args.tie), args.format, single=True)


def _pairs(args) -> list[tuple[int, int]]:
    ds, ks = _ints("d", args.d, 2, MAX_FLOAT_N), _ints("k", args.k, 1)
    for d in ds:
        for k in ks:
            check_int("k", k, 1, d - 1)  # k must be below every d, checked before any work
    return [(d, k) for d in ds for k in ks]


def _gap(args) -> None:
    from theory.gap import fourier_gap

    rows = [fourier_gap(d, k) for d, k in _pairs(args)]
    emit(rows, args.format, single=True)


def _gradient(args) -> None:
    from theory.tables import gradient_row

    pairs = _pairs(args)
    if len(pairs) != 1:
        raise ParameterError("gradient takes a single --d and a single --k")
    (d, k), = pairs
    emit(gradient_row(d, k, _real("bias", args.bias), relu_grad_at_zero=args.relu_grad_at_zero),
         args.format, single=True)


def _bounds(args) -> None:
    from theory.tables import bounds_rows

    pairs = _pairs(args)
    eps, delta = (float(_real(n, v)) for n, v in (("eps", args.eps), ("delta", args.delta)))
    check_real("eps", eps, 0, 1, lo_open=True, hi_open=True)
    check_real("delta", delta, 0, 1, lo_open=True, hi_open=True)
    c = float(check_real("c", _real("c", args.c), 0, lo_open=True))
    tau = float(check_real("tau", _real("tau", args.tau), 0, 1, lo_open=True, hi_open=True))
    width = None if args.width is None else _ints("width", args.width, 1)[0]
    rows = []
    for d, k in pairs:
        rows += bounds_rows([d], [k], eps, delta, c=c, tau=tau, width=width)
    emit(rows, args.format)


def _errata(args) -> None:
    from theory.errata import render

    text = render()
    if args.write:
        from infra.rundir import atomic_write_text

        atomic_write_text(args.write, text)
        print(f"wrote {args.write}")
    else:
        print(text, end="")
