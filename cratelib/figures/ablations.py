"""Measurements, tables and figures of the ablation chapter (book chapter 11; the paper's Table 2
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

This module holds what the chapter computes about them:

* :data:`VARIANTS`, :func:`shipped`, :func:`missing_note` - which checkpoints this build has;
* :func:`param_breakdown`, :func:`architecture_rows` - parameters per sub-block, from the presets;
* :func:`layer_scores` - per layer and image: attention on the object, best-head IoU of DINO's
  60 %-mass sets (chapter 7) and the paper's eq. 14 (top 60 % of the entries, App. B.3);
* :func:`maskcut_layers`, :func:`object_hits` - MaskCut's class-agnostic box AP per layer and,
  per ground-truth object, whether a box found it (a per-object score that has an error bar);
* :func:`paired`, :func:`compare`, :func:`factorial_effects`, :func:`order_agreement` - paired
  differences with standard errors, the 2x2 main effects, rank agreement with the paper;
* :func:`table2_rows`, :func:`verdict` - Table 2 beside ours, and the sentences that compare them,
  chosen from the numbers;
* :func:`plot_model_maps`, :func:`plot_layer_curves` - the static figures.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from cratelib.eval.attention import upsample_maps
from cratelib.eval.coco_eval import evaluate_detections
from cratelib.eval.extract import extract
from cratelib.eval.maskcut_eval import run_maskcut
from cratelib.eval.reference import TABLE2_ABLATION
from cratelib.eval.segmentation import coarse_segmentation
from cratelib.eval.sources import Sample
from cratelib.eval.threshold import mass_mask
from cratelib.figures.attention import attention_on, best_head_ious, object_fraction
from cratelib.models import create_model
from cratelib.train.config import load_config
from cratelib.train.zoo import ZOO_DIR
from cratelib.figures.style import contour, finish, styled

__all__ = [
    "Variant",
    "VARIANTS",
    "TABLE2_NAMES",
    "shipped",
    "missing_note",
    "param_breakdown",
    "architecture_rows",
    "LayerScores",
    "layer_scores",
    "maskcut_layers",
    "object_hits",
    "paired",
    "compare",
    "factorial_effects",
    "order_agreement",
    "table2_rows",
    "verdict",
    "plot_model_maps",
    "plot_layer_curves",
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


def shipped(names: Sequence[str] | None = None, zoo_dir: str | Path = ZOO_DIR) -> list[str]:
    """The models among ``names`` (default: all of :data:`VARIANTS`) whose checkpoint *and*
    record are in ``zoo_dir``, in the order given."""
    zoo_dir = Path(zoo_dir)
    return [n for n in (names or VARIANTS) if (zoo_dir / f"{n}.pt").is_file() and (zoo_dir / f"{n}.json").is_file()]


def missing_note(missing: Sequence[str]) -> str:
    """Markdown: which models this build lacks (or that none is missing)."""
    if not missing:
        return "All five checkpoints of the ablation are shipped in this build."
    listed = ", ".join(f"`{n}` ({VARIANTS[n].label})" if n in VARIANTS else f"`{n}`" for n in missing)
    return (f"**Not yet shipped in this build:** {listed}. Their rows, maps and curves appear here once "
            "their checkpoints are committed to `data/checkpoints`; the comparisons below use the "
            "models that are shipped.")


def param_breakdown(name: str) -> dict[str, int]:
    """Parameters of the zoo preset ``zoo-<name>`` by part, counted on the ``meta`` device.

    Returns:
        ``attention`` and ``second`` (the MLP or ISTA block) of *one* layer, ``norms`` (the two
        LayerNorms of one layer), ``layers`` (all layers), ``embedding`` (patches, CLS token,
        positions), ``head`` (final LayerNorm and classifier) and ``total``.
    """
    config = load_config(f"zoo-{name}")
    with torch.device("meta"):
        model = create_model(config.model, img_size=config.img_size, num_classes=config.num_classes,
                             **config.model_args)

    def count(module) -> int:
        return sum(p.numel() for p in module.parameters())

    block = model.blocks[0]
    embedding = count(model.patch_embed) + model.cls_token.numel() + model.pos_embed.numel()
    return {
        "attention": count(block.attn),
        "second": count(block.mlp),
        "norms": count(block.norm1) + count(block.norm2),
        "layers": sum(count(b) for b in model.blocks),
        "embedding": embedding,
        "head": count(model.norm) + count(model.head),
        "total": count(model),
    }


def architecture_rows(names: Sequence[str], accuracy: Mapping[str, float] | None = None) -> list[dict]:
    """One row per model for :func:`cratelib.eval.studies.format_table`: blocks, parameters per
    layer and in all, and the held-out accuracy where given (percent; ``-`` if not shipped)."""
    rows = []
    for n in names:
        v, p = VARIANTS[n], param_breakdown(n)
        acc = (accuracy or {}).get(n)
        rows.append({
            "model": v.label, "attention": v.attn, "second block": v.block,
            "attention / layer": f"{p['attention']:,}", "second block / layer": f"{p['second']:,}",
            "total": f"{p['total']:,}",
            "held-out accuracy": "not shipped" if acc is None else f"{100 * acc:.1f} %",
        })
    return rows


@dataclass
class LayerScores:
    """Per layer ``l`` and test image ``j`` (arrays ``(L, J)``):

    Attributes:
        on: share of the class token's attention on object pixels, mean over heads (chapter 7).
        mass_iou: IoU of the best head's 60 %-mass set with the object (DINO's display).
        miou: the paper's eq. 14 (each map's top 60 % entries, best head per class, mean over the
            image's classes); with one object per image, the best head's IoU with it.
    """

    on: np.ndarray
    mass_iou: np.ndarray
    miou: np.ndarray

    MEASURES = ("on", "mass_iou", "miou")

    def mean(self, measure: str) -> np.ndarray:
        """``(L,)``: the mean over images of one measure."""
        return np.nanmean(getattr(self, measure), axis=1)


def layer_scores(maps: torch.Tensor, truths: Sequence[np.ndarray], labels: Sequence[np.ndarray]) -> LayerScores:
    """The three map measures of every layer.

    Args:
        maps: ``(L, J, K, h, w)`` CLS maps (:func:`cratelib.figures.attention.layer_maps`).
        truths: J ``(H, W)`` bool masks of each image's object (what ``on`` and ``mass_iou`` use).
        labels: J ``(H, W)`` semantic label maps (0 background) for eq. 14.
    """
    L = maps.shape[0]
    frac = object_fraction(truths, tuple(maps.shape[-2:]))
    on = attention_on(maps, frac).mean(-1).numpy()  # (L, J)
    mass = np.stack([best_head_ious(maps[l], truths)[0] for l in range(L)])
    seg = coarse_segmentation({l: maps[l] for l in range(L)}, [np.asarray(x, np.int64) for x in labels])
    return LayerScores(on=on, mass_iou=mass, miou=np.stack([seg.per_image[l] for l in range(L)]))


def _box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two COCO boxes ``[x, y, w, h]``."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def object_hits(detections: Sequence[dict], gt: dict | str | Path, threshold: float = 0.5) -> np.ndarray:
    """Per ground-truth object (in the order of ``gt["annotations"]``): 1 if some detected box of
    its image overlaps it with IoU >= ``threshold``, else 0. Its mean is the recall at that IoU; as
    a per-object score it has a standard error, which the AP of a small set has not."""
    if not isinstance(gt, dict):
        gt = json.loads(Path(gt).read_text())
    boxes: dict[int, list] = {}
    for d in detections:
        boxes.setdefault(int(d["image_id"]), []).append(d["bbox"])
    return np.asarray([float(any(_box_iou(b, a["bbox"]) >= threshold for b in boxes.get(a["image_id"], [])))
                       for a in gt["annotations"]])


def maskcut_layers(model: torch.nn.Module, samples: list[Sample], gt: dict | str | Path,
                   layers: Sequence[int] | None = None, img_size: int | None = None) -> dict[int, dict]:
    """MaskCut (3 objects, tau 0.15, no CRF, as Table 2) on each layer's patch features.

    Returns:
        ``layer -> {"AP50", "AP75", "AP"}`` (class-agnostic box AP, percent) and ``"hits"``
        (:func:`object_hits` at IoU 0.5).
    """
    layers = list(range(len(model.blocks))) if layers is None else list(layers)
    size = img_size or model.config.img_size
    ex = extract(model, [s.image for s in samples], layers, size, what=("features",))
    if not isinstance(gt, dict):
        gt = json.loads(Path(gt).read_text())
    out = {}
    for l in layers:
        run = run_maskcut(ex.features[l], ex.grid, samples, crf=False)
        ap = evaluate_detections(gt, run.detections, run.image_ids, iou_types=("bbox",))["bbox"]
        out[l] = {k: 100 * v for k, v in ap.items()} | {"hits": object_hits(run.detections, gt)}
    return out


def paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Mean and standard error of the paired differences ``a - b`` (same images, same order;
    ``nan`` entries, images without an object, are dropped)."""
    d = np.asarray(a, float) - np.asarray(b, float)
    d = d[~np.isnan(d)]
    if len(d) < 2:
        raise ValueError(f"need at least 2 paired values, got {len(d)}")
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d)))


