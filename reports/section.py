"""One section of a report (a figure, its CSVs, a note or a table) and the markdown table writer:
what :mod:`reports.build` assembles and every section module (:mod:`reports.extraction`,
:mod:`reports.transformer`) returns."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["Section", "markdown_table"]


@dataclass
class Section:
    """One figure of the report: written files (names relative to the report directory), or a note."""

    name: str
    title: str
    text: str = ""
    figure: str | None = None
    csvs: list[str] = field(default_factory=list)
    note: str | None = None
    table: pd.DataFrame | None = None
    table_caption: str = ""


def markdown_table(df: pd.DataFrame, floatfmt: str = "{:.3g}") -> str:
    """A GitHub-markdown table of ``df`` (floats with ``floatfmt``; NaN as blank)."""
    def cell(v):
        if isinstance(v, float):
            return "" if np.isnan(v) else floatfmt.format(v)
        return str(v)
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "---|" * len(df.columns)
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body])
