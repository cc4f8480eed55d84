"""Classification data sets of the paper (Table 3) read from their original on-disk formats.

* :class:`ImageFolderDataset`: ImageNet-1k/21k style ``root/<split>/<class>/*.JPEG``.
* :class:`CIFAR10`, :class:`CIFAR100`: the python pickle batches (``cifar-10-batches-py``,
  ``cifar-100-python``).
* :class:`OxfordPets`: Oxford-IIIT Pets (``images/*.jpg``, ``annotations/{trainval,test}.txt``,
  ``annotations/trimaps/*.png``).
* :class:`Flowers102`: Oxford Flowers-102 (``jpg/image_XXXXX.jpg``, ``imagelabels.mat``,
  ``setid.mat``).

Items are ``(image, label)`` with ``label`` an int in ``[0, num_classes)``; ``image`` is a PIL RGB
image, or ``transform(image)`` if a transform is given (see :mod:`cratelib.data.transforms`). Each
loader accepts either the data set folder or the parent folder that torchvision's downloader (see
:func:`cratelib.data.download`) writes into. A missing or malformed data set raises
:class:`DatasetNotFoundError` / :class:`DatasetFormatError` saying what was expected where and how
to get it.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io
from PIL import Image
from torch.utils.data import Dataset

from ._errors import DatasetFormatError, DatasetNotFoundError, find_root, require

__all__ = ["ImageFolderDataset", "CIFAR10", "CIFAR100", "OxfordPets", "Flowers102",
           "IMAGE_EXTENSIONS"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def _check_split(split: str, allowed: tuple[str, ...], name: str) -> None:
    if split not in allowed:
        raise ValueError(f"{name}: split must be one of {allowed}, got {split!r}")


class _Classification(Dataset):
    """Common item logic: subclasses set ``self.classes`` and implement ``_load(i)``."""

    classes: list[str]
    transform: Callable | None

    def _load(self, i: int) -> tuple[Image.Image, int]:
        raise NotImplementedError

    def __getitem__(self, i: int) -> tuple[Any, int]:
        image, label = self._load(i)
        return (self.transform(image) if self.transform else image), label


class ImageFolderDataset(_Classification):
    """ImageNet-style class folders: ``root[/split]/<class_name>/<image>``.

    Classes are the sorted sub-folder names (ImageNet's wnids ``n01440764``...). ImageNet's val set
    must be sorted into class folders too (e.g. with the widely used ``valprep.sh``).

    Args:
        root: the folder with one sub-folder per class, or its parent if ``split`` is given.
        split: optional sub-folder of ``root`` (``"train"``, ``"val"``).
        transform: PIL image -> anything.
    """

    HOW = ("ImageNet cannot be downloaded automatically: get ILSVRC2012 / ImageNet-21k from "
           "https://image-net.org (registration required) and arrange it as "
           "<root>/<split>/<class>/*.JPEG, one folder per class.")

    def __init__(self, root: str | Path, split: str | None = None,
                 transform: Callable | None = None) -> None:
        folder = Path(root).expanduser() / split if split else Path(root).expanduser()
        require(folder, "an image folder with one sub-folder per class", self.HOW)
        self.classes = sorted(d.name for d in folder.iterdir() if d.is_dir())
        if not self.classes:
            raise DatasetNotFoundError(f"Expected class sub-folders in {folder}, found none. "
                                       + self.HOW)
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.samples: list[tuple[Path, int]] = [
            (p, i) for i, c in enumerate(self.classes) for p in sorted((folder / c).iterdir())
            if p.suffix.lower() in IMAGE_EXTENSIONS
        ]
        if not self.samples:
            raise DatasetNotFoundError(f"Expected images ({', '.join(IMAGE_EXTENSIONS)}) in the "
                                       f"class folders of {folder}, found none. " + self.HOW)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def _load(self, i: int) -> tuple[Image.Image, int]:
        path, label = self.samples[i]
        with Image.open(path) as img:
            return img.convert("RGB"), label


class CIFAR10(_Classification):
    """CIFAR-10 from the python pickle batches (``data_batch_1..5``, ``test_batch``,
    ``batches.meta``) in ``root`` or ``root/cifar-10-batches-py``.

    Args:
        root: the batches folder or its parent.
        split: ``"train"`` (50,000 images) or ``"test"`` (10,000).
        transform: PIL image -> anything.

    Attributes:
        data: ``(N, 32, 32, 3)`` uint8 images.
        targets: ``(N,)`` int64 labels.
    """

    folder = "cifar-10-batches-py"
    files = {"train": [f"data_batch_{k}" for k in range(1, 6)], "test": ["test_batch"]}
    meta_file, label_key, names_key = "batches.meta", "labels", "label_names"
    HOW = ("Download it with cratelib.data.download('cifar10', root) (torchvision), or get "
           "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz and extract it into root.")

    def __init__(self, root: str | Path, split: str = "train",
                 transform: Callable | None = None) -> None:
        _check_split(split, ("train", "test"), type(self).__name__)
        base = find_root(root, (self.folder,), self.meta_file,
                         f"{type(self).__name__} pickle batches", self.HOW)
        images, labels = [], []
        for name in self.files[split]:
            batch = self._unpickle(require(base / name, f"batch file {name!r}", self.HOW))
            try:
                data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
                targets = np.asarray(batch[self.label_key], dtype=np.int64)
            except (KeyError, ValueError) as err:
                raise DatasetFormatError(
                    f"{base / name}: expected a dict with 'data' (N, 3072) uint8 and "
                    f"{self.label_key!r} (N,) ({err!r}). {self.HOW}") from err
            if len(targets) != len(data):
                raise DatasetFormatError(f"{base / name}: {len(data)} images but "
                                         f"{len(targets)} labels. {self.HOW}")
            images.append(data.transpose(0, 2, 3, 1))
            labels.append(targets)
        meta = self._unpickle(require(base / self.meta_file, "the label names file", self.HOW))
        self.classes = [n.decode() if isinstance(n, bytes) else str(n)
                        for n in meta[self.names_key]]
        self.data = np.concatenate(images)
        self.targets = np.concatenate(labels)
        if self.targets.min() < 0 or self.targets.max() >= len(self.classes):
            raise DatasetFormatError(f"{base}: labels outside [0, {len(self.classes)}). {self.HOW}")
        self.transform = transform

    def _unpickle(self, path: Path) -> dict:
        """Load a (Python 2, latin-1/bytes keyed) CIFAR pickle into a dict with str keys."""
        try:
            with open(path, "rb") as f:
                obj = pickle.load(f, encoding="bytes")
        except (pickle.UnpicklingError, EOFError, OSError) as err:
            raise DatasetFormatError(f"{path} is not a readable CIFAR pickle ({err!r}). "
                                     + self.HOW) from err
        if not isinstance(obj, dict):
            raise DatasetFormatError(f"{path}: expected a pickled dict. {self.HOW}")
        return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}

    def __len__(self) -> int:
        return len(self.targets)

    def _load(self, i: int) -> tuple[Image.Image, int]:
        return Image.fromarray(self.data[i]), int(self.targets[i])


class CIFAR100(CIFAR10):
    """CIFAR-100 (fine labels) from ``train``, ``test``, ``meta`` in ``root`` or
    ``root/cifar-100-python``; same interface as :class:`CIFAR10`."""

    folder = "cifar-100-python"
    files = {"train": ["train"], "test": ["test"]}
    meta_file, label_key, names_key = "meta", "fine_labels", "fine_label_names"
    HOW = ("Download it with cratelib.data.download('cifar100', root) (torchvision), or get "
           "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz and extract it into root.")


class OxfordPets(_Classification):
    """Oxford-IIIT Pets, 37 breeds, in ``root`` or ``root/oxford-iiit-pet``.

    Reads ``annotations/<split>.txt`` (lines ``<image> <class 1..37> <species> <breed id>``,
    ``#`` comments) and ``images/<image>.jpg``.

    Args:
        root: the data set folder or its parent.
        split: ``"trainval"`` (3,680) or ``"test"`` (3,669).
        transform: PIL image -> anything.
    """

    HOW = ("Download it with cratelib.data.download('pets', root) (torchvision), or get "
           "images.tar.gz and annotations.tar.gz from https://www.robots.ox.ac.uk/~vgg/data/pets/ "
           "and extract both into root.")

    def __init__(self, root: str | Path, split: str = "trainval",
                 transform: Callable | None = None) -> None:
        _check_split(split, ("trainval", "test"), "OxfordPets")
        self.root = find_root(root, ("oxford-iiit-pet",), f"annotations/{split}.txt",
                              "the Oxford-IIIT Pets list file", self.HOW)
        require(self.root / "images", "the Pets images folder", self.HOW)
        self.names: list[str] = []
        self.targets: list[int] = []
        breeds: dict[int, str] = {}
        list_file = self.root / "annotations" / f"{split}.txt"
        for n, line in enumerate(list_file.read_text().splitlines(), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split()
            if len(fields) < 2 or not fields[1].isdigit():
                raise DatasetFormatError(f"{list_file}:{n}: expected '<image> <class id> ...', "
                                         f"got {line!r}. {self.HOW}")
            self.names.append(fields[0])
            self.targets.append(int(fields[1]) - 1)
            breeds[int(fields[1]) - 1] = fields[0].rsplit("_", 1)[0]
        if not self.names:
            raise DatasetFormatError(f"{list_file} lists no images. {self.HOW}")
        self.classes = [breeds.get(c, f"class_{c}") for c in range(max(breeds) + 1)]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.names)

    def _load(self, i: int) -> tuple[Image.Image, int]:
        path = require(self.root / "images" / f"{self.names[i]}.jpg", "a Pets image", self.HOW)
        with Image.open(path) as img:
            return img.convert("RGB"), self.targets[i]

    def trimap(self, i: int) -> np.ndarray:
        """The trimap of item ``i``: ``(H, W)`` uint8, 1 = pet, 2 = background, 3 = border."""
        path = self.root / "annotations" / "trimaps" / f"{self.names[i]}.png"
        with Image.open(require(path, "a Pets trimap", self.HOW)) as img:
            return np.array(img)


class Flowers102(_Classification):
    """Oxford Flowers-102 in ``root`` or ``root/flowers-102``.

    Reads ``imagelabels.mat`` (``labels``: 1..102 per image), ``setid.mat`` (``trnid``,
    ``valid``, ``tstid``: 1-based image numbers) and ``jpg/image_XXXXX.jpg``.

    Args:
        root: the data set folder or its parent.
        split: ``"train"`` (1,020), ``"val"`` (1,020) or ``"test"`` (6,149).
        transform: PIL image -> anything.
    """

    HOW = ("Download it with cratelib.data.download('flowers102', root) (torchvision), or get "
           "102flowers.tgz, imagelabels.mat and setid.mat from "
           "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/ into root.")
    SPLIT_KEYS = {"train": "trnid", "val": "valid", "test": "tstid"}

    def __init__(self, root: str | Path, split: str = "train",
                 transform: Callable | None = None) -> None:
        _check_split(split, tuple(self.SPLIT_KEYS), "Flowers102")
        self.root = find_root(root, ("flowers-102",), "imagelabels.mat",
                              "the Flowers-102 label file", self.HOW)
        labels = self._mat("imagelabels.mat", "labels")
        ids = self._mat("setid.mat", self.SPLIT_KEYS[split])
        if ids.min() < 1 or ids.max() > len(labels):
            raise DatasetFormatError(f"{self.root / 'setid.mat'}: image numbers outside "
                                     f"[1, {len(labels)}]. {self.HOW}")
        self.image_ids = ids.tolist()
        self.targets = (labels[ids - 1] - 1).tolist()
        self.classes = [f"flower_{c + 1}" for c in range(102)]
        require(self.root / "jpg", "the Flowers-102 image folder 'jpg'", self.HOW)
        self.transform = transform

    def _mat(self, file: str, key: str) -> np.ndarray:
        path = require(self.root / file, f"the Flowers-102 file {file!r}", self.HOW)
        try:
            return np.asarray(scipy.io.loadmat(path)[key], dtype=np.int64).ravel()
        except (KeyError, ValueError) as err:
            raise DatasetFormatError(f"{path}: expected a MATLAB file with variable {key!r} "
                                     f"({err!r}). {self.HOW}") from err

    def __len__(self) -> int:
        return len(self.image_ids)

    def _load(self, i: int) -> tuple[Image.Image, int]:
        path = self.root / "jpg" / f"image_{self.image_ids[i]:05d}.jpg"
        with Image.open(require(path, "a Flowers-102 image", self.HOW)) as img:
            return img.convert("RGB"), self.targets[i]
