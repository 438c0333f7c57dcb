"""The claims ledger: every numbered claim of the two papers as data (its source, its decision rule
fixed in code before any run, its experiment per tier) and the three verdicts.

A :class:`Claim` is refused at registration unless it names its source (paper, section or figure, the
line of ``../shared/papers/<file>`` and the quoted statement, which ``tests/test_claims.py`` finds on
that line) and its rule (the statistic, the decision, and when it was fixed; a rule changed after
seeing data says so in ``Rule.changed``). ``Claim.run(tier, out, progress)`` does the claim's work for
one tier (``smoke``: CI-sized; ``cpu``: the committed ``CLAIMS.md``; ``paper``: the papers' sizes, for a
GPU) below ``out`` (reusing finished runs) and returns an :class:`Outcome`: a verdict, its reason and
the numbers behind it, a table (written as the claim's CSV) and optionally a figure.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from theory._checks import ParameterError

__all__ = ["VERDICTS", "TIERS", "PAPERS", "Source", "Rule", "Outcome", "Claim", "CLAIMS", "register",
           "interval_verdict", "exact_verdict", "write_png"]

VERDICTS = ("PASS", "FAIL", "INCONCLUSIVE")
TIERS = ("smoke", "cpu", "paper")
#: The papers' text files under ../shared/papers (see its README).
PAPERS = {"progressive": "001_eef68ba6c826acd6.txt", "extraction": "003_f312e8397793c6ce.txt"}


@dataclass(frozen=True)
class Source:
    """Where a claim is made: ``paper`` (a key of :data:`PAPERS`), ``where`` (e.g. "Theorem B.1 (2)",
    "Figure 1 (left)"), ``file`` and 1-based ``line`` in ``../shared/papers``, and ``quote``: words of that
    line (whitespace-normalised), the statement the claim tests."""

    paper: str
    where: str
    file: str
    line: int
    quote: str


@dataclass(frozen=True)
class Rule:
    """The decision rule, fixed before the experiment ran: ``statistic`` (what is computed, on which runs),
    ``decision`` (when PASS, when FAIL, otherwise INCONCLUSIVE), ``fixed`` (the date it was written) and
    ``changed`` (empty, or how and why it was changed after seeing data)."""

    statistic: str
    decision: str
    fixed: str
    changed: str = ""


@dataclass
class Outcome:
    """A claim's result at one tier: ``verdict`` in :data:`VERDICTS`, ``reason`` (one sentence with the
    numbers), ``numbers`` (JSON-ready), ``table`` (a DataFrame: the claim's CSV), ``figure`` (a callable
    ``path -> None`` drawing the claim's figure, or None), ``scale`` (this tier's scale against the paper's)."""

    verdict: str
    reason: str
    numbers: dict[str, Any] = field(default_factory=dict)
    table: Any = None
    figure: Callable[[Path], None] | None = None
    scale: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ParameterError(f"verdict must be one of {', '.join(VERDICTS)}, got {self.verdict!r}")


@dataclass(frozen=True)
class Claim:
    """One claim: ``id`` (short, unique, ``[a-z0-9-]``), ``title``, ``kind`` (theory | mlp | transformer),
    its :class:`Source` and :class:`Rule`, and ``run(tier, out, progress) -> Outcome``, called with
    ``out = OUT/runs/<id>``.

    ``run_dirs``: the directories below ``OUT/runs`` that ``run`` trains into or reads (default: ``(id,)``).
    Claims sharing a directory (e.g. ``pcfg-shared``) run one after another in one worker of
    ``icurr verify --jobs N``; a claim that touches a directory it does not declare is recorded as an error
    (:mod:`.guard`), so a wrong declaration cannot let two workers train one run."""

    id: str
    title: str
    kind: str
    source: Source
    rule: Rule
    run: Callable[..., Outcome]
    run_dirs: tuple[str, ...] = ()

    @property
    def dirs(self) -> tuple[str, ...]:
        """The run directories this claim may use (:attr:`run_dirs`, else its own id)."""
        return self.run_dirs or (self.id,)


#: Every registered claim, by id, in registration order.
CLAIMS: dict[str, Claim] = {}


def register(claim: Claim) -> Claim:
    """Add ``claim`` to :data:`CLAIMS`; refused (ParameterError) without a source, a rule, or with an id taken."""
    if not claim.id or set(claim.id) - set("abcdefghijklmnopqrstuvwxyz0123456789-"):
        raise ParameterError(f"claim id must be lower-case letters, digits and '-', got {claim.id!r}")
    if claim.id in CLAIMS:
        raise ParameterError(f"claim id {claim.id!r} is registered twice")
    if not isinstance(claim.source, Source) or not (claim.source.file and claim.source.line > 0 and claim.source.quote):
        raise ParameterError(f"claim {claim.id}: a paper reference (file, line, quoted statement) is required")
    if claim.source.paper not in PAPERS:
        raise ParameterError(f"claim {claim.id}: paper must be one of {', '.join(PAPERS)}, got {claim.source.paper!r}")
    if not isinstance(claim.rule, Rule) or not (claim.rule.statistic and claim.rule.decision and claim.rule.fixed):
        raise ParameterError(f"claim {claim.id}: a decision rule (statistic, decision, date fixed) is required")
    if not isinstance(claim.run_dirs, tuple) or any(not d or set(d) - set("abcdefghijklmnopqrstuvwxyz0123456789-")
                                                    for d in claim.run_dirs):
        raise ParameterError(f"claim {claim.id}: run_dirs must be a tuple of names of [a-z0-9-], got {claim.run_dirs!r}")
    if claim.kind not in ("theory", "mlp", "transformer"):
        raise ParameterError(f"claim {claim.id}: kind must be theory, mlp or transformer, got {claim.kind!r}")
    CLAIMS[claim.id] = claim
    return claim


def interval_verdict(lo: float, hi: float, threshold: float, *, claimed: str = ">") -> tuple[str, str]:
    """The verdict of "the statistic is ``claimed`` (``>`` or ``<``) ``threshold``" from its interval
    ``[lo, hi]``: PASS when the whole interval is on the claimed side, FAIL when it is on the other side,
    INCONCLUSIVE when it straddles the threshold (or a bound is missing); with the reason."""
    if claimed not in (">", "<"):
        raise ParameterError(f"claimed must be '>' or '<', got {claimed!r}")
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in (lo, hi)):
        return "INCONCLUSIVE", f"no interval (lo={lo}, hi={hi})"
    iv = f"[{lo:.4g}, {hi:.4g}]"
    above, below = lo > threshold, hi < threshold
    if (claimed == ">" and above) or (claimed == "<" and below):
        return "PASS", f"interval {iv} lies {'above' if claimed == '>' else 'below'} {threshold:g}"
    if (claimed == ">" and hi <= threshold) or (claimed == "<" and lo >= threshold):
        return "FAIL", f"interval {iv} lies {'at or below' if claimed == '>' else 'at or above'} {threshold:g}"
    return "INCONCLUSIVE", f"interval {iv} straddles {threshold:g}"


def exact_verdict(holds: bool, why: str) -> tuple[str, str]:
    """An exact computation decides: PASS when the stated property ``holds``, FAIL otherwise."""
    return ("PASS" if holds else "FAIL"), why


def write_png(fig, path) -> None:
    """A claim's figure: tight layout, ``path`` as a PNG at 200 dpi and its PDF beside it (same stem, no
    creation date: a redraw is byte-stable), closed. The same files as ``reports.style.save``, which this
    layer cannot import."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=200)
    fig.savefig(Path(path).with_suffix(".pdf"), metadata={"CreationDate": None})
    plt.close(fig)
