"""The models, tables and figures of the ablation chapter (book chapter 11; the paper's Table 2
and Fig. 13).

The five zoo models differ only in their two sub-blocks (:class:`cratelib.blocks.Block`):

========== ====== ============================ ==========================
zoo name   attn   second block                 paper
========== ====== ============================ ==========================
crate      MSSA   ISTA (ReLU)                  Table 2, row 1
crate-mlp  MSSA   MLP                          Table 2, row 2
crate-mhsa MHSA   ISTA (ReLU)                  Table 2, row 3
vit        MHSA   MLP                          Table 2, row 4
crate-sth  MSSA   ISTA (soft threshold)        Fig. 13 (maps only)
========== ====== ============================ ==========================

This module names them and draws what :mod:`cratelib.eval` measures about them:

* :data:`VARIANTS`, :data:`TABLE2_NAMES`, :func:`missing_note` - the five models, the 2x2 design,
  and which checkpoints a build lacks (:func:`cratelib.train.zoo.shipped`);
* :func:`architecture_rows` - blocks and parameters per sub-block (counted by
  :func:`cratelib.info.param_breakdown`);
* :func:`paper_values`, :func:`table2_rows` - Table 2's numbers, and Table 2 beside ours;
* :func:`plot_model_maps` - Fig. 13's layout;
* :data:`STUDY_VARIANTS`, :func:`study_summary_rows`, :func:`study_table2_rows`,
  :func:`not_trained_note` - the same for the emergence study's models (``crate``, ``vit-cls``,
  ``vit-gap`` and the three ablations, :data:`cratelib.train.study.STUDY_MODELS`): across-seed
  summaries of the protocol's measures, Table 2 beside them, and which runs are not trained yet.

The measures are :func:`cratelib.eval.localisation.score_maps` and
:func:`cratelib.eval.maskcut_eval.layerwise_maskcut`, the comparisons
:mod:`cratelib.eval.stats`; the chapter words its verdict from them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from cratelib.eval.attention import upsample_maps
from cratelib.eval.reference import TABLE2_ABLATION
from cratelib.eval.emergence import summary_by_name
from cratelib.eval.threshold import mass_mask
from cratelib.figures.style import contour, finish, styled
from cratelib.figures.tables import mean_spread
from cratelib.train.study import split_run_name, train_command

__all__ = [
    "Variant",
    "VARIANTS",
    "TABLE2_NAMES",
    "missing_note",
    "architecture_rows",
    "paper_values",
    "table2_rows",
    "plot_model_maps",
    "STUDY_VARIANTS",
    "study_summary_rows",
    "study_table2_rows",
    "not_trained_note",
    "accuracy_bar_note",
]


@dataclass(frozen=True)
class Variant:
    """One model of the ablation: its zoo name, the paper's name, its two blocks, a colour."""

    name: str
    label: str
    attn: str
    block: str
    paper_row: str | None  # key of cratelib.eval.reference.TABLE2_ABLATION (None: not in Table 2)
    color: str


VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("crate", "CRATE", "MSSA", "ISTA", "CRATE (MSSA+ISTA)", "tab:blue"),
    Variant("crate-mlp", "CRATE-MLP", "MSSA", "MLP", "CRATE-MLP (MSSA+MLP)", "tab:green"),
    Variant("crate-mhsa", "CRATE-MHSA", "MHSA", "ISTA", "CRATE-MHSA (MHSA+ISTA)", "tab:purple"),
    Variant("vit", "ViT", "MHSA", "MLP", "ViT (MHSA+MLP)", "tab:red"),
    Variant("crate-sth", "CRATE-sth", "MSSA", "ISTA, soft threshold", None, "tab:orange"),
)}
TABLE2_NAMES = ("crate", "crate-mlp", "crate-mhsa", "vit")  # the 2x2 design, in the paper's order


def missing_note(missing: Sequence[str]) -> str:
    """Markdown: which models this build lacks (or that none is missing)."""
    if not missing:
        return "All five checkpoints of the ablation are shipped in this build."
    listed = ", ".join(f"`{n}` ({VARIANTS[n].label})" if n in VARIANTS else f"`{n}`" for n in missing)
    return (f"**Not yet shipped in this build:** {listed}. Their rows, maps and curves appear here once "
            "their checkpoints are committed to `data/checkpoints`; the comparisons below use the "
            "models that are shipped.")


def architecture_rows(names: Sequence[str], params: Mapping[str, Mapping[str, int]],
                      accuracy: Mapping[str, float] | None = None) -> list[dict]:
    """One row per model for :func:`cratelib.figures.tables.format_table`: blocks, parameters per
    layer and in all, and the held-out accuracy where given (percent; "not shipped" otherwise).

    Args:
        names: zoo names, in row order.
        params: ``name ->`` :func:`cratelib.info.param_breakdown` of its preset.
        accuracy: ``name ->`` held-out accuracy in [0, 1] of the shipped models.
    """
    rows = []
    for n in names:
        v, p = VARIANTS[n], params[n]
        acc = (accuracy or {}).get(n)
        rows.append({
            "model": v.label, "attention": v.attn, "second block": v.block,
            "attention / layer": f"{p['attention']:,}", "second block / layer": f"{p['second']:,}",
            "total": f"{p['total']:,}",
            "held-out accuracy": "not shipped" if acc is None else f"{100 * acc:.1f} %",
        })
    return rows


