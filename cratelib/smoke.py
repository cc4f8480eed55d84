"""Stand-ins for what the chapters' GPU cells download, for the ``gpu-smoke`` scale.

At the ``gpu-smoke`` scale (:data:`cratelib.notebook.SCALES`) a chapter takes its GPU branches on
the CPU with tiny sizes: the same functions, models, command-line calls and file formats. Nothing
is downloaded; each download is replaced by a stand-in in the very format the download has, which
the reader's code then reads the same way:

* data sets (:func:`write_dataset`): a few embedded scenes (:func:`cratelib.data.generate`)
  written in the on-disk layout of PASCAL VOC 2012 (``VOCdevkit/VOC2012``, as torchvision's
  downloader leaves it), COCO 2017 (``val2017/`` and ``annotations/instances_val2017.json``) or
  CIFAR-10 (``cifar-10-batches-py/`` pickle batches), read by cratelib's loaders;
* timm's pretrained weights (:func:`timm_weights`): random weights of the same architecture, saved
  as the ``model.safetensors`` of the model's Hugging Face repository in the hub's cache layout,
  so that ``timm.create_model(name, pretrained=True)`` loads them through timm's own download
  code (``hf_hub_download`` finds them in the cache, in offline mode);
* the released CRATE-alpha weights (:func:`crate_alpha_weights`): a random, shallow
  ``crate_alpha`` model in the released key layout, as ``torch/crate_alpha_<size>.pth`` of the
  hub repository ``UCSC-VLAA/CRATE-alpha`` in the hub's cache layout;
* the official CRATE weights (:func:`official_crate`): a random CRATE of an official width saved
  with the official parameter names as ``{"model": state_dict}``, the file
  :func:`cratelib.load_official_checkpoint` reads.

Everything is written below one scratch folder per process (:func:`scratch`). :func:`isolate`
points the Hugging Face cache (offline) and cratelib's cache there, so that random stand-in
weights can never land in, or be read from, a reader's real caches.
"""
from __future__ import annotations

import json
import os
import pickle
import sys
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from cratelib.checkpoint import OFFICIAL_HEADS, official_state_dict
from cratelib.checkpoint_alpha import CRATE_ALPHA_RELEASES, CRATE_ALPHA_REPO, crate_alpha_state_dict
from cratelib.data import SyntheticConfig, export_coco, export_voc, generate
from cratelib.io import CACHE_VARIABLE, atomic_torch_save, atomic_write

__all__ = ["scratch", "isolate", "write_dataset", "write_cifar10", "timm_weights", "crate_alpha_weights",
           "official_crate", "STAND_IN_DATASETS"]

_SCRATCH: Path | None = None
_FAKE_REVISION = "0" * 40  # the "commit" of the stand-in weights in the hub cache


def scratch() -> Path:
    """This process's scratch folder for stand-ins (created on first use, left for the OS's temp
    cleaning so that a notebook can still open what a cell wrote)."""
    global _SCRATCH
    if _SCRATCH is None:
        _SCRATCH = Path(tempfile.mkdtemp(prefix="crate-gpu-smoke-"))
    return _SCRATCH


def isolate() -> Path:
    """Point the Hugging Face hub cache (offline) and cratelib's cache (``CRATELIB_CACHE``) into
    :func:`scratch`, for this process and the processes it starts.

    The environment variables are read by huggingface_hub when it is imported; as timm (and so
    ``import cratelib``) has usually imported it already, its module constants are set too.

    Returns:
        the scratch folder.
    """
    root = scratch()
    values = {"HF_HUB_CACHE": str(root / "hf-hub"), "HF_HUB_OFFLINE": "1", CACHE_VARIABLE: str(root / "cratelib")}
    os.environ.update(values)
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_CACHE = values["HF_HUB_CACHE"]
        if hasattr(constants, "HUGGINGFACE_HUB_CACHE"):  # the older name, still read by some versions
            constants.HUGGINGFACE_HUB_CACHE = values["HF_HUB_CACHE"]
        constants.HF_HUB_OFFLINE = True
    return root


