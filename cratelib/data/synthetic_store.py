"""The generated data set stored: the disk cache of :func:`cratelib.data.synthetic.generate`'s
arrays (:func:`load_or_generate`, and :func:`epoch_images` for training's fresh draw per epoch),
written atomically, and :class:`SyntheticDataset`, the torch ``Dataset`` over it."""
from __future__ import annotations

import io
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from cratelib.io import atomic_write, cache_home

from .synthetic import SyntheticConfig, SyntheticData, generate
from .transforms import IMAGENET_MEAN, IMAGENET_STD

__all__ = ["default_cache_dir", "cache_path", "load_or_generate", "epoch_images", "SyntheticDataset"]


def default_cache_dir() -> Path:
    """``$CRATELIB_CACHE/synthetic``; ``~/.cache/cratelib/synthetic`` if the variable is unset
    (:func:`cratelib.io.cache_home`)."""
    return cache_home("synthetic")


_ARRAYS = ("images", "labels", "semantic", "instance_map", "distractor_map")
_EPOCH_ARRAYS = ("images", "labels")  # what training reads of an epoch's fresh draw


def cache_path(config: SyntheticConfig, cache_dir: str | Path | None = None,
               epoch: int | None = None) -> Path:
    """Where ``config``'s arrays are cached: ``<cache_dir>/synthetic-<config.cache_key()>.npz``
    (:func:`load_or_generate`), or ``...-e<epoch>-train.npz`` for a training epoch's fresh draw
    (:func:`epoch_images`). ``cache_dir``: :func:`default_cache_dir`."""
    tail = "" if epoch is None else f"-e{epoch}-train"
    return Path(cache_dir or default_cache_dir()) / f"synthetic-{config.cache_key()}{tail}.npz"


def _read_cache(path: Path, stamp: str, arrays: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """The ``arrays`` present in the cache file ``path`` written for ``stamp``; ``None`` (with a
    warning for a damaged or foreign file) when it must be regenerated."""
    if not path.exists():
        return None
    try:
        with np.load(path) as f:
            if str(f["config"]) != stamp:
                raise ValueError(f"it holds config {str(f['config'])}")
            return {k: f[k] for k in arrays if k in f.files}
    except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as err:
        warnings.warn(f"Ignoring unreadable synthetic cache {path} ({err}); regenerating.", stacklevel=3)
        return None


def load_or_generate(config: SyntheticConfig, cache_dir: str | Path | None = None) -> SyntheticData:
    """Read the data set from the disk cache, or generate it and write the cache atomically.

    The file is :func:`cache_path` (uncompressed, about ``n * H * W * 6`` bytes). A cache file
    that cannot be read or was written for another config is regenerated with a warning.

    Args:
        config: what to generate.
        cache_dir: defaults to :func:`default_cache_dir`.
    """
    path = cache_path(config, cache_dir)
    stamp = config.to_json()
    cached = _read_cache(path, stamp, _ARRAYS)
    if cached is not None:  # version-3 caches written before distractor maps existed lack that array
        return SyntheticData(config, **cached)
    data = generate(config)

    def write(f: io.BufferedIOBase) -> None:
        np.savez(f, config=np.array(stamp), **{k: getattr(data, k) for k in _ARRAYS})

    atomic_write(path, write)
    return data


def epoch_images(config: SyntheticConfig, epoch: int, cache_dir: str | Path | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Training epoch ``epoch``'s fresh draw (:func:`generate` with ``epoch``): ``images``
    ``(n, H, W, 3)`` uint8 and ``labels`` ``(n,)`` int64, read from the disk cache or generated
    and cached atomically, so that runs sharing the data config (the models and seeds of a study)
    draw each epoch once.

    Only what training reads is kept, compressed (:func:`cache_path` ``...-e<epoch>-train.npz``):
    the flat fills and periodic textures compress about 25-fold, so an epoch of 10,000 images at
    128 px takes about 20 MB instead of the ~1 GB of every uncompressed array, and a 50-epoch run
    about 1 GB of cache. A damaged or foreign file is regenerated with a warning."""
    path = cache_path(config, cache_dir, epoch)
    stamp = f"{config.to_json()} epoch {epoch}"
    cached = _read_cache(path, stamp, _EPOCH_ARRAYS)
    if cached is not None and set(cached) == set(_EPOCH_ARRAYS):
        return cached["images"], cached["labels"]
    data = generate(config, epoch)

    def write(f: io.BufferedIOBase) -> None:
        np.savez_compressed(f, config=np.array(stamp), images=data.images, labels=data.labels)

    atomic_write(path, write)
    return data.images, data.labels


class SyntheticDataset(Dataset):
    """Torch view of a synthetic data set: items are ``(image, label)``.

    Without ``transform`` the image is the normalised ``(3, H, W)`` float32 tensor
    ``(pixels / 255 - mean) / std``. With ``transform`` (e.g.
    :func:`cratelib.data.train_transform`), the transform receives the PIL RGB image, as for the
    real data sets, and its output is returned unchanged (``mean``/``std`` are then unused).

    Args:
        config: what to generate (``config.split`` selects the split).
        transform: optional PIL image -> tensor callable.
        mean, std: per-channel normalisation of the default path.
        cache_dir: cache directory (see :func:`load_or_generate`); ignored if ``cache`` is False.
        cache: read/write the disk cache; False generates in memory.
    """

    def __init__(self, config: SyntheticConfig, transform: Callable | None = None,
                 mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD,
                 cache_dir: str | Path | None = None, cache: bool = True) -> None:
        self.data = load_or_generate(config, cache_dir) if cache else generate(config)
        self.transform = transform
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        self.classes = list(self.data.class_names)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image = self.data.images[i]
        label = int(self.data.labels[i])
        if self.transform is not None:
            return self.transform(Image.fromarray(image)), label
        x = torch.from_numpy(image).permute(2, 0, 1).float().div_(255)  # (3, H, W)
        return (x - self.mean) / self.std, label