def compare(a: np.ndarray, b: np.ndarray, z: float = 2.0) -> int:
    """+1 if ``a`` is clearly above ``b`` (the paired mean difference exceeds ``z`` standard
    errors), -1 if clearly below, 0 if the data cannot tell."""
    mean, se = paired(a, b)
    return 0 if abs(mean) <= z * se else int(np.sign(mean))


def factorial_effects(per_image: Mapping[str, np.ndarray]) -> dict[str, tuple[float, float]]:
    """Main effects of the 2x2 design, per image, with standard errors.

    ``attention``: MSSA minus MHSA, averaged over the two second blocks,
    ``((crate - crate-mhsa) + (crate-mlp - vit)) / 2``; ``nonlinearity``: ISTA minus MLP,
    ``((crate - crate-mlp) + (crate-mhsa - vit)) / 2``; ``interaction``: how much the attention
    effect depends on the second block, ``((crate - crate-mhsa) - (crate-mlp - vit)) / 2``.
    Each value is ``(mean, standard error)``; the same formulas applied to Table 2's numbers
    give the paper's effects.
    """
    c, m, h, v = (np.asarray(per_image[n], float) for n in TABLE2_NAMES)
    zero = np.zeros_like(c)
    return {"attention": paired((c - h + m - v) / 2, zero),
            "nonlinearity": paired((c - m + h - v) / 2, zero),
            "interaction": paired((c - h - m + v) / 2, zero)}


