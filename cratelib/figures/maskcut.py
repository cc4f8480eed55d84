"""Figures and measurements of the MaskCut chapter (book chapter 10; the paper's Alg. 4, Table 1,
Fig. 5).

MaskCut itself lives in :mod:`cratelib.eval`: the normalized cut (:mod:`~cratelib.eval.ncut`),
Algorithm 4 (:func:`~cratelib.eval.maskcut.maskcut`), the CRF (:mod:`~cratelib.eval.crf`) and the
COCO scoring (:mod:`~cratelib.eval.maskcut_eval`, :mod:`~cratelib.eval.coco_eval`). This module
arranges them for the chapter:

* :func:`embedded_coco` - the embedded data's COCO-format export (1-3 objects per image);
* :func:`patch_features`, :func:`pixel_features` - a layer's patch features, or the raw pixels
  of each patch (an unlearned baseline);
* :func:`explain_cut` - the decisions of one cut (bipartition, seed, corner rule), step by step;
* :func:`plot_graph`, :func:`plot_cuts`, :func:`plot_crf`, :func:`plot_detections`,
  :func:`plot_maskcut_detail` - the chapter's figures;
* :func:`maskcut_ap` - MaskCut over a COCO-format set with timings, class-agnostic AP in percent;
* :func:`table1_rows` - the paper's Table 1 beside the book's numbers;
* :func:`time_solvers` - one normalized-cut solve, dense vs sparse eigensolver.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from cratelib.eval.coco_eval import class_agnostic_coco
from cratelib.eval.extract import extract, to_model_input
from cratelib.eval.maskcut import MaskCutResult, num_corners, upsample_mask
from cratelib.eval.maskcut_eval import crf_detections, evaluate_maskcut, run_maskcut
from cratelib.eval.metrics import iou
from cratelib.eval.ncut import dense_affinity, second_eigenvector
from cratelib.eval.plots import overlay_masks
from cratelib.eval.reference import TABLE1_COCO_MASKCUT
from cratelib.eval.sources import Sample, coco_samples, embedded_root
from cratelib.figures.style import contour, no_ticks, single_thread, styled
from cratelib.io import cache_home

__all__ = [
    "embedded_coco",
    "gt_masks",
    "patch_features",
    "pixel_features",
    "CutExplanation",
    "explain_cut",
    "plot_graph",
    "plot_cuts",
    "plot_crf",
    "plot_detections",
    "plot_maskcut_detail",
    "APResult",
    "maskcut_ap",
    "table1_rows",
    "time_solvers",
    "solver_for",
]

METRIC_COLUMNS = ("det AP50", "det AP75", "det AP", "seg AP50", "seg AP75", "seg AP")


def embedded_coco(num_images: int, cache_dir: str | Path | None = None) -> tuple[list[Sample], Path]:
    """The embedded data in COCO format: ``num_images`` samples and the instances JSON.

    More than 8 images: a synthetic val set of 224 px images with 1-3 objects each
    (:func:`cratelib.eval.sources.embedded_root`), exported once into ``cache_dir`` (default: the
    evaluation command's cache). Up to 8: the shipped 224 px sample.
    """
    root = embedded_root(num_images, cache_dir or cache_home("eval", "data"))
    return coco_samples(root, "val2017", num_images)


def gt_masks(gt: str | Path | dict, image_id: int) -> list[np.ndarray]:
    """The ground-truth object masks ``(H, W)`` bool of one image of a COCO instances file."""
    coco = class_agnostic_coco(gt)
    return [coco.annToMask(a).astype(bool) for a in coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))]


def patch_features(model: torch.nn.Module, images: Sequence[np.ndarray], img_size: int | None = None,
                   layer: int = -1, device: str | torch.device = "cpu") -> tuple[torch.Tensor, tuple[int, int]]:
    """Patch features of one layer, MaskCut's input: ``((J, N, D), grid)``.

    CRATE: the heads' ``U_k^T z_i`` concatenated, so that their inner product is the paper's
    ``M_ij = sum_k <U_k^T z_i, U_k^T z_j>`` (App. B.4); ViT: the keys. ``img_size`` other than
    the model's own needs a model built for it (e.g. ``load_zoo_model(name, img_size=128)``).
    """
    size = img_size or model.config.img_size
    ex = extract(model, list(images), [layer], size, what=("features",), device=device)
    return ex.features[layer], ex.grid


def pixel_features(images: Sequence[np.ndarray], img_size: int, patch: int = 8
                   ) -> tuple[torch.Tensor, tuple[int, int]]:
    """The raw, ImageNet-normalised pixels of each patch as its feature, ``((J, N, 3 P^2), grid)``:
    MaskCut with no network at all, the baseline of what the images alone give away."""
    x = to_model_input(list(images), img_size)  # (J, 3, S, S)
    g = img_size // patch
    cols = x.unfold(2, patch, patch).unfold(3, patch, patch)  # (J, 3, g, g, P, P)
    feats = cols.permute(0, 2, 3, 1, 4, 5).reshape(len(images), g * g, -1)
    return feats, (g, g)


@dataclass
class CutExplanation:
    """The decisions of one normalized cut (steps 2-4 of Alg. 4, as
    :func:`cratelib.eval.maskcut.choose_foreground` makes them).

    Attributes:
        positive: ``(h, w)`` bool, ``x > mean(x)``: one side of the bipartition.
        seed: ``(row, col)`` of ``argmax |x|``, the most confident patch.
        side: ``(h, w)`` bool, the side holding the seed.
        corners: how many of the 4 grid corners ``side`` holds.
        flipped: the corner rule rejected the seed's side and took the other one.
        rejected: both sides hold too many corners: the cut gives no object.
        mask: ``(h, w)`` bool, the connected component kept (empty when rejected).
    """

    positive: np.ndarray
    seed: tuple[int, int]
    side: np.ndarray
    corners: int
    flipped: bool
    rejected: bool
    mask: np.ndarray


def explain_cut(x: np.ndarray, corner_limit: int = 3) -> CutExplanation:
    """Replay steps 2-4 of Alg. 4 on an ``(h, w)`` normalized-cut vector, keeping every decision."""
    import scipy.ndimage

    x = np.asarray(x, dtype=float)
    h, w = x.shape
    positive = x > x.mean()
    seed = int(np.argmax(np.abs(x)))
    sign = 1.0 if positive.flat[seed] else -1.0
    side = positive if sign > 0 else ~positive
    corners = num_corners(side)
    flipped = rejected = False
    chosen = side
    if corners >= corner_limit:
        flipped, sign, chosen = True, -sign, ~side
        rejected = num_corners(chosen) >= corner_limit
    if rejected:
        mask = np.zeros((h, w), dtype=bool)
    else:
        extreme = int(np.argmax(sign * x))
        labels, _ = scipy.ndimage.label(chosen)
        mask = labels == labels.flat[extreme]
    return CutExplanation(positive, divmod(seed, w), side, corners, flipped, rejected, mask)


def _grid_lines(ax, grid: tuple[int, int], size: tuple[int, int]) -> None:
    for r in range(1, grid[0]):
        ax.axhline(r * size[0] / grid[0] - 0.5, color="white", lw=0.3, alpha=0.5)
    for c in range(1, grid[1]):
        ax.axvline(c * size[1] / grid[1] - 0.5, color="white", lw=0.3, alpha=0.5)


def _overlay(ax, image: np.ndarray, masks: Sequence[np.ndarray], truths: Sequence[np.ndarray] = ()) -> None:
    ax.imshow(image)
    for t in truths:
        contour(ax, t, "white", 0.8)
    overlay_masks(ax, masks, lw=1.5)


@styled
def plot_graph(image: np.ndarray, features: torch.Tensor, grid: tuple[int, int], tau: float = 0.15,
               eps: float = 1e-5, truths: Sequence[np.ndarray] = ()):
    """The first cut's graph: the image on its patch grid, the cosine similarities, the affinity
    ``W`` (thresholded at ``tau``) with patches ordered by the cut vector ``x``, and ``x`` on the
    grid with its bipartition outlined.

    Args:
        image: ``(H, W, 3)`` uint8.
        features: ``(N, D)`` patch features, ``N = h w``.
        grid: ``(h, w)``.
        tau, eps: the affinity's threshold and floor (:mod:`cratelib.eval.ncut`).
        truths: ``(H, W)`` bool true object masks, outlined in white.
    """
    fn = torch.nn.functional.normalize(torch.as_tensor(features).double(), dim=1)
    cos = (fn @ fn.T).numpy()
    w = dense_affinity(features, tau, eps).numpy()
    x, lam = second_eigenvector(features, tau, eps, solver="dense")
    order = np.argsort(x)
    size = image.shape[:2]
    fig, axes = plt.subplots(1, 4, figsize=(10, 2.7))
    axes[0].imshow(image)
    _grid_lines(axes[0], grid, size)
    for t in truths:
        contour(axes[0], t, "white")
    axes[0].set_title(f"image, {grid[0]}x{grid[1]} patches")
    im = axes[1].imshow(cos, cmap="RdBu_r", vmin=-1, vmax=1)
    fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.03)
    axes[1].set_title("cosine $C_{ij}$ (row-major patches)")
    axes[2].imshow(w[np.ix_(order, order)], cmap="Greys", vmin=0, vmax=1, interpolation="nearest")
    axes[2].set_title(f"$W$ ($C>\\tau={tau}$), sorted by $x$")
    xm = x.reshape(grid)
    lim = np.abs(xm).max()
    im = axes[3].imshow(xm, cmap="coolwarm", vmin=-lim, vmax=lim)
    contour(axes[3], xm > xm.mean(), "black", 1.2)
    fig.colorbar(im, ax=axes[3], fraction=0.046, pad=0.03)
    axes[3].set_title(f"cut vector $x$, $\\lambda_2$ = {lam:.3f}")
    no_ticks(axes)
    fig.tight_layout()
    return fig


@styled
def plot_cuts(image: np.ndarray, result: MaskCutResult, corner_limit: int = 3,
              truths: Sequence[np.ndarray] = ()):
    """Alg. 4 step by step: one row per cut with the patches still in play, the cut vector ``x``
    (seed marked with a star, the bipartition ``x > mean(x)`` outlined), the side the corner rule
    picks, and the object kept, drawn on the image.

    Args:
        image: ``(H, W, 3)`` uint8.
        result: :func:`cratelib.eval.maskcut.maskcut` output for the image.
        corner_limit: the corner rule used for ``result``.
        truths: true object masks ``(H, W)``, outlined in white in the last column.
    """
    n = len(result.masks)
    grid = result.masks.shape[1:]
    size = image.shape[:2]
    fig, axes = plt.subplots(n, 4, figsize=(8.4, 2.15 * n), squeeze=False)
    taken = np.zeros(grid, dtype=bool)
    for i in range(n):
        x = result.eigenvectors[i]
        ex = explain_cut(x, corner_limit)
        ax = axes[i]
        ax[0].imshow(image.astype(float) / 255 * np.where(upsample_mask(taken, size), 0.2, 1.0)[..., None])
        ax[0].set_ylabel(f"cut {i + 1}")
        ax[0].set_title("in play" if i else "all patches")
        lim = np.abs(x).max()
        ax[1].imshow(x, cmap="coolwarm", vmin=-lim, vmax=lim)
        contour(ax[1], ex.positive, "black", 1.0)
        ax[1].plot(ex.seed[1], ex.seed[0], marker="*", color="yellow", ms=11, mec="black")
        ax[1].set_title(f"$x$, $\\lambda$ = {result.eigenvalues[i]:.3f}")
        ax[2].imshow(ex.side, cmap="Greys_r", vmin=0, vmax=1)
        rule = ("both sides hold corners: none" if ex.rejected else
                "seed side: {} corners, flip".format(ex.corners) if ex.flipped else
                f"seed side, {ex.corners} corner{'s' * (ex.corners != 1)}")
        ax[2].set_title(rule)
        ax[2].plot(ex.seed[1], ex.seed[0], marker="*", color="yellow", ms=11, mec="black")
        shown = result.masks[i]
        _overlay(ax[3], image, [np.zeros(size, bool)] * i + [upsample_mask(shown, size)], truths)
        ax[3].set_title("object kept" if shown.any() else "no object kept")
        taken |= result.masks[i]
    no_ticks(axes)
    fig.tight_layout(pad=0.4)
    return fig


@styled
def plot_crf(image: np.ndarray, coarse: Sequence[np.ndarray], refined: Sequence[np.ndarray | None],
             truths: Sequence[np.ndarray] = ()):
    """Before / after the CRF: the coarse (patch) masks, and their refinements (``None`` = dropped
    as implausible), with the IoU of each against its best-matching true object in the titles."""
    def best(m):
        return max((iou(m, t) for t in truths), default=float("nan"))

    fig, axes = plt.subplots(1, 2, figsize=(5.6, 2.9))
    kept = [m for m in coarse if m.any()]
    _overlay(axes[0], image, kept, truths)
    axes[0].set_title("MaskCut: " + ", ".join(f"{best(m):.2f}" for m in kept) + " IoU")
    after = [r if r is not None else np.zeros(image.shape[:2], bool) for r in refined]
    _overlay(axes[1], image, after, truths)
    axes[1].set_title("after CRF: " + ", ".join("dropped" if r is None else f"{best(r):.2f}" for r in refined))
    no_ticks(axes)
    fig.tight_layout()
    return fig


@styled
def plot_detections(images: Sequence[np.ndarray], masks: Mapping[str, Sequence[Sequence[np.ndarray]]],
                    truths: Sequence[Sequence[np.ndarray]] = ()):
    """A grid: rows = methods (``masks[name][j]`` = image ``j``'s masks at image size), columns =
    images, with the true objects outlined in white (the paper's Fig. 5 layout)."""
    names = list(masks)
    J = len(images)
    fig, axes = plt.subplots(len(names), J, figsize=(1.35 * J, 1.45 * len(names)), squeeze=False)
    for r, name in enumerate(names):
        for j, image in enumerate(images):
            _overlay(axes[r, j], image, masks[name][j], truths[j] if truths else ())
        axes[r, 0].set_ylabel(name, fontsize=8)
    no_ticks(axes)
    fig.tight_layout(pad=0.3, w_pad=0.2, h_pad=0.3)
    return fig


@styled
def plot_maskcut_detail(image: np.ndarray, result: MaskCutResult, truths: Sequence[np.ndarray] = (),
                        title: str = ""):
    """The widget's figure: the first cut vector and the objects MaskCut keeps, with the IoU of each
    against its best-matching true object."""
    size = image.shape[:2]
    fig, axes = plt.subplots(1, 2, figsize=(5.6, 2.9))
    x = result.eigenvectors[0]
    lim = np.abs(x).max()
    axes[0].imshow(x, cmap="coolwarm", vmin=-lim, vmax=lim)
    contour(axes[0], x > x.mean(), "black")
    axes[0].set_title("first cut vector $x$")
    up = [upsample_mask(m, size) for m in result.masks]
    _overlay(axes[1], image, up, truths)
    scores = [max((iou(m, t) for t in truths), default=float("nan")) for m in up if m.any()]
    axes[1].set_title(f"{len(scores)} object(s); IoU " + ", ".join(f"{s:.2f}" for s in scores))
    no_ticks(axes)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


@dataclass
class APResult:
    """Class-agnostic COCO AP of MaskCut on a set of images.

    Attributes:
        ap: ``{"no_crf": {"det AP50": ..., ...}, "crf": {...}}`` in percent (the paper's unit);
            ``"crf"`` only when it was run.
        seconds: ``{"maskcut": ..., "crf": ..., "coco": ...}`` wall time of each phase.
        patch_masks: per image, the ``(n, h, w)`` masks.
        detections: the COCO results without / with CRF.
    """

    ap: dict[str, dict[str, float]]
    seconds: dict[str, float]
    patch_masks: list[np.ndarray] = field(default_factory=list)
    detections: dict[str, list[dict]] = field(default_factory=dict)


def _percent(scores: dict[str, dict[str, float]]) -> dict[str, float]:
    names = {"bbox": "det", "segm": "seg"}
    return {f"{names[t]} {m}": 100 * v for t, per in scores.items() for m, v in per.items()}


def maskcut_ap(features: torch.Tensor, grid: tuple[int, int], samples: Sequence[Sample], gt: str | Path | dict,
               num_objects: int = 3, tau: float = 0.15, crf: bool = False, crf_size: int = 480,
               solver: str = "auto", device: str | torch.device = "cpu") -> APResult:
    """Alg. 4 on every image, optionally the CRF, then class-agnostic COCO AP (Table 1), timed.

    Args:
        features: ``(J, N, D)`` patch features (:func:`patch_features`).
        grid: patch grid ``(h, w)``.
        samples: the J images (ids and sizes), in the order of ``features``.
        gt: their COCO instances JSON.
        num_objects, tau: MaskCut's n and affinity threshold (paper: 3, 0.15).
        crf: also score the CRF-refined masks (Table 1 is without).
        crf_size: side of the square image the CRF runs on (official: 480).
        solver, device: where and how the cuts are solved (:func:`cratelib.eval.maskcut.maskcut`).
    """
    t0 = time.perf_counter()
    cpu = torch.device(device).type == "cpu"
    with single_thread() if cpu else contextlib.nullcontext():
        run = run_maskcut(features, grid, list(samples), num_objects, tau, solver=solver, crf=False,
                          device=device)
    seconds = {"maskcut": time.perf_counter() - t0}
    if crf:
        t0 = time.perf_counter()
        run.detections_crf = [d for masks, s in zip(run.patch_masks, samples)
                              for d in crf_detections(masks, s, crf_size)]
        seconds["crf"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    scores = evaluate_maskcut(run, gt)
    seconds["coco"] = time.perf_counter() - t0
    dets = {"no_crf": run.detections}
    if run.detections_crf is not None:
        dets["crf"] = run.detections_crf
    return APResult({k: _percent(v) for k, v in scores.items()}, seconds, run.patch_masks, dets)


def table1_rows(ours: Mapping[str, Mapping[str, float]], source: str = "this book",
                reference: Mapping[str, Mapping[str, Sequence[float]]] = TABLE1_COCO_MASKCUT,
                paper_models: Sequence[str] | None = None) -> list[dict]:
    """Rows for :func:`cratelib.eval.studies.format_table`: the paper's Table 1, then ours.

    Args:
        ours: ``{model: {"det AP50": ..., ...}}`` in percent (``APResult.ap["no_crf"]``).
        source: the label of our rows' data column.
        reference: the paper's ``{model: {"det": (AP50, AP75, AP), "seg": (...)}}``.
        paper_models: which of the paper's models to list (default: all).
    """
    rows = []
    for name in paper_models or list(reference):
        det, seg = reference[name]["det"], reference[name]["seg"]
        rows.append({"model": name, "data": "paper: COCO val2017, 480 px",
                     **dict(zip(METRIC_COLUMNS, [*map(float, det), *map(float, seg)]))})
    for name, metrics in ours.items():
        missing = set(METRIC_COLUMNS) - set(metrics)
        if missing:
            raise KeyError(f"{name}: missing metrics {sorted(missing)}")
        rows.append({"model": name, "data": source, **{c: float(metrics[c]) for c in METRIC_COLUMNS}})
    return rows


def solver_for(grid: tuple[int, int], device: str | torch.device = "cpu", dense_up_to: int = 100) -> str:
    """The fastest normalized-cut solver for a grid: ``"torch"`` (``eigh``) on a CUDA device, else
    the official dense ``"dense"`` for at most ``dense_up_to`` patches (LAPACK on a 64 x 64 matrix
    takes well under a millisecond, ARPACK's set-up alone far more) and ``"sparse"`` above it. All
    three return the same cut (:mod:`cratelib.eval.ncut`)."""
    if torch.device(device).type == "cuda":
        return "torch"
    return "dense" if grid[0] * grid[1] <= dense_up_to else "sparse"


def time_solvers(features: torch.Tensor, solvers: Sequence[str] = ("dense", "sparse"), repeats: int = 5,
                 tau: float = 0.15) -> dict[str, float]:
    """Median wall time (seconds) of one normalized-cut solve of ``(N, D)`` features per solver on
    one thread (:func:`single_thread`), after checking that the solvers agree on the cut (the same
    bipartition up to sign)."""
    times, cuts = {}, {}
    for solver in solvers:
        runs = []
        with single_thread():
            for _ in range(repeats):
                t0 = time.perf_counter()
                x, _ = second_eigenvector(features, tau, solver=solver)
                runs.append(time.perf_counter() - t0)
        times[solver] = float(np.median(runs))
        cuts[solver] = x > x.mean()
    first = next(iter(cuts.values()))
    for solver, cut in cuts.items():
        agree = max((cut == first).mean(), (cut != first).mean())
        if agree < 0.95:
            raise RuntimeError(f"solver {solver} disagrees with {solvers[0]} on {1 - agree:.0%} of the patches")
    return times
