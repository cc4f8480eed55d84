"""The paper's studies as functions that return data (figures: :mod:`cratelib.eval.plots`).

* Fig. 4b / Fig. 6: :func:`layerwise_miou`, :func:`layerwise_maskcut`, :func:`layerwise_pca`;
* Fig. 7 (semantic heads) and Figs. 11-13 (maps): :func:`head_maps`;
* Table 1 / Table 2: :func:`compare_models`, each row: MaskCut AP and
  coarse-segmentation mIoU; Fig. 10: :func:`training_snapshots`;
* Figs. 11-12: :func:`add_gaussian_noise` and :func:`noise_study`;
* Table 3: :func:`transfer_table` from fine-tuning results.

Models are loaded modules (cratelib or timm ViTs); data are lists of
:class:`cratelib.eval.sources.Sample`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from cratelib.eval.extract import extract
from cratelib.eval.maskcut_eval import evaluate_maskcut, run_maskcut
from cratelib.eval.ncut import Solver
from cratelib.eval.pca import pca_grey_rgb
from cratelib.eval.segmentation import CoarseSegResult, coarse_segmentation
from cratelib.eval.sources import Sample
from cratelib.eval.threshold import ThresholdMode

Model = torch.nn.Module


def _layers(model: Model, layers: Sequence[int] | None) -> list[int]:
    return list(range(len(model.blocks))) if layers is None else list(layers)


def layerwise_miou(
    model: Model,
    samples: list[Sample],
    layers: Sequence[int] | None = None,
    img_size: int = 224,
    p: float = 0.6,
    mode: ThresholdMode = "top-entries",
    device: str = "cpu",
) -> CoarseSegResult:
    """Coarse-segmentation mIoU (eqs. 13-14) of every layer (Fig. 4b at the last, Fig. 6 per layer)."""
    labels = [s.labels for s in samples]
    if any(lab is None for lab in labels):
        raise ValueError("layerwise_miou needs samples with label maps (VOC data)")
    ex = extract(model, [s.image for s in samples], _layers(model, layers), img_size,
                 what=("attention",), device=device)
    return coarse_segmentation(ex.attention, labels, p, mode)


def layerwise_maskcut(
    model: Model,
    samples: list[Sample],
    gt: dict | str | Path,
    layers: Sequence[int] | None = None,
    img_size: int = 480,
    crf: bool = False,
    solver: Solver = "auto",
    device: str = "cpu",
) -> dict[int, dict]:
    """Class-agnostic COCO AP of MaskCut with each layer's features (Fig. 6)."""
    layers = _layers(model, layers)
    ex = extract(model, [s.image for s in samples], layers, img_size, what=("features",), device=device)
    return {
        l: evaluate_maskcut(run_maskcut(ex.features[l], ex.grid, samples, solver=solver, crf=crf,
                                        device=device), gt)
        for l in layers
    }


def layerwise_pca(
    model: Model,
    samples: list[Sample],
    layers: Sequence[int] | None = None,
    img_size: int = 224,
    device: str = "cpu",
) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """Per layer, PC1 grey and PCs 2-4 RGB over all images (Figs. 6, 10): ``l -> (grey, rgb)``."""
    layers = _layers(model, layers)
    ex = extract(model, [s.image for s in samples], layers, img_size, what=("features",), device=device)
    return {l: pca_grey_rgb(ex.features[l], ex.grid) for l in layers}


def head_maps(
    model: Model,
    images: list[np.ndarray],
    layer: int = -2,
    img_size: int = 224,
    scale: float | None = None,
    device: str = "cpu",
) -> torch.Tensor:
    """Every head's CLS map (eq. 10/11) of ``layer``: ``(J, H, h, w)``.

    Fig. 7's "semantic heads" and Fig. 13 use the penultimate layer (default
    ``-2``); Fig. 14 uses the last layer for ViTs; Figs. 11-12 layer 10.
    """
    return extract(model, images, [layer], img_size, what=("attention",), scale=scale,
                   device=device).attention[layer]


def compare_models(
    models: Mapping[str, Model],
    voc: list[Sample] | None = None,
    coco: list[Sample] | None = None,
    coco_gt: dict | str | Path | None = None,
    seg_layer: int = -1,
    det_layer: int = -1,
    seg_img_size: int = 224,
    det_img_size: int = 480,
    crf: bool = False,
    mode: ThresholdMode = "top-entries",
    device: str = "cpu",
) -> list[dict]:
    """One row per model (Table 1, Table 2, Fig. 10 with training snapshots as "models").

    Row keys: ``model``; with ``coco`` and ``coco_gt``: ``det_AP50, det_AP75,
    det_AP, seg_AP50, seg_AP75, seg_AP`` (percent, MaskCut without CRF unless
    ``crf``); with ``voc``: ``voc_miou`` (percent, eq. 14 at ``seg_layer``).
    """
    rows = []
    for name, model in models.items():
        row: dict = {"model": name}
        if coco is not None:
            if coco_gt is None:
                raise ValueError("compare_models: coco samples given without coco_gt")
            scores = layerwise_maskcut(model, coco, coco_gt, [det_layer], det_img_size, crf, device=device)
            result = scores[det_layer]["crf" if crf else "no_crf"]
            for kind, key in (("det", "bbox"), ("seg", "segm")):
                for metric, value in result[key].items():
                    row[f"{kind}_{metric}"] = 100 * value
        if voc is not None:
            row["voc_miou"] = 100 * layerwise_miou(model, voc, [seg_layer], seg_img_size, mode=mode,
                                                   device=device).miou[seg_layer]
        rows.append(row)
    return rows


