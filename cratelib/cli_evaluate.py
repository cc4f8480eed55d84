"""``python -m cratelib evaluate {attention,pca,coarse-seg,maskcut}``: figures (PNG) and metrics (JSON).

The command parses its arguments, loads the model and the data, calls the same driver the
chapters call (:func:`~cratelib.eval.extract.layer_maps`, :func:`~cratelib.eval.extract.layer_features`,
:func:`~cratelib.eval.segmentation.layerwise_miou`, :func:`~cratelib.eval.maskcut_eval.layerwise_maskcut`)
and writes what it returns. Inputs are resized to the model's own resolution unless
``--img-size`` says otherwise (the paper's MaskCut runs at 480 px: ``--img-size 480``).

Wire-up (in ``cratelib/cli.py``)::

    from cratelib.cli_evaluate import add_evaluate_parser, run_evaluate
    add_evaluate_parser(subparsers)      # adds "evaluate" with set_defaults(func=run_evaluate)

Examples::

    python -m cratelib evaluate attention --model data/checkpoints/crate.pt --data embedded
    python -m cratelib evaluate coarse-seg --model runs/crate.pt --data voc --root ~/data/VOCdevkit
    python -m cratelib evaluate maskcut --model vit_small_patch8 --data coco --root ~/data/coco --img-size 480

Extracted features are cached in ``--cache-dir`` under a key made of the
model's identity (checkpoint SHA-256, or name + seed + weight hash for random
weights), the images' pixels and the extraction settings; a second run with
the same key skips the forward passes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import torch

from cratelib.eval.coco_eval import write_detections
from cratelib.eval.crf import available as crf_available
from cratelib.eval.extract import FeatureCache, layer_features, layer_maps, load_model, model_img_size
from cratelib.eval.localisation import mass_coverage
from cratelib.eval.maskcut import upsample_mask
from cratelib.eval.maskcut_eval import layerwise_maskcut
from cratelib.eval.pca import pca_foreground, pca_grey_rgb
from cratelib.eval.segmentation import layerwise_miou
from cratelib.eval.sources import Sample, coco_samples, embedded_root, folder_samples, voc_samples
from cratelib.figures.attention import plot_images_heads
from cratelib.figures.curves import plot_layerwise
from cratelib.figures.maskcut import plot_detections
from cratelib.figures.pca_maps import plot_pca
from cratelib.io import atomic_write, atomic_write_json, cache_home
from cratelib.models.catalogue import model_primary_layer
from cratelib.trace import num_layers, patch_size

TASKS = ("attention", "pca", "coarse-seg", "maskcut")
DATA = ("embedded", "voc", "coco", "folder")
# None: all layers; "primary": the model's pre-named layer (CRATE's penultimate, a ViT's last)
DEFAULT_LAYER = {"attention": "primary", "pca": -1, "coarse-seg": None, "maskcut": -1}
MAX_FIGURES = 8


class UsageError(ValueError):
    """Arguments that do not fit together, or a model/data set that cannot be found."""


def add_evaluate_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``evaluate`` command to ``subparsers``; it dispatches to :func:`run_evaluate`."""
    p = subparsers.add_parser(
        "evaluate", help="App. B evaluations: attention maps, PCA, coarse segmentation, MaskCut",
        description="Run one of the paper's unsupervised evaluations (Appendix B) and write "
        "PNG figures and a metrics JSON to --out.",
    )
    p.add_argument("task", choices=TASKS)
    p.add_argument("--model", required=True,
                   help="cratelib checkpoint path, a registered cratelib / timm model name (random weights), "
                   "or timm:<name> for timm's pretrained weights (e.g. timm:vit_small_patch8_224.dino)")
    p.add_argument("--data", choices=DATA, default="embedded",
                   help="embedded: the synthetic shapes (no download); voc/coco/folder need --root")
    p.add_argument("--root", type=Path, help="data root for voc, coco or folder")
    p.add_argument("--split", help="VOC list name (default val) or COCO split (default val2017)")
    p.add_argument("--layer", type=int, help="block index from 0, negatives from the end (default: "
                   "attention the model's pre-named layer: CRATE's penultimate, a ViT's last; pca and maskcut -1, "
                   "coarse-seg all layers); figures number layers from 1")
    p.add_argument("--img-size", type=int, help="square input size (default: the model's own training size; "
                   "the paper's MaskCut uses 480)")
    p.add_argument("--num-images", type=int, default=8, help="first N images of the data (default 8)")
    p.add_argument("--out", type=Path, default=Path("runs/eval"), help="output folder")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch-size", type=int, default=8, help="images per forward pass")
    p.add_argument("--seed", type=int, default=0, help="seed of random weights (model names only)")
    p.add_argument("--threshold", type=float, default=0.6, help="P of the map thresholds (paper 0.6)")
    p.add_argument("--mode", choices=("top-entries", "mass"), default="top-entries",
                   help="coarse-seg binarisation: the appendix's top entries or DINO's mass")
    p.add_argument("--scale", type=float, help="softmax scale of eqs. 10-11 (default: the model's p^-0.5)")
    p.add_argument("--tau", type=float, default=0.15, help="MaskCut affinity threshold (paper 0.15)")
    p.add_argument("--solver", choices=("auto", "sparse", "dense", "torch"), default="auto",
                   help="normalized-cut eigensolver (auto: torch on CUDA, else sparse)")
    p.add_argument("--crf", action=argparse.BooleanOptionalAction, default=True,
                   help="also score CRF-refined MaskCut masks (Table 1 is without)")
    p.add_argument("--cache-dir", type=Path, default=cache_home("eval"))
    p.add_argument("--no-cache", action="store_true", help="neither read nor write the feature cache")
    p.set_defaults(func=run_evaluate)
    return p


