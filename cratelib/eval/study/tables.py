"""The study's tables: rows of dicts for :func:`cratelib.figures.tables.format_table`, from the
study's rows (:attr:`cratelib.eval.study.protocol.StudyResult.rows`) and the paper's Table 2."""
from __future__ import annotations

from typing import Mapping, Sequence

from cratelib.eval.reference import TABLE2_ABLATION
from cratelib.eval.study.verdicts import summary_by_name
from cratelib.models.catalogue import CATALOGUE, label

__all__ = ["mean_spread", "summary_rows", "table2_rows"]


def mean_spread(summary: dict | None, digits: int = 3) -> str:
    """One model's measure across seeds as text, from a row of
    :func:`cratelib.eval.study.verdicts.seed_summary`: ``mean ± spread (n seeds)``, ``mean (1 seed)``,
    or the bare value of a baseline (``seeds`` 0); ``-`` for ``None`` (nothing shipped)."""
    if summary is None:
        return "-"
    mean = f"{summary['mean']:.{digits}f}"
    if summary["seeds"] == 0:
        return mean
    if summary["seeds"] == 1:
        return f"{mean} (1 seed)"
    return f"{mean} ± {summary['spread']:.{digits}f} ({summary['seeds']} seeds)"


def summary_rows(rows: Sequence[dict], measures: Mapping[str, str], stage: str = "final",
                 names: Sequence[str] | None = None, digits: int | Mapping[str, int] = 3) -> list[dict]:
    """One row per model (then one per baseline): each of ``measures`` at the model's primary layer
    at ``stage``, as :func:`mean_spread` across seeds.

    Args:
        rows: the study's rows.
        measures: row key -> column title.
        names: the models, in row order (default: every model of ``rows`` at ``stage``).
        digits: decimals of every measure, or measure -> decimals (3 for the others).
    """
    places = {key: (digits.get(key, 3) if isinstance(digits, Mapping) else digits) for key in measures}
    summary = {key: summary_by_name(rows, key, stage) for key in measures}
    primary = [r for r in rows if r["primary"]]
    models = list(names or dict.fromkeys(r["name"] for r in primary if r["stage"] == stage))
    out = []
    for name in models:
        mine = [r for r in primary if r["name"] == name and r["stage"] == stage]
        if not mine:
            continue
        out.append({"model": label(name), "layer": str(mine[0]["layer"]),
                    **{title: mean_spread(summary[key].get(name), places[key]) for key, title in measures.items()}})
    for r in primary:
        if r["stage"] == "baseline":
            name = "random maps" if r["name"] == "random" else f"pixel cue: {r['name'].replace('_', ' ')}"
            out.append({"model": name, "layer": "-",
                        **{title: mean_spread(summary[key].get(r["name"]), places[key])
                           for key, title in measures.items()}})
    return out


def table2_rows(ours: Mapping[str, Mapping[str, float]], names: Sequence[str] | None = None) -> list[dict]:
    """Table 2 (det AP50 and VOC mIoU, S/8) beside the study: one row per study model, the paper's
    row of the same design (both ViTs are read against its one ViT row; CRATE-sth is not in it).

    Args:
        ours: name -> ``{"auc", "ap50", "seeds"}``: the primary measure and MaskCut's AP50
            (percent) at the primary layer, means over ``seeds`` seeds; a model absent here is
            marked "not trained yet".
        names: the models, in row order (default: the whole catalogue in Table 2's order, the
            models outside it last).
    """
    order = list(TABLE2_ABLATION)
    rows = []
    for n in names or sorted(CATALOGUE, key=lambda n: order.index(p) if (p := CATALOGUE[n].paper_row) else len(order)):
        e = CATALOGUE[n]
        paper = TABLE2_ABLATION.get(e.paper_row, (float("nan"),) * 4)
        mine = ours.get(n)
        row = {"model": e.label, "blocks": f"{e.attn} + {e.block}",
               "paper det AP50": paper[0], "paper VOC mIoU": paper[3]}
        if mine is None:
            row |= {"ours: AUC": "not trained yet", "ours: MaskCut AP50": "-", "seeds": 0}
        else:
            row |= {"ours: AUC": float(mine["auc"]), "ours: MaskCut AP50": float(mine["ap50"]),
                    "seeds": int(mine["seeds"])}
        rows.append(row)
    return rows
