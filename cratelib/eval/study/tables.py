"""The study's results shaped for reading: tables (rows of dicts for
:func:`cratelib.figures.tables.format_table`) and curves across seeds (for
:mod:`cratelib.figures.curves`), from the study's rows
(:attr:`cratelib.eval.study.protocol.StudyResult.rows`) and the paper's Table 2."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from cratelib.eval.reference import TABLE2_ABLATION
from cratelib.eval.stats import SeedBand, seed_bands
from cratelib.eval.study.verdicts import best_pixel_cue, summary_by_name
from cratelib.models.catalogue import CATALOGUE, PART2_MODELS, label

__all__ = ["mean_spread", "summary_rows", "table2_rows", "seed_curves", "Panel", "study_panels"]


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
        names: the models, in row order (default: Part 2's models in Table 2's order, the
            one outside it last).
    """
    order = list(TABLE2_ABLATION)
    rows = []
    for n in names or sorted(PART2_MODELS, key=lambda n: order.index(p) if (p := CATALOGUE[n].paper_row) else len(order)):
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


def seed_curves(rows: Sequence[dict], measure: str, x: str = "layer", stages: Sequence[str] = ("final",),
                primary_only: bool = False) -> dict[str, dict[int, dict]]:
    """``{model: {seed: {x: value}}}`` of ``measure`` from the study's rows, for the models'
    checkpoints at ``stages`` (baselines are left out; rows without a finite value of the measure
    too); :func:`cratelib.eval.stats.seed_bands` summarises them across seeds.

    Args:
        x: the row key on the horizontal axis: ``"layer"`` (every layer of one stage), ``"epoch"``
            or ``"stage"`` (with ``primary_only``: the primary layer at each stage).
        primary_only: keep only the rows at each model's primary layer.
    """
    out: dict[str, dict[int, dict]] = {}
    for r in rows:
        if r["stage"] == "baseline" or r["stage"] not in stages or (primary_only and not r["primary"]):
            continue
        v = r.get(measure, float("nan"))
        if v is None or not np.isfinite(v):
            continue
        out.setdefault(r["name"], {}).setdefault(r["seed"], {})[r[x]] = float(v)
    return out


@dataclass
class Panel:
    """One panel of the study's layer figure: ``bands`` (model -> its measure over the layers
    across seeds) and ``references`` (label -> a value drawn as a line)."""

    title: str
    bands: dict[str, SeedBand]
    references: dict[str, float] = field(default_factory=dict)


def study_panels(rows: Sequence[dict], panels: Sequence[tuple[str, str, str]],
                 references: Mapping[str, float] | None = None,
                 by_measure: Mapping[str, Mapping[str, float]] | None = None) -> list[Panel]:
    """One :class:`Panel` per ``(measure, stage, title)`` of ``panels``: every model of ``rows`` over
    the layers across its seeds, the best pixel cue and random maps where the measure has them,
    each of ``references`` in every panel and each of ``by_measure[m]`` in the panels of measure
    ``m`` (e.g. a rule's ceiling)."""
    out = []
    for measure, stage, title in panels:
        best, value = best_pixel_cue(rows, measure)
        lines = {f"best pixel cue ({best})": value} if best is not None else {}
        random = [r[measure] for r in rows if r["stage"] == "baseline" and r["name"] == "random"
                  and np.isfinite(r.get(measure, np.nan))]
        lines |= {"random maps": random[0]} if random else {}
        lines |= dict(references or {}) | dict((by_measure or {}).get(measure, {}))
        out.append(Panel(title, seed_bands(seed_curves(rows, measure, "layer", [stage])), lines))
    return out