def _load_data(args: argparse.Namespace) -> tuple[list[Sample], Path | None]:
    """Samples and, for COCO-format data, the instances JSON."""
    n = args.num_images
    if args.data == "embedded":
        root = embedded_root(n, args.cache_dir / "data")
        if args.task == "maskcut":
            return coco_samples(root, "val2017", n)
        return voc_samples(root, "val", n), None
    if args.root is None:
        raise UsageError(f"--data {args.data} needs --root PATH")
    if args.data == "voc":
        return voc_samples(args.root, args.split or "val", n), None
    if args.data == "coco":
        return coco_samples(args.root, args.split or "val2017", n)
    return folder_samples(args.root, n), None


def _progress_bars() -> bool:
    """Progress bars on a terminal only: in a notebook kernel tqdm.auto draws ipywidgets, which the
    static book cannot show (a blank output with no text in its place)."""
    return sys.stderr.isatty()


def _save(fig, path: Path) -> str:
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)
    return path.name


def _attention(args, model, samples, layer, img_size, cache, out: Path) -> dict:
    maps = layer_maps(model, [s.image for s in samples], [layer], img_size, args.scale, args.device, cache,
                      progress=_progress_bars(), batch_size=args.batch_size)[0]
    k = min(len(samples), MAX_FIGURES)
    fig = plot_images_heads([s.image for s in samples[:k]], maps[:k], mass=args.threshold,
                            row_labels=[s.name for s in samples[:k]],
                            title=f"CLS attention, layer {layer % num_layers(model) + 1}")
    coverage = mass_coverage(maps, args.threshold)  # (J, K): share of patches holding the mass
    return {"figures": [_save(fig, out / "attention.png")], "mass_mask_coverage_per_head": coverage.mean(0).tolist()}


def _pca(args, model, samples, layer, img_size, cache, out: Path) -> dict:
    feats, grid = layer_features(model, [s.image for s in samples], [layer], img_size, args.device, cache,
                                 progress=_progress_bars(), batch_size=args.batch_size)
    rgb, fg = pca_foreground(feats[0], grid)
    grey, rgb4 = pca_grey_rgb(feats[0], grid)
    k = min(len(samples), MAX_FIGURES)
    images = [s.image for s in samples[:k]]
    name = f"layer {layer % num_layers(model) + 1}"
    files = [_save(plot_pca(images, rgb[:k], title=f"eq. 12, {name}"), out / "pca_eq12.png"),
             _save(plot_pca(images, rgb4[:k], grey[:k], title=f"PC1 / PCs 2-4, {name}"), out / "pca_pc1_pc234.png")]
    return {"figures": files, "foreground_fraction": fg.float().flatten(1).mean(1).tolist()}


def _coarse_seg(args, model, samples, img_size, cache, out: Path) -> dict:
    res = layerwise_miou(model, samples, None, img_size, args.threshold, args.mode, args.scale, args.device, cache,
                         progress=_progress_bars(), batch_size=args.batch_size)
    fig = plot_layerwise({"eq. 14 mIoU": res.miou, "fg/bg mIoU": res.fg_miou}, "mIoU",
                         title=f"coarse segmentation ({args.mode}, P={args.threshold})")
    return {
        "figures": [_save(fig, out / "coarse_seg_layers.png")],
        "miou": {str(l): v for l, v in res.miou.items()},
        "fg_miou": {str(l): v for l, v in res.fg_miou.items()},
        "best_heads": {str(l): v.tolist() for l, v in res.best_heads.items()},
        "best_layer": max(res.miou, key=lambda l: -1 if res.miou[l] != res.miou[l] else res.miou[l]),
    }


