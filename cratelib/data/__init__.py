"""Data for cratelib: the embedded synthetic data set (more loaders follow)."""

from .shapes import CLASS_NAMES
from .synthetic import (SyntheticConfig, SyntheticData, SyntheticDataset, default_cache_dir,
                        generate, load_or_generate)
from .transforms import IMAGENET_MEAN, IMAGENET_STD, eval_transform, train_transform

__all__ = [
    "CLASS_NAMES", "SyntheticConfig", "SyntheticData", "SyntheticDataset", "generate",
    "load_or_generate", "default_cache_dir",
    "IMAGENET_MEAN", "IMAGENET_STD", "train_transform", "eval_transform",
]
