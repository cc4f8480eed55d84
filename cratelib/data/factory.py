"""One entry point for every data set: :func:`build_dataset`, plus Colab download helpers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch.utils.data import Dataset

from .classification import CIFAR10, CIFAR100, Flowers102, ImageFolderDataset, OxfordPets
from .segmentation import COCODetection, VOCSegmentation
from .synthetic import SyntheticConfig
from .synthetic_store import SyntheticDataset

__all__ = ["DATASETS", "build_dataset", "download", "SYNTHETIC_SIZES", "synthetic_config"]

# name -> (class, default split)
DATASETS: dict[str, tuple[type[Dataset], str | None]] = {
    "synthetic": (SyntheticDataset, "train"),
    "imagefolder": (ImageFolderDataset, None),
    "cifar10": (CIFAR10, "train"),
    "cifar100": (CIFAR100, "train"),
    "pets": (OxfordPets, "trainval"),
    "flowers102": (Flowers102, "train"),
    "voc": (VOCSegmentation, "val"),
    "coco": (COCODetection, "val2017"),
}
# Default number of synthetic images per split when ``num_images`` is not given.
SYNTHETIC_SIZES = {"train": 10_000, "val": 2_000, "test": 2_000}


def synthetic_config(split: str = "train", **fields) -> SyntheticConfig:
    """The :class:`SyntheticConfig` of a split; ``num_images`` defaults to :data:`SYNTHETIC_SIZES`."""
    fields.setdefault("num_images", SYNTHETIC_SIZES.get(split, SYNTHETIC_SIZES["val"]))
    return SyntheticConfig(split=split, **fields)


def build_dataset(name: str, root: str | Path | None = None, split: str | None = None,
                  transform: Callable | None = None, **kwargs) -> Dataset:
    """Build a data set by name.

    Args:
        name: one of :data:`DATASETS`: ``"synthetic"``, ``"imagefolder"``, ``"cifar10"``,
            ``"cifar100"``, ``"pets"``, ``"flowers102"``, ``"voc"``, ``"coco"``.
        root: where the data set lies (for ``"synthetic"``: the cache directory, default
            :func:`cratelib.data.default_cache_dir`). Required for the real data sets.
        split: the data set's split (defaults: synthetic ``train``, pets ``trainval``, voc
            ``val``, coco ``val2017``, imagefolder none = ``root`` itself, others ``train``).
        transform: PIL image -> tensor (e.g. :func:`cratelib.data.train_transform`); for
            ``"synthetic"`` without transform, items are normalised tensors.
        **kwargs: for ``"synthetic"``, fields of :class:`SyntheticConfig` (``num_images``
            defaults to :data:`SYNTHETIC_SIZES` of the split) and ``mean``/``std``/``cache``.

    Returns:
        A torch ``Dataset``.
    """
    if name not in DATASETS:
        raise ValueError(f"Unknown data set {name!r}; known: {', '.join(DATASETS)}")
    cls, default_split = DATASETS[name]
    split = split or default_split
    if name == "synthetic":
        loader_keys = {"mean", "std", "cache"}
        loader_kwargs = {k: kwargs.pop(k) for k in loader_keys & kwargs.keys()}
        return SyntheticDataset(synthetic_config(split, **kwargs), transform=transform, cache_dir=root,
                                **loader_kwargs)
    if root is None:
        raise ValueError(f"build_dataset({name!r}) needs root=<folder of the data set>")
    if kwargs:
        raise TypeError(f"build_dataset({name!r}) takes no extra arguments, got {sorted(kwargs)}")
    return cls(root, split=split, transform=transform)


def download(name: str, root: str | Path) -> Path:
    """Download a data set into ``root`` in the layout its loader reads (for Colab).

    Uses torchvision's downloaders for ``cifar10``, ``cifar100``, ``flowers102``, ``pets`` and
    ``voc`` (VOC 2012 trainval, 2 GB) and the official COCO zips for ``coco`` (val2017 images,
    1 GB, and the 2017 annotations, 250 MB). ImageNet needs a manual download (see
    :class:`cratelib.data.ImageFolderDataset`). Respect each data set's terms of use.

    Returns:
        ``root``, which can be passed to :func:`build_dataset`.
    """
    from torchvision import datasets
    from torchvision.datasets.utils import download_and_extract_archive

    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    if name == "cifar10":
        datasets.CIFAR10(root, download=True)
    elif name == "cifar100":
        datasets.CIFAR100(root, download=True)
    elif name == "flowers102":
        datasets.Flowers102(root, download=True)
    elif name == "pets":
        datasets.OxfordIIITPet(root, download=True)
    elif name == "voc":
        datasets.VOCSegmentation(root, year="2012", image_set="val", download=True)
    elif name == "coco":
        for url in ("http://images.cocodataset.org/zips/val2017.zip",
                    "http://images.cocodataset.org/annotations/annotations_trainval2017.zip"):
            download_and_extract_archive(url, download_root=str(root), remove_finished=True)
    else:
        known = ("cifar10", "cifar100", "flowers102", "pets", "voc", "coco")
        raise ValueError(f"No downloader for {name!r}; downloadable: {', '.join(known)} "
                         "(ImageNet must be obtained from https://image-net.org)")
    return root