def paper_effects(column: int = 3) -> dict[str, float]:
    """:func:`factorial_effects` of Table 2's numbers (``column`` 3: mIoU; 0: AP50)."""
    c, m, h, v = (TABLE2_ABLATION[VARIANTS[n].paper_row][column] for n in TABLE2_NAMES)
    return {"attention": (c - h + m - v) / 2, "nonlinearity": (c - m + h - v) / 2,
            "interaction": (c - h - m + v) / 2}


def order_agreement(ours: Mapping[str, float], paper: Mapping[str, float]) -> tuple[int, int]:
    """How many pairs of the models in both mappings are ordered alike: ``(concordant, pairs)``;
    ties on either side count as not concordant."""
    names = [n for n in ours if n in paper]
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    same = sum(np.sign(ours[a] - ours[b]) * np.sign(paper[a] - paper[b]) > 0 for a, b in pairs)
    return int(same), len(pairs)


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


def _names(names: Sequence[str]) -> str:
    labels = [VARIANTS[n].label for n in names]
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def _versus(a: str, others: Sequence[str], scores: Mapping[str, np.ndarray], task: str,
            paper_says: str) -> tuple[str, str]:
    """One sentence on how ``a`` compares with ``others`` on ``task``; and 'agree'/'disagree'/'open'."""
    signs = {o: compare(scores[a], scores[o]) for o in others}
    ahead = [o for o, s in signs.items() if s > 0]
    behind = [o for o, s in signs.items() if s < 0]
    tied = [o for o, s in signs.items() if s == 0]
    A = VARIANTS[a].label
    if len(ahead) == len(others):
        return f"On {task}, {A} is clearly ahead of {_names(others)}, as {paper_says}.", "agree"
    parts = []
    if ahead:
        parts.append(f"clearly ahead of {_names(ahead)}")
    if behind:
        parts.append(f"clearly behind {_names(behind)} (in Table 2 it is ahead)")
    if tied:
        parts.append(f"not distinguishable from {_names(tied)} at this sample size")
    status = "disagree" if behind else "open"
    return f"On {task}, {A} is " + "; ".join(parts) + ".", status