def paper_values(column: int) -> dict[str, float]:
    """Table 2's column (0-2: AP50, AP75, AP; 3: VOC mIoU) by zoo name."""
    return {n: TABLE2_ABLATION[VARIANTS[n].paper_row][column] for n in TABLE2_NAMES}


def table2_rows(ours: Mapping[str, Mapping[str, float]]) -> list[dict]:
    """Table 2 beside ours: one row per variant (CRATE-sth last, with no paper numbers).

    Args:
        ours: ``name -> {"AP50", "AP75", "AP", "miou"}`` (percent) of the shipped models.
    """
    rows = []
    for n, v in VARIANTS.items():
        paper = TABLE2_ABLATION.get(v.paper_row, (float("nan"),) * 4)
        mine = ours.get(n)
        row = {"model": v.label, "attention": v.attn, "second block": v.block}
        for i, key in enumerate(("AP50", "AP75", "AP")):
            row[f"paper {key}"] = paper[i]
        row["paper mIoU"] = paper[3]
        for key in ("AP50", "AP75", "AP", "miou"):
            label = "ours mIoU" if key == "miou" else f"ours {key}"
            row[label] = float("nan") if mine is None else float(mine[key])
        if mine is None:
            row["ours mIoU"] = "not shipped"
        rows.append(row)
    return rows


@styled
def plot_model_maps(images: Sequence[np.ndarray], maps: Mapping[str, torch.Tensor],
                    truths: Sequence[np.ndarray] | None = None, mass: float = 0.6):
    """Fig. 13's layout: the images in the top row, then one row per model with one map per image,
    the set holding ``mass`` of the attention outlined in cyan.

    Args:
        images: J uint8 ``(H, W, 3)`` images.
        maps: row label -> ``(J, h, w)`` maps (e.g. one chosen head of one layer).
        truths: optional J ``(H, W)`` bool masks, outlined in white on the images.
    """
    J, R = len(images), len(maps)
    fig, axes = plt.subplots(R + 1, J, figsize=(1.1 * J + 0.8, 1.1 * (R + 1)), squeeze=False)
    for j, image in enumerate(images):
        axes[0, j].imshow(image)
        if truths is not None and truths[j].any():
            axes[0, j].contour(truths[j].astype(float), levels=[0.5], colors="white", linewidths=0.8)
    axes[0, 0].set_ylabel("image", fontsize=8)
    for r, (label, m) in enumerate(maps.items(), start=1):
        sets = mass_mask(m, mass)
        for j, image in enumerate(images):
            size = image.shape[:2]
            axes[r, j].imshow(upsample_maps(m[j], size).numpy(), cmap="inferno")
            contour(axes[r, j], upsample_maps(sets[j], size).numpy(), "cyan", 0.7)
        axes[r, 0].set_ylabel(label, fontsize=8)
    return finish(fig, axes, pad=0.3, w_pad=0.2, h_pad=0.2)


# The emergence study's models (cratelib.train.study.STUDY_MODELS): the same 2x2 design plus the
# two ViT poolings; the paper's Table 2 has one ViT row, which both ViTs are read against.
STUDY_VARIANTS: dict[str, Variant] = {v.name: v for v in (
    Variant("crate", "CRATE", "MSSA", "ISTA", "CRATE (MSSA+ISTA)", "tab:blue"),
    Variant("crate-mlp", "CRATE-MLP", "MSSA", "MLP", "CRATE-MLP (MSSA+MLP)", "tab:green"),
    Variant("crate-mhsa", "CRATE-MHSA", "MHSA", "ISTA", "CRATE-MHSA (MHSA+ISTA)", "tab:purple"),
    Variant("vit-cls", "ViT-CLS", "MHSA", "MLP", "ViT (MHSA+MLP)", "tab:red"),
    Variant("vit-gap", "ViT-GAP", "MHSA", "MLP", "ViT (MHSA+MLP)", "tab:brown"),
    Variant("crate-sth", "CRATE-sth", "MSSA", "ISTA, soft threshold", None, "tab:orange"),
)}


