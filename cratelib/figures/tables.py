"""The book's tables and verdict sentences: rows of dicts to Markdown."""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["format_table", "mean_spread", "verdict_lines"]


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


def mean_spread(summary: dict, digits: int = 3) -> str:
    """One model's measure across seeds as text, from a row of
    :func:`cratelib.eval.emergence.seed_summary`: ``mean ± spread (n seeds)``, ``mean (1 seed)``,
    or the bare value of a baseline (``seeds`` 0); ``-`` for ``None`` (nothing shipped)."""
    if summary is None:
        return "-"
    mean = f"{summary['mean']:.{digits}f}"
    if summary["seeds"] == 0:
        return mean
    if summary["seeds"] == 1:
        return f"{mean} (1 seed)"
    return f"{mean} ± {summary['spread']:.{digits}f} ({summary['seeds']} seeds)"


def verdict_lines(verdicts: Sequence[dict], empty: str = "No pair of the study has a seed shipped for both models "
                  "yet.") -> str:
    """Markdown bullets, one per verdict of :func:`cratelib.eval.emergence.study_verdicts`: the
    mean difference over seeds, its spread, the best pixel cue, and "real" or which of the rule's
    conditions is missing."""
    lines = []
    for v in verdicts:
        checks = (("the same sign in every seed", v["same_sign"]), ("a difference beyond two spreads", v["beyond_spread"]),
                  ("both models above the best pixel cue" if v["beat_pixels"] is not None
                   else "a pixel baseline for this measure", v["beat_pixels"]))
        missing = [name for name, ok in checks if not ok]
        seeds = f"{v['seeds']} seed{'s' * (v['seeds'] > 1)}"
        pixel = f"best pixel cue {v['best_pixel']:.3f}" if np.isfinite(v["best_pixel"]) else "no pixel cue"
        spread = f"spread {v['spread']:.3f}" if np.isfinite(v["spread"]) else "no spread from one seed"
        lines.append(f"* **{v['stage']}**, {v['a']} minus {v['b']} on {v['measure']}: {v['difference']:+.3f} "
                     f"over {seeds} ({spread}; {pixel}): "
                     + ("**real**." if v["real"] else "not established (missing: " + "; ".join(missing) + ")."))
    return "\n".join(lines) or empty