def verdict(seg_last: Mapping[str, np.ndarray], det_last: Mapping[str, np.ndarray],
            seg_pen: Mapping[str, np.ndarray]) -> tuple[str, dict[str, int]]:
    """The chapter's comparison sentences, chosen from the numbers.

    Args:
        seg_last: name -> per-image eq. 14 score at the last layer (Table 2's protocol).
        det_last: name -> per-object MaskCut hits at the last layer (:func:`object_hits`).
        seg_pen: name -> per-image eq. 14 score at the penultimate layer (Fig. 13's layer).
        Only shipped models are passed; each sentence needs its models and is left out otherwise.

    Returns:
        ``(markdown, tally)`` with ``tally`` counting the paper's claims that the data
        reproduce (``agree``), contradict (``disagree``) or leave open (``open``).
    """
    tally = {"agree": 0, "disagree": 0, "open": 0}
    out = []

    def add(sentence_status: tuple[str, str]) -> None:
        out.append(sentence_status[0])
        tally[sentence_status[1]] += 1

    have = [n for n in TABLE2_NAMES if n in seg_last]
    others = [n for n in have if n != "crate"]
    if "crate" in have and others:
        add(_versus("crate", others, seg_last, "coarse segmentation (eq. 14, last layer)", "Table 2 reports"))
        add(_versus("crate", others, det_last, "MaskCut detection (objects found at IoU 0.5, last layer)",
                    "Table 2 reports"))
    if "crate-mlp" in have and "vit" in have:
        s = compare(seg_last["crate-mlp"], seg_last["vit"])
        d, se = paired(seg_last["crate-mlp"], seg_last["vit"])
        change = f"{100 * d:+.1f} ± {100 * se:.1f} points of mIoU"
        if s > 0:
            add((f"Putting MSSA into the ViT (CRATE-MLP against ViT) improves coarse segmentation, "
                 f"{change}, as the paper finds (+{paper_values(3)['crate-mlp'] - paper_values(3)['vit']:.1f}).",
                 "agree"))
        elif s < 0:
            add((f"Putting MSSA into the ViT (CRATE-MLP against ViT) makes coarse segmentation worse, "
                 f"{change}; the paper finds a clear improvement.", "disagree"))
        else:
            add((f"Putting MSSA into the ViT (CRATE-MLP against ViT) changes coarse segmentation by "
                 f"{change}, within noise; the paper finds a clear improvement "
                 f"(+{paper_values(3)['crate-mlp'] - paper_values(3)['vit']:.1f}).", "open"))
    if len(have) == 4:
        eff, ref = factorial_effects(seg_last), paper_effects(3)
        text = ("Averaged over the other block, swapping MHSA for MSSA changes our mIoU by "
                f"{100 * eff['attention'][0]:+.1f} ± {100 * eff['attention'][1]:.1f} points and swapping "
                f"the MLP for ISTA by {100 * eff['nonlinearity'][0]:+.1f} ± "
                f"{100 * eff['nonlinearity'][1]:.1f} (paper: {ref['attention']:+.1f} and "
                f"{ref['nonlinearity']:+.1f}).")
        a = eff["attention"]
        if a[0] > 2 * a[1]:
            add((text + " Like the paper, MSSA helps on average.", "agree"))
        elif a[0] < -2 * a[1]:
            add((text + " Unlike the paper, MSSA hurts on average.", "disagree"))
        else:
            add((text + " The average effect of the attention swap is within noise.", "open"))
        # attention effect - nonlinearity effect = CRATE-MLP - CRATE-MHSA, image by image
        s = compare(seg_last["crate-mlp"], seg_last["crate-mhsa"])
        out.append({1: "The attention swap also helps more than the ISTA swap (CRATE-MLP is clearly ahead "
                       "of CRATE-MHSA), as in the paper.",
                    -1: "The ISTA swap helps more than the attention swap (CRATE-MHSA is clearly ahead of "
                        "CRATE-MLP), the reverse of the paper.",
                    0: "Which swap helps more, the attention swap (as in the paper) or the ISTA swap, the "
                       "data cannot tell: CRATE-MLP and CRATE-MHSA are within noise of each other."}[s])
        ours = {k: float(np.nanmean(v)) for k, v in seg_last.items() if k in TABLE2_NAMES}
        same, pairs = order_agreement(ours, paper_values(3))
        order = " > ".join(VARIANTS[k].label for k in sorted(ours, key=ours.get, reverse=True))
        out.append(f"Ranked by mIoU our four models read {order}; the paper's order is CRATE > CRATE-MLP > "
                   f"CRATE-MHSA > ViT ({same} of the {pairs} pairs ordered alike, though neighbouring "
                   "ranks may be within noise).")
    if "crate" in seg_pen and "crate-sth" in seg_pen:
        s = compare(seg_pen["crate-sth"], seg_pen["crate"])
        d, se = paired(seg_pen["crate-sth"], seg_pen["crate"])
        diff = f"{100 * d:+.1f} ± {100 * se:.1f} points of eq. 14 at the penultimate layer"
        if s == 0:
            add((f"CRATE-sth's maps segment as well as CRATE's ({diff}), as the paper's Fig. 13 shows.",
                 "agree"))
        elif s > 0:
            add((f"CRATE-sth's maps segment even better than CRATE's ({diff}); the paper's Fig. 13 shows "
                 "them alike, and its point, that the soft threshold keeps the segmenting maps, holds.",
                 "agree"))
        else:
            add((f"CRATE-sth's maps segment clearly worse than CRATE's ({diff}); the paper's Fig. 13 "
                 "shows them alike.", "disagree"))
    mssa = [n for n in seg_pen if VARIANTS[n].attn == "MSSA"]
    mhsa = [n for n in seg_pen if VARIANTS[n].attn == "MHSA"]
    if mssa and mhsa:
        signs = [compare(seg_pen[a], seg_pen[b]) for a in mssa for b in mhsa]
        if all(s > 0 for s in signs):
            add((f"At the penultimate layer every model with MSSA ({_names(mssa)}) segments clearly "
                 f"better than every model with MHSA ({_names(mhsa)}), Fig. 13's point that the "
                 "segmenting maps come with the MSSA block.", "agree"))
        elif any(s < 0 for s in signs):
            reversed_ = []
            for b in mhsa:
                beaten = [a for a in mssa if compare(seg_pen[b], seg_pen[a]) > 0]
                if beaten:
                    reversed_.append(f"{VARIANTS[b].label} segments clearly better than {_names(beaten)}")
            add((f"At the penultimate layer {'; '.join(reversed_)}: with MHSA ahead of MSSA there, the "
                 "maps do not sort by the attention block as Fig. 13 suggests.", "disagree"))
        else:
            add((f"At the penultimate layer the models with MSSA ({_names(mssa)}) are not clearly "
                 f"better than all those with MHSA ({_names(mhsa)}): Fig. 13's sorting by the "
                 "attention block is not confirmed at this sample size.", "open"))
    if not out:
        return "Too few of the ablation models are shipped for a comparison yet.", tally
    return " ".join(out), tally


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