def training_snapshots(
    snapshots: Mapping[str, Model],
    coco: list[Sample],
    coco_gt: dict | str | Path,
    pca_samples: list[Sample] | None = None,
    layer: int = -1,
    det_img_size: int = 480,
    pca_img_size: int = 224,
    device: str = "cpu",
) -> tuple[list[dict], dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    """Fig. 10: MaskCut detection AP and PCA of ``layer`` for each training snapshot.

    Args:
        snapshots: ``label -> model`` in training order (e.g. "init", "epoch 2", ...).
        coco, coco_gt: detection data and its ground truth.
        pca_samples: images for the PCA panels (default: the first 4 of ``coco``).

    Returns:
        ``(rows, pca)``: rows as :func:`compare_models` (``model`` = label) and
        ``label -> (grey (J, h, w), rgb (J, h, w, 3))``.
    """
    rows = compare_models(snapshots, coco=coco, coco_gt=coco_gt, det_layer=layer,
                          det_img_size=det_img_size, device=device)
    images = pca_samples if pca_samples is not None else coco[:4]
    pca = {label: layerwise_pca(model, images, [layer], pca_img_size, device)[layer]
           for label, model in snapshots.items()}
    return rows, pca


def add_gaussian_noise(image: np.ndarray, sigma: float, fraction: float = 0.5, seed: int = 0) -> np.ndarray:
    """Figs. 11-12: add ``N(0, sigma^2)`` (0-255 scale) to a random ``fraction`` of the pixels.

    A chosen pixel gets independent noise on each of its 3 channels; the
    result is rounded and clipped to uint8.

    Args:
        image: ``(H, W, 3)`` uint8.
        sigma: noise standard deviation in grey levels (paper: 10, 25, 50, 75).
        fraction: share of pixels that are perturbed (paper: 0.1-0.75).
        seed: seed of the pixel choice and the noise.
    """
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.dtype} {image.shape}")
    if sigma < 0 or not 0 <= fraction <= 1:
        raise ValueError(f"need sigma >= 0 and fraction in [0, 1], got sigma={sigma}, fraction={fraction}")
    rng = np.random.default_rng(seed)
    chosen = rng.random(image.shape[:2]) < fraction
    noise = rng.normal(0.0, sigma, image.shape) * chosen[..., None]
    return np.clip(np.rint(image + noise), 0, 255).astype(np.uint8)


def noise_study(
    model: Model,
    image: np.ndarray,
    settings: Sequence[tuple[float, float]] = ((10, 0.5), (25, 0.5), (50, 0.5), (75, 0.5)),
    layer: int = 9,
    img_size: int = 224,
    seed: int = 0,
    device: str = "cpu",
) -> list[dict]:
    """Maps of every head of ``layer`` under noise (Fig. 11: sigma at 50 %; Fig. 12: sigma 75 at 10-75 %).

    ``layer=9`` is the paper's "layer 10" (1-based).  Each entry: ``sigma``,
    ``fraction``, ``image`` (noisy uint8), ``maps`` ``(H, h, w)``; the first
    entry is the clean image (sigma 0).
    """
    settings = [(0.0, 0.0), *settings]
    noisy = [add_gaussian_noise(image, s, f, seed) for s, f in settings]
    maps = head_maps(model, noisy, layer, img_size, device=device)
    return [{"sigma": s, "fraction": f, "image": im, "maps": m}
            for (s, f), im, m in zip(settings, noisy, maps)]


def transfer_table(
    results: Mapping[str, Mapping[str, float]],
    params_m: Mapping[str, float] | None = None,
) -> list[dict]:
    """Table 3: rows ``{"dataset", <model>: top-1, ...}`` (plus a ``# parameters`` row).

    Args:
        results: ``model -> data set -> top-1 accuracy`` (percent).
        params_m: ``model -> parameters in millions`` (first row if given).
    """
    models = list(results)
    datasets: list[str] = []
    for per_model in results.values():
        datasets += [d for d in per_model if d not in datasets]
    rows = []
    if params_m is not None:
        rows.append({"dataset": "# parameters (M)", **{m: params_m.get(m, float("nan")) for m in models}})
    for d in datasets:
        rows.append({"dataset": d, **{m: results[m].get(d, float("nan")) for m in models}})
    return rows


def format_table(rows: list[dict], columns: Sequence[str] | None = None, digits: int = 1) -> str:
    """Markdown table of ``rows`` (floats rounded to ``digits``; ``nan`` shown as ``-``)."""
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