def _record(kind: str, what: str, path: Path) -> Path:
    """Note a stand-in in ``scratch()/stand-ins.jsonl`` (what a rehearsal reports as covered)."""
    line = json.dumps({"kind": kind, "what": what, "path": str(path)}) + "\n"
    with open(scratch() / "stand-ins.jsonl", "a") as f:
        f.write(line)
    return path


def _scenes(num_images: int, image_size: int, split: str = "val"):
    return generate(SyntheticConfig(num_images=num_images, image_size=image_size, split=split, seed=0))


def write_cifar10(root: str | Path, num_train: int = 20, num_test: int = 10) -> Path:
    """Embedded scenes at 32 px in CIFAR-10's python format: ``root/cifar-10-batches-py/`` with
    ``data_batch_1..5`` and ``test_batch`` (dicts of ``b"data"`` ``(N, 3072)`` uint8, channel-major
    rows, and ``b"labels"``) and ``batches.meta`` (``b"label_names"``), pickled as the original.
    The training images are split over the five batches. Returns ``root``."""
    folder = Path(root) / "cifar-10-batches-py"
    train, test = _scenes(num_train, 32, "train"), _scenes(num_test, 32, "test")

    def batch(data, index) -> dict:
        rows = data.images[index].transpose(0, 3, 1, 2).reshape(len(index), -1)  # (N, 3 * 32 * 32)
        return {b"batch_label": b"stand-in", b"labels": data.labels[index].tolist(),
                b"data": np.ascontiguousarray(rows), b"filenames": [f"{i}.png".encode() for i in index]}

    files = {f"data_batch_{k + 1}": batch(train, part) for k, part in enumerate(np.array_split(np.arange(num_train), 5))}
    files["test_batch"] = batch(test, np.arange(num_test))
    files["batches.meta"] = {b"label_names": [n.encode() for n in train.class_names],
                             b"num_cases_per_batch": -(-num_train // 5), b"num_vis": 3072}
    for name, obj in files.items():
        atomic_write(folder / name, lambda f, obj=obj: pickle.dump(obj, f, protocol=2))
    return Path(root)


def _write_voc(root: Path, num_images: int, image_size: int) -> Path:
    export_voc(_scenes(num_images, image_size), root / "VOCdevkit" / "VOC2012", image_set="val")
    return root


def _write_coco(root: Path, num_images: int, image_size: int) -> Path:
    export_coco(_scenes(num_images, image_size), root, split="val2017")
    return root


STAND_IN_DATASETS = ("voc", "coco", "cifar10")


def write_dataset(name: str, num_images: int = 4, image_size: int = 64) -> Path:
    """A stand-in for ``cratelib.data.download(name, root)``: ``num_images`` embedded scenes (for
    CIFAR-10: 32 px, twice as many for training as ``num_images`` for testing) in the layout the
    download leaves, in a new folder below :func:`scratch`.

    Returns:
        the folder to use as the data set's root.
    """
    if name not in STAND_IN_DATASETS:
        raise ValueError(f"no stand-in for data set {name!r}; stand-ins exist for {', '.join(STAND_IN_DATASETS)}")
    root = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=scratch()))
    if name == "cifar10":
        write_cifar10(root, 2 * num_images, num_images)
    else:
        (_write_voc if name == "voc" else _write_coco)(root, num_images, image_size)
    return _record("data set", name, root)


def _hub_file(repo: str, filename: str, write: Callable[[Path], None]) -> Path:
    """``repo``'s file ``filename`` in the hub cache that :func:`isolate` set up (called here if it
    was not), written by ``write(path)`` under the revision ``main`` unless it is there already.

    Returns:
        the file's path as ``hf_hub_download(repo, filename)`` resolves it (offline, from the cache).
    """
    from huggingface_hub import constants, hf_hub_download

    if not str(constants.HF_HUB_CACHE).startswith(str(scratch())):
        isolate()
    folder = Path(constants.HF_HUB_CACHE) / f"models--{repo.replace('/', '--')}"
    target = folder / "snapshots" / _FAKE_REVISION / filename
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        write(target)
        atomic_write(folder / "refs" / "main", lambda f: f.write(_FAKE_REVISION.encode()))
    found = Path(hf_hub_download(repo, filename))
    if found.resolve() != target.resolve():
        raise RuntimeError(f"the hub resolved {repo}/{filename} to {found}, not to the stand-in {target}")
    return found