@styled
def plot_layer_curves(panels: Mapping[str, Mapping[str, Sequence[float]]],
                      colors: Mapping[str, str] | None = None,
                      references: Mapping[str, Mapping[str, float]] | None = None):
    """One panel per measure, one curve per model over the layers (1-based).

    Args:
        panels: panel title -> (curve label -> values per layer).
        colors: curve label -> colour (default: matplotlib's cycle).
        references: panel title -> (label -> constant), drawn as dotted horizontal lines.
    """
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(3.3 * n + 1.6, 2.9), squeeze=False)
    for ax, (title, curves) in zip(axes[0], panels.items()):
        for label, values in curves.items():
            x = np.arange(1, len(values) + 1)
            style = dict(color=(colors or {}).get(label), marker="o", ms=3)
            if label.endswith("initialisation"):
                style.update(ls="--", marker=None, color=style["color"] or "grey")
            ax.plot(x, values, label=label, **style)
        for label, value in ((references or {}).get(title) or {}).items():
            ax.axhline(value, ls=":", color="black", lw=1)
            ax.annotate(label, (1, value), xycoords=("axes fraction", "data"), textcoords="offset points",
                        xytext=(-3, 2), ha="right", va="bottom", fontsize=7)
        ax.set_title(title)
        ax.set_xlabel("layer")
        ax.grid(alpha=0.3)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", frameon=False)
    fig.tight_layout(rect=(0, 0, 1 - 1.5 / (3.3 * n + 1.6), 1))
    return fig