def study_summary_rows(rows: Sequence[dict], measures: Mapping[str, str], stage: str = "final",
                       names: Sequence[str] | None = None, digits: int | Mapping[str, int] = 3) -> list[dict]:
    """One row per model (then one per baseline) for :func:`cratelib.figures.tables.format_table`:
    each of ``measures`` at the model's primary layer at ``stage``, as ``mean ± standard deviation
    across seeds (number of seeds)`` (:func:`cratelib.eval.emergence.seed_summary`,
    :func:`cratelib.figures.tables.mean_spread`).

    Args:
        rows: :attr:`cratelib.eval.emergence.StudyResult.rows`.
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
        label = STUDY_VARIANTS[name].label if name in STUDY_VARIANTS else name
        out.append({"model": label, "layer": str(mine[0]["layer"]),
                    **{title: mean_spread(summary[key].get(name), places[key]) for key, title in measures.items()}})
    for r in primary:
        if r["stage"] == "baseline":
            name = "random maps" if r["name"] == "random" else f"pixel cue: {r['name'].replace('_', ' ')}"
            out.append({"model": name, "layer": "-",
                        **{title: mean_spread(summary[key].get(r["name"]), places[key])
                           for key, title in measures.items()}})
    return out


def study_table2_rows(ours: Mapping[str, Mapping[str, float]], names: Sequence[str] | None = None) -> list[dict]:
    """Table 2 (det AP50 and VOC mIoU, S/8) beside the study: one row per study model, the paper's
    row of the same design (both ViTs are read against its one ViT row; CRATE-sth is not in it).

    Args:
        ours: name -> ``{"auc", "ap50", "seeds"}``: the primary measure and MaskCut's AP50
            (percent) at the primary layer, means over ``seeds`` seeds; a model absent here is
            marked "not trained yet".
        names: the models, in row order (default: all of :data:`STUDY_VARIANTS`).
    """
    rows = []
    for n in names or STUDY_VARIANTS:
        v = STUDY_VARIANTS[n]
        paper = TABLE2_ABLATION.get(v.paper_row, (float("nan"),) * 4)
        mine = ours.get(n)
        row = {"model": v.label, "blocks": f"{v.attn} + {v.block}",
               "paper det AP50": paper[0], "paper VOC mIoU": paper[3]}
        if mine is None:
            row |= {"ours: AUC": "not trained yet", "ours: MaskCut AP50": "-", "seeds": 0}
        else:
            row |= {"ours: AUC": float(mine["auc"]), "ours: MaskCut AP50": float(mine["ap50"]),
                    "seeds": int(mine["seeds"])}
        rows.append(row)
    return rows


def not_trained_note(missing: Mapping[str, int | None], epochs: int) -> str:
    """Markdown: the study models without a shipped run, each with the command that trains it and,
    where a partial run folder exists, how far it got (``missing``: name -> epochs done or None)."""
    if not missing:
        return "Every model of the study has at least one shipped run."
    parts = []
    for name, done in missing.items():
        label = STUDY_VARIANTS[name].label if name in STUDY_VARIANTS else name
        where = f", a partial run stopped after epoch {done} of {epochs} resumes with it" if done else ""
        parts.append(f"{label} (`{train_command(name, 0)}`{where})")
    return ("**Not trained yet:** " + "; ".join(parts) + ". Each run is the study's recipe with only the "
            "model changed; once its checkpoint is shipped to `data/checkpoints/study/`, this chapter "
            "measures it with the others.")


def _first_epoch_at(history: Sequence[Mapping], level: float) -> int | None:
    return next((int(h["epoch"]) for h in history if h.get("val_acc", 0.0) >= level), None)


def accuracy_bar_note(records: Mapping[str, Mapping], bar: float = 0.85, level: float = 0.80,
                      reference: str = "crate") -> str:
    """Markdown: the shipped runs whose held-out accuracy is below ``bar``, each with the epoch its
    validation accuracy first reached ``level`` (beside the ``reference`` model's runs) and its gain
    over the last ten epochs.

    Args:
        records: run name (``"<model>-s<seed>"``) -> its zoo record (``held_out``, ``history``).
        bar: the accuracy every study model is asked to reach.
        level: the equal-accuracy stage's validation accuracy.
        reference: the model whose runs give the comparison epochs.
    """
    below = {n: r for n, r in records.items() if r["held_out"]["acc"] < bar}
    if not below:
        return f"Every shipped run reaches the study's {bar:.0%} held-out accuracy."
    ref = sorted(e for n, r in records.items() if split_run_name(n)[0] == reference
                 and (e := _first_epoch_at(r["history"], level)) is not None)
    ref_text = (f"{STUDY_VARIANTS[reference].label}: epoch {ref[0]}" + (f"-{ref[-1]}" if ref[-1] != ref[0] else "")
                if ref else f"{STUDY_VARIANTS[reference].label}: never")
    parts = []
    for name, r in below.items():
        model, seed = split_run_name(name)
        first = _first_epoch_at(r["history"], level)
        accs = [h["val_acc"] for h in r["history"] if "val_acc" in h]
        gain = 100 * (accs[-1] - accs[-11]) if len(accs) > 10 else float("nan")
        parts.append(f"{STUDY_VARIANTS[model].label} seed {seed} reaches {100 * r['held_out']['acc']:.1f} % held-out; "
                     f"its validation accuracy first reached {level:.0%} "
                     + (f"at epoch {first}" if first is not None else "never")
                     + f" ({ref_text}) and gained {gain:+.1f} points over its last ten epochs, the end of the "
                       "cosine schedule")
    return ("**Below the study's bar of " + f"{bar:.0%}" + ":** " + "; ".join(parts) + ". The recipe (learning "
            "rate, schedule, epochs) was fixed for every model before the runs and is not tuned per model, so "
            "such a run is compared as the weaker classifier it is; the equal-accuracy stage (" + f"{level:.0%}"
            + " validation accuracy) compares it with the others at matched accuracy.")

