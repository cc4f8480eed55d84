"""What a training run processes: images, tokens per image, parameters and an estimate of the
floating-point operations (book chapters 6 and 14), and recipes side by side (:func:`recipe_rows`)."""
from __future__ import annotations

from typing import Callable, Mapping

import torch

from cratelib.info import count_params
from cratelib.models import create_model
from cratelib.train.config import TrainConfig

__all__ = ["IMAGENET21K_IMAGES", "num_train_images", "training_compute", "RECIPE_FIELDS", "recipe_rows"]

IMAGENET21K_IMAGES = 14_197_122  # App. C.1 of the paper


def num_train_images(config: TrainConfig) -> int:
    """Training images of a config's data: the synthetic set's size, or ImageNet-21k's count for
    an image folder with its 21,841 classes; other folders are unknown without the data."""
    if config.data == "synthetic":
        from cratelib.data.factory import SYNTHETIC_SIZES

        return int(config.data_args.get("num_images", SYNTHETIC_SIZES["train"]))
    if config.data == "imagefolder" and config.num_classes == 21841:
        return IMAGENET21K_IMAGES
    raise ValueError(f"number of training images of {config.data!r} unknown without the data")


def training_compute(config: TrainConfig, num_images: int | None = None) -> dict:
    """What a run processes: images seen, tokens per image, parameters, and an estimate of the
    floating-point operations.

    The estimate is the usual ``3 x forward`` (forward plus a backward pass of twice its cost),
    with a forward pass of ``2 x parameters x tokens`` for the weight matrices plus
    ``4 x depth x tokens**2 x width`` for the attention products (q k^T and attention x v).
    It ignores LayerNorms, softmaxes and the optimizer: an order of magnitude, not a count.
    """
    args = dict(img_size=config.img_size, num_classes=config.num_classes, **config.model_args)
    params = count_params(config.model, **args)
    with torch.device("meta"):
        model = create_model(config.model, **args)
    tokens = (config.img_size // model.patch_size) ** 2 + 1
    n = num_train_images(config) if num_images is None else num_images
    seen = n * config.epochs
    forward = 2 * params * tokens + 4 * model.depth * tokens**2 * model.config.dim
    return {"params": params, "tokens": tokens, "images_seen": seen, "flops": 3 * forward * seen}


# (row label, how to read it off a TrainConfig)
RECIPE_FIELDS: list[tuple[str, Callable[[TrainConfig], str]]] = [
    ("model", lambda c: c.model + "".join(f", {k} {v}" for k, v in c.model_args.items())),
    ("data", lambda c: "ImageNet-21k (folder)" if c.data == "imagefolder" else c.data),
    ("training images", lambda c: f"{num_train_images(c):,}"),
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


def recipe_rows(configs: Mapping[str, TrainConfig]) -> list[dict]:
    """Rows ``{"setting": label, <preset>: value, ...}`` comparing training configs field by
    field (for :func:`cratelib.figures.tables.format_table`)."""
    return [{"setting": label, **{name: read(c) for name, c in configs.items()}}
            for label, read in RECIPE_FIELDS]