def timm_weights(name: str) -> Path:
    """Random weights for ``timm.create_model(name, pretrained=True)``, in the hub cache.

    The model is built with timm's defaults for ``name`` (its pretrained configuration's classes),
    its state dict saved as ``model.safetensors`` of the configuration's ``hf_hub_id`` under the
    revision ``main``, in the cache :func:`isolate` set up (called here if it was not). timm's
    loader then reads it as it would read the downloaded file, including its checks and the
    resampling of the position embeddings for another ``img_size``.

    Returns:
        the file's path, as ``hf_hub_download`` resolves it.
    """
    import timm
    from safetensors.torch import save_file

    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None or not cfg.hf_hub_id:
        raise ValueError(f"timm has no Hugging Face weights for {name!r} (expected e.g. 'vit_small_patch8_224.dino')")

    def write(target: Path) -> None:
        torch.manual_seed(0)
        state = timm.create_model(name, pretrained=False).state_dict()
        save_file({k: v.contiguous() for k, v in state.items()}, str(target))

    found = _hub_file(cfg.hf_hub_id, cfg.hf_hub_filename or "model.safetensors", write)
    return _record("timm weights", name, found)


def crate_alpha_weights(size: str = "B16", depth: int = 2) -> Path:
    """A stand-in for the released CRATE-alpha file ``torch/crate_alpha_<size>.pth`` of the hub
    repository ``UCSC-VLAA/CRATE-alpha``, in the hub cache (as :func:`timm_weights`): a random
    ``crate_alpha`` model of the release's width, patch and resolution (224 px, 1,000 classes),
    ``depth`` layers deep to stay cheap, saved as a plain state dict in the released layout
    (:func:`~cratelib.checkpoint_alpha.crate_alpha_state_dict`), which
    :func:`cratelib.load_crate_alpha_checkpoint` reads.

    Returns:
        the file's path, as ``hf_hub_download`` resolves it.
    """
    import cratelib

    if size not in CRATE_ALPHA_RELEASES:
        raise ValueError(f"released CRATE-alpha PyTorch weights are {', '.join(CRATE_ALPHA_RELEASES)}, got {size!r}")

    def write(target: Path) -> None:
        torch.manual_seed(0)
        model = cratelib.create_model(CRATE_ALPHA_RELEASES[size], depth=depth, img_size=224, num_classes=1000)
        atomic_torch_save(target, crate_alpha_state_dict(model))

    found = _hub_file(CRATE_ALPHA_REPO, f"torch/crate_alpha_{size}.pth", write)
    return _record("CRATE-alpha weights", f"{size}, depth {depth}", found)


def official_crate(dim: int = 384, depth: int = 2, patch_size: int = 8, img_size: int = 224,
                   num_classes: int = 1000) -> Path:
    """A random CRATE of official width ``dim`` (heads from the official table) in the official
    checkpoint format, ``{"model": <official parameter names>}``, below :func:`scratch`. Width,
    depth, patch and resolution are what :func:`cratelib.load_official_checkpoint` reads back off
    the tensor shapes; the default depth 2 keeps the stand-in cheap."""
    import cratelib

    if dim not in OFFICIAL_HEADS:
        raise ValueError(f"dim must be an official CRATE width {sorted(OFFICIAL_HEADS)}, got {dim}")
    torch.manual_seed(0)
    model = cratelib.create_model(f"crate_tiny_patch{patch_size}", img_size=img_size, num_classes=num_classes,
                                  dim=dim, depth=depth, num_heads=OFFICIAL_HEADS[dim])
    path = atomic_torch_save(scratch() / "official" / "crate_official_format.pth", {"model": official_state_dict(model)})
    return _record("official CRATE weights", f"dim {dim}, depth {depth}, patch {patch_size}, {img_size} px", path)
