"""The small fixed sample shipped in the repository's ``data/sample/`` for the book's figures.

Two samples, each in both evaluation formats under ``data/sample/<name>/``:

* ``shapes64``: 8 images of 64 px, one object each (the classification setting);
* ``shapes224``: 8 images of 224 px, one to three objects (the detection setting).

Layout of ``<name>/``: ``config.json`` (the :class:`SyntheticConfig` and generator version),
``VOC2012/`` (see :func:`export_voc`), ``val2017/`` + ``annotations/instances_val2017.json`` (see
:func:`export_coco`). So ``VOCSegmentation(sample_dir(name))`` and
``COCODetection(sample_dir(name))`` read it like the real data sets.

How :func:`sample_dir` finds it: ``<repo>/data/sample/<name>`` next to the ``cratelib`` package
of a source checkout (``pip install -e .``, Colab ``git clone``). If that folder is absent (a
wheel install) or was written by another generator version, the sample is regenerated
deterministically from :data:`SAMPLE_CONFIGS` into ``<cache>/sample/<name>`` (see
:func:`cratelib.data.default_cache_dir`) and read from there.

Regenerate the shipped copy with ``python -m cratelib.data [out_dir]``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from cratelib.io import atomic_write

from ._errors import DatasetFormatError
from .export import export_coco, export_voc
from .segmentation import VOCSegmentation
from .synthetic import SyntheticConfig, SyntheticData, generate
from .synthetic_store import default_cache_dir

__all__ = ["SAMPLE_CONFIGS", "REPO_SAMPLE_DIR", "sample_dir", "load_sample", "write_sample"]

SAMPLE_CONFIGS: dict[str, SyntheticConfig] = {
    "shapes64": SyntheticConfig(8, image_size=64, seed=2023, split="test", version=3),
    "shapes224": SyntheticConfig(8, image_size=224, min_objects=1, max_objects=3, seed=2023,
                                 split="test", version=3),
}
REPO_SAMPLE_DIR = Path(__file__).resolve().parents[2] / "data" / "sample"


def _check_name(name: str) -> SyntheticConfig:
    if name not in SAMPLE_CONFIGS:
        raise ValueError(f"Unknown sample {name!r}; known: {', '.join(SAMPLE_CONFIGS)}")
    return SAMPLE_CONFIGS[name]


def _record(name: str) -> dict:
    config = _check_name(name)
    return {"name": name, "generator_version": config.version, "config": json.loads(config.to_json())}


def write_sample(name: str, out_dir: str | Path) -> Path:
    """Generate sample ``name`` and write it (both formats + ``config.json``) to ``out_dir``.

    ``config.json`` is written last, so a folder with it is complete.
    """
    out_dir = Path(out_dir)
    data = generate(_check_name(name))
    export_voc(data, out_dir / "VOC2012", image_set="val")
    export_coco(data, out_dir, split="val2017")
    text = json.dumps(_record(name), indent=1).encode()
    atomic_write(out_dir / "config.json", lambda f: f.write(text))
    return out_dir


def _is_current(folder: Path, name: str) -> bool:
    try:
        return json.loads((folder / "config.json").read_text()) == _record(name)
    except (OSError, ValueError):
        return False


def sample_dir(name: str = "shapes64") -> Path:
    """Folder of sample ``name``: the repository copy if current, else a regenerated cache copy."""
    _check_name(name)
    repo = REPO_SAMPLE_DIR / name
    if _is_current(repo, name):
        return repo
    if repo.exists():
        warnings.warn(f"{repo} does not match the current generator; using a regenerated copy. "
                      "Refresh it with `python -m cratelib.data`.", stacklevel=2)
    cached = default_cache_dir() / "sample" / name
    if not _is_current(cached, name):
        write_sample(name, cached)
    return cached


def load_sample(name: str = "shapes64") -> SyntheticData:
    """Read sample ``name`` back from its VOC files into a :class:`SyntheticData`.

    Images are the decoded JPEGs (within a few grey levels of the generated pixels); the semantic
    and instance maps are exact. Labels are the main object's (instance 1) class.
    """
    folder = sample_dir(name)
    config = _check_name(name)
    voc = VOCSegmentation(folder / "VOC2012", split="val")
    if len(voc) != config.num_images:
        raise DatasetFormatError(f"{folder}: expected {config.num_images} images, found "
                                 f"{len(voc)}; delete the folder to regenerate it.")
    images, semantic, instance_map = [], [], []
    for i, name_i in enumerate(voc.names):
        image, target = voc[i]
        images.append(np.asarray(image))
        semantic.append(target.numpy().astype(np.uint8))
        with Image.open(folder / "VOC2012" / "SegmentationObject" / f"{name_i}.png") as img:
            instance_map.append(np.array(img))
    semantic_arr, instance_arr = np.stack(semantic), np.stack(instance_map)
    labels = np.array([int(s[inst == 1][0]) - 1 for s, inst in zip(semantic_arr, instance_arr)],
                      dtype=np.int64)
    return SyntheticData(config, np.stack(images), labels, semantic_arr, instance_arr)
