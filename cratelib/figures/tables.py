"""The book's tables: rows of dicts to Markdown."""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["format_table"]


def format_table(rows: list[dict], columns: Sequence[str] | None = None, digits: int = 1) -> str:
    """Markdown table of ``rows`` (floats rounded to ``digits``; ``nan`` shown as ``-``).

    Args:
        rows: one dict per row; a missing key is a ``nan`` cell.
        columns: which keys, in order (default: the first row's).
    """
    if not rows:
        raise ValueError("format_table: no rows")
    columns = list(columns or rows[0])

    def cell(v) -> str:
        if isinstance(v, float):
            return "-" if np.isnan(v) else f"{v:.{digits}f}"
        return str(v)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c, float("nan"))) for c in columns) + " |" for r in rows]
    return "\n".join(lines)
