"""Figures and small measurements of the training chapter (book chapter 6).

* the embedded data set: :func:`one_per_class`, :func:`plot_examples` (images and their exact
  masks), and three linear probes that show why the classes need localisation:
  :func:`colour_histogram_features`, :func:`object_appearance_features`,
  :func:`mask_shape_features`, :func:`probe_accuracy`;
* the recipes: :func:`recipe_rows` (presets side by side), :func:`training_compute` (images,
  tokens and an estimate of the floating-point operations of a run);
* the runs: :func:`plot_history` (loss and accuracy per epoch, from a live run or a shipped
  checkpoint's record).

Images are ``(n, H, W, 3)`` uint8 arrays of a :class:`cratelib.data.SyntheticData`; everything here
runs in seconds on a CPU.
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator
from PIL import Image

from cratelib.data import SyntheticData
from cratelib.train import TrainConfig
from cratelib.figures.style import COLORS, finish, styled

__all__ = [
    "one_per_class",
    "plot_examples",
    "colour_histogram_features",
    "object_appearance_features",
    "mask_shape_features",
    "probe_accuracy",
    "RECIPE_FIELDS",
    "recipe_rows",
    "training_compute",
    "plot_history",
]

IMAGENET21K_IMAGES = 14_197_122  # App. C.1 of the paper


# ---------------------------------------------------------------------------------------------
# The embedded data set
# ---------------------------------------------------------------------------------------------


def one_per_class(data: SyntheticData) -> list[int]:
    """Index of the first image of each class, in class order (classes absent are skipped)."""
    return [int(np.flatnonzero(data.labels == c)[0]) for c in range(data.config.num_classes)
            if (data.labels == c).any()]


@styled
def plot_examples(data: SyntheticData, indices: Sequence[int] | None = None, title: str = ""):
    """Two rows per set of images: the images, then their exact masks (main object in colour,
    secondary objects in grey, background black), each titled with the class of the main object.

    Args:
        data: a generated or loaded data set.
        indices: which images (default: one per class).
    """
    indices = list(one_per_class(data) if indices is None else indices)
    n = len(indices)
    fig, axes = plt.subplots(2, n, figsize=(1.05 * n, 2.45), squeeze=False)
    for col, i in enumerate(indices):
        inst = data.instance_map[i]
        mask_rgb = np.zeros((*inst.shape, 3))
        mask_rgb[inst > 1] = 0.45
        mask_rgb[inst == 1] = (1.0, 0.8, 0.2)
        axes[0, col].imshow(data.images[i], interpolation="nearest")
        axes[0, col].set_title(data.class_names[int(data.labels[i])], fontsize=8)
        axes[1, col].imshow(mask_rgb, interpolation="nearest")
    axes[0, 0].set_ylabel("image", fontsize=8)
    axes[1, 0].set_ylabel("exact mask", fontsize=8)
    return finish(fig, axes, title, pad=0.3, w_pad=0.2, h_pad=0.2)


def colour_histogram_features(data: SyntheticData, bins: int = 4) -> np.ndarray:
    """``(n, bins**3)``: the joint RGB histogram of each whole image (what colour alone offers)."""
    q = (data.images.astype(np.int64) * bins // 256).reshape(len(data), -1, 3)
    idx = (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]
    counts = np.stack([np.bincount(row, minlength=bins**3) for row in idx])
    return counts / idx.shape[1]


def object_appearance_features(data: SyntheticData) -> np.ndarray:
    """``(n, 7)``: mean and standard deviation of the RGB values inside the main object's exact
    mask, and the mean absolute vertical pixel difference there (its texture). These use the
    ground truth to look only at the object: everything about its appearance except its shape."""
    feats = []
    for image, inst in zip(data.images, data.instance_map):
        mask = inst == 1
        px = image[mask].astype(np.float64) / 255
        grad = np.abs(np.diff(image.astype(np.float64) / 255, axis=0))  # (H-1, W, 3)
        texture = grad[mask[1:] & mask[:-1]].mean()
        feats.append(np.r_[px.mean(0), px.std(0), texture])
    return np.asarray(feats)


def mask_shape_features(data: SyntheticData, size: int = 16) -> np.ndarray:
    """``(n, size**2)``: the main object's exact mask, cropped to its tight box and resized to
    ``size x size``: its shape, once one knows where the object is."""
    feats = []
    for inst in data.instance_map:
        mask = inst == 1
        ys, xs = np.nonzero(mask)
        crop = mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1].astype(np.uint8) * 255
        small = Image.fromarray(crop).resize((size, size), Image.BILINEAR)
        feats.append(np.asarray(small, np.float64).ravel() / 255)
    return np.asarray(feats)


def probe_accuracy(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                   max_iter: int = 1000) -> float:
    """Test accuracy of a linear classifier (standardised features, multinomial logistic
    regression) fitted on the training features: how much class information they hold linearly."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter))
    clf.fit(x_train, y_train)
    return float(clf.score(x_test, y_test))


# ---------------------------------------------------------------------------------------------
# Recipes
# ---------------------------------------------------------------------------------------------

