"""One colour and marker per strategy, in every figure of the package: the report figures
(:mod:`reports.style`) and the claims ledger's (:mod:`experiments.claims`), which sits below ``reports``
and so reads the palette here. Plain data and lookups: no matplotlib."""
from __future__ import annotations

import zlib

__all__ = ["STRATEGY_STYLES", "ALIASES", "FALLBACK_COLOURS", "OTHER_COLOURS", "SUPPORT_COLOURS", "style_of",
           "colour_of", "marker_of"]

#: Fixed (colour, marker) per strategy, supervision and the teacher; the colours are matplotlib's tab10.
STRATEGY_STYLES = {
    "ce": ("#1f77b4", "o"),
    "oneshot": ("#ff7f0e", "s"),
    "progressive": ("#2ca02c", "^"),
    "two-shot": ("#d62728", "D"),
    "equal-split": ("#9467bd", "v"),
    "extraction": ("#8c564b", "P"),
    "teacher": ("#000000", "*"),
}
#: Other spellings of the same strategy: Algorithm 1's hinge loss on labels is cross-entropy's place.
ALIASES = {"labels": "ce", "one-shot": "oneshot", "cross-entropy": "ce", "twoshot": "two-shot",
           "equal_split": "equal-split"}
#: Colours of unknown names (chosen by a CRC-32 of the name): none of them is a strategy's.
FALLBACK_COLOURS = ("#e377c2", "#bcbd22", "#17becf", "#7f7f7f", "#393b79", "#637939", "#e7ba52", "#a55194")
_FALLBACK_MARKERS = ("X", "h", "p", "<", ">", "d", "H", "8")
#: The colour cycle of lines that are not strategies (one per k, n, level, ...): no strategy's colour.
OTHER_COLOURS = ("#393b79", "#17becf", "#bcbd22", "#e377c2", "#7f7f7f", "#637939", "#e7ba52", "#a55194")
#: Monomials / coordinates inside the parity's support vs outside it, in every curriculum-like figure.
SUPPORT_COLOURS = {"in": "#1f77b4", "off": "#d62728"}


def _canonical(name) -> str:
    name = str(name)
    return ALIASES.get(name, name)


def style_of(name) -> tuple[str, str]:
    """``(colour, marker)`` of a strategy, supervision or ``teacher``; an unknown name's is fixed by its CRC-32."""
    key = _canonical(name)
    if key in STRATEGY_STYLES:
        return STRATEGY_STYLES[key]
    h = zlib.crc32(key.encode("utf-8"))
    return FALLBACK_COLOURS[h % len(FALLBACK_COLOURS)], _FALLBACK_MARKERS[h % len(_FALLBACK_MARKERS)]


def colour_of(name) -> str:
    """The fixed colour of a strategy (hex); see :func:`style_of`."""
    return style_of(name)[0]


def marker_of(name) -> str:
    """The fixed marker of a strategy; see :func:`style_of`."""
    return style_of(name)[1]