def _maskcut(args, model, samples, layer, img_size, cache, gt: Path | None, out: Path) -> dict:
    result = layerwise_maskcut(model, samples, gt, [layer], img_size, args.crf, args.solver, args.tau,
                               device=args.device, cache=cache, progress=_progress_bars(), batch_size=args.batch_size)[layer]
    run = result.run
    metrics: dict = {"detections": write_detections(run.detections, out / "detections.json").name}
    if run.detections_crf is not None:
        metrics["detections_crf"] = write_detections(run.detections_crf, out / "detections_crf.json").name
    if gt is not None:
        metrics["coco"] = result.scores
    k = min(len(samples), MAX_FIGURES)
    masks = [[upsample_mask(m, s.image.shape[:2]) for m in run.patch_masks[j]] for j, s in enumerate(samples[:k])]
    fig = plot_detections([s.image for s in samples[:k]], {f"layer {layer % num_layers(model) + 1}": masks})
    metrics["figures"] = [_save(fig, out / "maskcut.png")]
    return metrics


def run_evaluate(args: argparse.Namespace) -> int:
    """Run ``args.task``; write ``<out>/<task>/metrics.json`` and figures.

    Returns:
        0 on success, 2 (with a message on stderr) for bad arguments or missing data.
    """
    # Figures go to files (each is closed once saved), drawn with Agg and the caller's backend put
    # back afterwards. Inside a Jupyter kernel the backend is left alone: switching it drops
    # IPython's figure formatter, so that the notebook's later figures show as "<Figure size ...>"
    # text (chapter 14 calls this command in-process).
    switch = "ipykernel" not in sys.modules
    backend = matplotlib.get_backend()
    if switch:
        matplotlib.use("Agg")
    try:
        return _run(args)
    except (UsageError, FileNotFoundError) as err:
        print(f"cratelib evaluate {args.task}: error: {err}", file=sys.stderr)
        return 2
    finally:
        if switch:
            matplotlib.use(backend)


def _run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    if args.task == "coarse-seg" and args.data in ("coco", "folder"):
        raise UsageError(f"coarse-seg needs label maps: use --data voc or embedded, not {args.data}")
    if args.task == "maskcut" and args.crf and not crf_available():
        raise UsageError("--crf needs pydensecrf, which is not installed: `pip install pydensecrf2` "
                         "(or `pip install cratelib[crf]`; on Python 3.13 add `--no-build-isolation` with "
                         "Cython 3 installed), or pass --no-crf (Table 1 is without CRF)")
    samples, gt = _load_data(args)
    try:
        model, model_id = load_model(args.model, args.img_size, args.seed)
    except ValueError as err:
        raise UsageError(str(err)) from err
    img_size = model_img_size(model)
    grid = img_size // patch_size(model)
    cache = None if args.no_cache else FeatureCache(args.cache_dir, model_id)
    layer = args.layer if args.layer is not None else DEFAULT_LAYER[args.task]
    layer = model_primary_layer(model) if layer == "primary" else layer
    layers = list(range(num_layers(model))) if layer is None else [layer]
    out = args.out / args.task
    out.mkdir(parents=True, exist_ok=True)
    if args.task == "attention":
        result = _attention(args, model, samples, layer, img_size, cache, out)
    elif args.task == "pca":
        result = _pca(args, model, samples, layer, img_size, cache, out)
    elif args.task == "coarse-seg":
        result = _coarse_seg(args, model, samples, img_size, cache, out)
    else:
        result = _maskcut(args, model, samples, layer, img_size, cache, gt, out)
    hit = cache is not None and all(cache.hits)
    metrics = {
        "task": args.task, "model": args.model, "model_id": model_id, "data": args.data,
        "root": str(args.root) if args.root else None, "num_images": len(samples),
        "img_size": img_size, "grid": [grid, grid], "layers": layers, "cache_hit": hit,
        "seconds": round(time.perf_counter() - start, 2), **result,
    }
    atomic_write_json(out / "metrics.json", metrics)
    n = len(result["figures"])
    print(f"{args.task}: {len(samples)} images at {img_size} px ({grid}x{grid} patches); "
          f"wrote {out / 'metrics.json'} ({n} figure{'s' * (n != 1)}, "
          f"features {'from cache' if hit else 'computed'})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry: ``python -m cratelib.cli_evaluate evaluate ...``."""
    parser = argparse.ArgumentParser(prog="cratelib")
    add_evaluate_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    raise SystemExit(main())