# (row label, how to read it off a TrainConfig)
RECIPE_FIELDS: list[tuple[str, Callable[[TrainConfig], str]]] = [
    ("model", lambda c: c.model + "".join(f", {k} {v}" for k, v in c.model_args.items())),
    ("data", lambda c: "ImageNet-21k (folder)" if c.data == "imagefolder" else c.data),
    ("training images", lambda c: f"{_num_images(c):,}"),
    ("classes", lambda c: f"{c.num_classes:,}"),
    ("image size (px)", lambda c: str(c.img_size)),
    ("optimizer", lambda c: {"adamw": "AdamW", "lion": "Lion"}[c.optimizer]),
    ("learning rate", lambda c: f"{c.lr:.2g}"),
    ("weight decay", lambda c: f"{c.weight_decay:g}"),
    ("batch (per step x accumulation)", lambda c: f"{c.batch_size * c.accum_steps:,} "
                                                  f"({c.batch_size} x {c.accum_steps})"),
    ("epochs (warm-up)", lambda c: f"{c.epochs} ({c.warmup_epochs:g})"),
    ("precision", lambda c: {"none": "float32", "bf16": "bfloat16", "fp16": "float16"}[c.amp]),
]


def _num_images(config: TrainConfig) -> int:
    if config.data == "synthetic":
        from cratelib.data.factory import SYNTHETIC_SIZES

        return int(config.data_args.get("num_images", SYNTHETIC_SIZES["train"]))
    if config.data == "imagefolder" and config.num_classes == 21841:
        return IMAGENET21K_IMAGES
    raise ValueError(f"number of training images of {config.data!r} unknown without the data")


def recipe_rows(configs: Mapping[str, TrainConfig]) -> list[dict]:
    """Rows ``{"setting": label, <preset>: value, ...}`` comparing training configs field by
    field (for :func:`cratelib.eval.studies.format_table`)."""
    return [{"setting": label, **{name: read(c) for name, c in configs.items()}}
            for label, read in RECIPE_FIELDS]


def training_compute(config: TrainConfig, num_images: int | None = None) -> dict:
    """What a run processes: images seen, tokens per image, parameters, and an estimate of the
    floating-point operations.

    The estimate is the usual ``3 x forward`` (forward plus a backward pass of twice its cost),
    with a forward pass of ``2 x parameters x tokens`` for the weight matrices plus
    ``4 x depth x tokens**2 x width`` for the attention products (q k^T and attention x v).
    It ignores LayerNorms, softmaxes and the optimizer: an order of magnitude, not a count.
    """
    from cratelib.info import count_params
    from cratelib.models import create_model
    import torch

    args = dict(img_size=config.img_size, num_classes=config.num_classes, **config.model_args)
    params = count_params(config.model, **args)
    with torch.device("meta"):
        model = create_model(config.model, **args)
    tokens = (config.img_size // model.patch_size) ** 2 + 1
    n = _num_images(config) if num_images is None else num_images
    seen = n * config.epochs
    forward = 2 * params * tokens + 4 * model.depth * tokens**2 * model.config.dim
    return {"params": params, "tokens": tokens, "images_seen": seen, "flops": 3 * forward * seen}


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------


@styled
def plot_history(histories: Mapping[str, Sequence[dict]], chance: float | None = None,
                 marks: Mapping[str, Sequence[int]] | None = None, title: str = ""):
    """Loss and accuracy per epoch of one or more runs.

    Args:
        histories: ``label -> records`` with keys ``epoch``, ``train_loss``, ``train_acc`` and,
            if the run validated, ``val_loss``, ``val_acc`` (:func:`cratelib.train.train`'s
            history, or a shipped record's ``history``).
        chance: accuracy of guessing (drawn as a dotted line).
        marks: ``label -> epochs`` to circle on that run's validation accuracy (snapshots).
    """
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for i, (label, hist) in enumerate(histories.items()):
        c = COLORS[i % len(COLORS)]
        ep = [r["epoch"] for r in hist]
        axes[0].plot(ep, [r["train_loss"] for r in hist], "--", color=c, label=f"{label}, train")
        axes[1].plot(ep, [r["train_acc"] for r in hist], "--", color=c, label=f"{label}, train")
        if all("val_acc" in r for r in hist):
            axes[0].plot(ep, [r["val_loss"] for r in hist], "-", color=c, label=f"{label}, validation")
            axes[1].plot(ep, [r["val_acc"] for r in hist], "-", color=c, label=f"{label}, validation")
            wanted = set((marks or {}).get(label, []))
            hit = [r for r in hist if r["epoch"] in wanted]
            if hit:
                axes[1].plot([r["epoch"] for r in hit], [r["val_acc"] for r in hit], "o", mfc="none",
                             color=c, ms=7, label=f"{label}, snapshots")
    if chance is not None:
        axes[1].axhline(chance, color="grey", ls=":", lw=1, label="chance")
    axes[0].set_ylabel("cross-entropy")
    axes[1].set_ylabel("top-1 accuracy")
    axes[1].set_ylim(0, 1)
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
