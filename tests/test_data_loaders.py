"""Real-data loaders on tiny fixtures written here in each data set's exact on-disk format."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from cratelib.data import (CIFAR10, CIFAR100, DATASETS, COCODetection, DatasetFormatError,
                           DatasetNotFoundError, Flowers102, ImageFolderDataset, OxfordPets,
                           SyntheticDataset, VOCSegmentation, build_dataset, eval_transform,
                           train_transform)
from cratelib.data.export import voc_palette

RNG = np.random.default_rng(0)


def _jpg(path: Path, size: tuple[int, int] = (40, 30), value: int | None = None) -> np.ndarray:
    """Write an RGB JPEG (width, height) and return its pixels; ``value`` makes it flat."""
    w, h = size
    pixels = (np.full((h, w, 3), value, np.uint8) if value is not None
              else RNG.integers(0, 256, (h, w, 3), dtype=np.uint8))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, quality=95)
    return pixels


def _pickle(path: Path, obj: dict) -> None:
    """Write like the original CIFAR files: protocol 2, bytes keys (Python 2 era)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump({k.encode(): v for k, v in obj.items()}, f, protocol=2)


# --- ImageNet-style folders ------------------------------------------------------------------

def test_imagefolder(tmp_path: Path) -> None:
    for c, wnid in enumerate(["n02", "n01"]):
        for k in range(c + 2):
            _jpg(tmp_path / "train" / wnid / f"{wnid}_{k}.JPEG", value=40 * (c + 1))
    (tmp_path / "train" / "n01" / "notes.txt").write_text("not an image")
    ds = ImageFolderDataset(tmp_path, split="train")
    assert ds.classes == ["n01", "n02"] and len(ds) == 5
    labels = [ds[i][1] for i in range(len(ds))]
    assert labels == [0, 0, 0, 1, 1]
    image, _ = ds[0]
    assert image.mode == "RGB" and abs(np.asarray(image).mean() - 80) < 3  # n01 is the 2nd written
    x, _ = ImageFolderDataset(tmp_path / "train", transform=eval_transform(16))[4]
    assert x.shape == (3, 16, 16)


def test_imagefolder_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="image-net.org"):
        ImageFolderDataset(tmp_path, split="val")
    (tmp_path / "val").mkdir()
    with pytest.raises(DatasetNotFoundError, match="class sub-folders"):
        ImageFolderDataset(tmp_path, split="val")
    (tmp_path / "val" / "n01").mkdir()
    with pytest.raises(DatasetNotFoundError, match="Expected images"):
        ImageFolderDataset(tmp_path, split="val")


# --- CIFAR -----------------------------------------------------------------------------------

def _cifar_batch(n: int, num_classes: int, label_key: str) -> tuple[dict, np.ndarray, list]:
    images = RNG.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    labels = RNG.integers(0, num_classes, n).tolist()
    flat = images.transpose(0, 3, 1, 2).reshape(n, 3072)  # the files store planar R, G, B
    return {"data": flat, label_key: labels, "filenames": [b"x.png"] * n}, images, labels


def test_cifar10(tmp_path: Path) -> None:
    base = tmp_path / "cifar-10-batches-py"
    expected_images, expected_labels = [], []
    for k in range(1, 6):
        batch, images, labels = _cifar_batch(3, 10, "labels")
        _pickle(base / f"data_batch_{k}", batch)
        expected_images.append(images)
        expected_labels += labels
    test_batch, test_images, test_labels = _cifar_batch(2, 10, "labels")
    _pickle(base / "test_batch", test_batch)
    _pickle(base / "batches.meta", {"label_names": [f"c{i}".encode() for i in range(10)]})

    train = CIFAR10(tmp_path)  # parent folder, as torchvision downloads it
    assert len(train) == 15 and train.classes[3] == "c3"
    np.testing.assert_array_equal(train.data, np.concatenate(expected_images))
    image, label = train[7]
    np.testing.assert_array_equal(np.asarray(image), expected_images[2][1])
    assert label == expected_labels[7]
    test = CIFAR10(base, split="test")  # the batches folder itself
    np.testing.assert_array_equal(np.asarray(test[1][0]), test_images[1])
    assert test[1][1] == test_labels[1]


def test_cifar100(tmp_path: Path) -> None:
    base = tmp_path / "cifar-100-python"
    batch, images, labels = _cifar_batch(4, 100, "fine_labels")
    batch["coarse_labels"] = [0] * 4
    _pickle(base / "train", batch)
    _pickle(base / "test", _cifar_batch(2, 100, "fine_labels")[0])
    _pickle(base / "meta", {"fine_label_names": [f"f{i}".encode() for i in range(100)],
                            "coarse_label_names": [b"c"] * 20})
    ds = CIFAR100(tmp_path)
    assert len(ds) == 4 and len(ds.classes) == 100 and ds.classes[99] == "f99"
    assert [ds[i][1] for i in range(4)] == labels
    np.testing.assert_array_equal(np.asarray(ds[3][0]), images[3])
    x, _ = CIFAR100(tmp_path, transform=train_transform(32))[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32


def test_cifar_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="cifar-10-python.tar.gz"):
        CIFAR10(tmp_path)
    base = tmp_path / "cifar-10-batches-py"
    _pickle(base / "batches.meta", {"label_names": [b"a"] * 10})
    with pytest.raises(DatasetNotFoundError, match="data_batch_1"):
        CIFAR10(tmp_path)
    (base / "data_batch_1").write_bytes(b"garbage")
    with pytest.raises(DatasetFormatError, match="not a readable CIFAR pickle"):
        CIFAR10(tmp_path)
    _pickle(base / "data_batch_1", {"data": np.zeros((2, 3072), np.uint8)})
    with pytest.raises(DatasetFormatError, match="'labels'"):
        CIFAR10(tmp_path)
    with pytest.raises(ValueError, match="split"):
        CIFAR10(tmp_path, split="val")


# --- Oxford-IIIT Pets ------------------------------------------------------------------------

def _pets(root: Path) -> None:
    ann = root / "oxford-iiit-pet" / "annotations"
    lines = ["#Image CLASS-ID SPECIES BREED ID", "Abyssinian_1 1 1 1", "american_bulldog_7 2 2 1",
             "Abyssinian_2 1 1 1"]
    ann.mkdir(parents=True)
    (ann / "trainval.txt").write_text("\n".join(lines) + "\n")
    (ann / "test.txt").write_text("american_bulldog_9 2 2 1\n")
    for name, value in [("Abyssinian_1", 10), ("american_bulldog_7", 20), ("Abyssinian_2", 30),
                        ("american_bulldog_9", 40)]:
        _jpg(root / "oxford-iiit-pet" / "images" / f"{name}.jpg", value=value)
        trimap = np.full((30, 40), 2, np.uint8)
        trimap[5:20, 5:30] = 1
        (ann / "trimaps").mkdir(exist_ok=True)
        Image.fromarray(trimap).save(ann / "trimaps" / f"{name}.png")


def test_pets(tmp_path: Path) -> None:
    _pets(tmp_path)
    ds = OxfordPets(tmp_path)
    assert len(ds) == 3 and ds.classes == ["Abyssinian", "american_bulldog"]
    image, label = ds[1]
    assert label == 1 and abs(np.asarray(image).mean() - 20) < 3
    trimap = ds.trimap(0)
    assert trimap.shape == (30, 40) and set(np.unique(trimap)) == {1, 2}
    test = OxfordPets(tmp_path / "oxford-iiit-pet", split="test")
    assert len(test) == 1 and test[0][1] == 1


def test_pets_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="robots.ox.ac.uk"):
        OxfordPets(tmp_path)
    _pets(tmp_path)
    (tmp_path / "oxford-iiit-pet" / "annotations" / "test.txt").write_text("broken line\n")
    with pytest.raises(DatasetFormatError, match=r"test.txt:1"):
        OxfordPets(tmp_path, split="test")


# --- Flowers-102 -----------------------------------------------------------------------------

def _flowers(root: Path) -> np.ndarray:
    base = root / "flowers-102"
    labels = np.array([[5, 1, 102, 7, 5]])  # MATLAB row vector, 1-based classes
    base.mkdir(parents=True)
    scipy.io.savemat(base / "imagelabels.mat", {"labels": labels})
    scipy.io.savemat(base / "setid.mat", {"trnid": np.array([[1, 3]]), "valid": np.array([[2]]),
                                          "tstid": np.array([[4, 5]])})
    for k in range(1, 6):
        _jpg(base / "jpg" / f"image_{k:05d}.jpg", value=20 * k)
    return labels.ravel()


def test_flowers102(tmp_path: Path) -> None:
    labels = _flowers(tmp_path)
    train = Flowers102(tmp_path)
    assert len(train) == 2 and len(train.classes) == 102
    assert [train[i][1] for i in range(2)] == [labels[0] - 1, labels[2] - 1] == [4, 101]
    assert abs(np.asarray(train[1][0]).mean() - 60) < 3  # image_00003
    assert [Flowers102(tmp_path, split="val")[0][1]] == [0]
    assert Flowers102(tmp_path / "flowers-102", split="test").image_ids == [4, 5]


def test_flowers102_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="imagelabels.mat"):
        Flowers102(tmp_path)
    _flowers(tmp_path)
    scipy.io.savemat(tmp_path / "flowers-102" / "setid.mat", {"trnid": np.array([[1]])})
    with pytest.raises(DatasetFormatError, match="'valid'"):
        Flowers102(tmp_path, split="val")
    scipy.io.savemat(tmp_path / "flowers-102" / "setid.mat", {"trnid": np.array([[9]])})
    with pytest.raises(DatasetFormatError, match="outside"):
        Flowers102(tmp_path)


# --- PASCAL VOC 2012 -------------------------------------------------------------------------

def _voc(root: Path) -> dict[str, np.ndarray]:
    base = root / "VOCdevkit" / "VOC2012"
    labels = {}
    for k, name in enumerate(["2007_000032", "2007_000039"]):
        _jpg(base / "JPEGImages" / f"{name}.jpg")
        label = np.zeros((30, 40), np.uint8)
        label[5:25, 10:30] = 15 + k  # person / pottedplant
        label[5, 10:30] = 255  # void boundary
        png = Image.fromarray(label, "P")
        png.putpalette(voc_palette())
        (base / "SegmentationClass").mkdir(parents=True, exist_ok=True)
        png.save(base / "SegmentationClass" / f"{name}.png")
        labels[name] = label
    (base / "ImageSets" / "Segmentation").mkdir(parents=True)
    (base / "ImageSets" / "Segmentation" / "val.txt").write_text("\n".join(labels) + "\n")
    return labels


def test_voc(tmp_path: Path) -> None:
    labels = _voc(tmp_path)
    ds = VOCSegmentation(tmp_path)
    assert ds.names == list(labels) and len(ds) == 2
    image, target = ds[1]
    assert image.size == (40, 30) and target.dtype == torch.int64 and target.shape == (30, 40)
    np.testing.assert_array_equal(target.numpy(), labels["2007_000039"])
    assert set(target.unique().tolist()) == {0, 16, 255}
    x, target = VOCSegmentation(tmp_path / "VOCdevkit", transform=eval_transform(24))[0]
    assert x.shape == (3, 24, 24) and target.shape == (30, 40)


def test_voc_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="VOCtrainval_11-May-2012.tar"):
        VOCSegmentation(tmp_path)
    _voc(tmp_path)
    png = tmp_path / "VOCdevkit" / "VOC2012" / "SegmentationClass" / "2007_000032.png"
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(png)  # colour-rendered label
    with pytest.raises(DatasetFormatError, match="palette"):
        VOCSegmentation(tmp_path)[0]


# --- COCO ------------------------------------------------------------------------------------

def _coco(root: Path) -> None:
    for image_id in (397133, 37777):
        _jpg(root / "val2017" / f"{image_id:012d}.jpg", size=(48, 32), value=image_id % 200)
    ann = {"images": [{"id": 397133, "file_name": "000000397133.jpg", "height": 32, "width": 48},
                      {"id": 37777, "file_name": "000000037777.jpg", "height": 32, "width": 48}],
           "annotations": [{"id": 1, "image_id": 37777, "category_id": 1, "iscrowd": 0,
                            "bbox": [2, 3, 10, 8], "area": 80.0,
                            "segmentation": [[2, 3, 12, 3, 12, 11, 2, 11]]}],
           "categories": [{"id": 1, "name": "person", "supercategory": "person"}]}
    (root / "annotations").mkdir()
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(ann))


def test_coco(tmp_path: Path) -> None:
    _coco(tmp_path)
    ds = COCODetection(tmp_path)
    assert ds.annotation_file == tmp_path / "annotations" / "instances_val2017.json"
    assert ds.image_ids == [37777, 397133] and len(ds) == 2
    image, image_id = ds[0]
    assert image_id == 37777 and image.size == (48, 32)
    assert abs(np.asarray(image).mean() - 37777 % 200) < 3
    assert ds.coco.getAnnIds(imgIds=[37777]) == [1]


def test_coco_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="annotations_trainval2017.zip"):
        COCODetection(tmp_path)
    _coco(tmp_path)
    (tmp_path / "annotations" / "instances_val2017.json").write_text('{"images": []}')
    with pytest.raises(DatasetFormatError, match="missing"):
        COCODetection(tmp_path)
    (tmp_path / "annotations" / "instances_val2017.json").write_text("{not json")
    with pytest.raises(DatasetFormatError, match="COCO instances JSON"):
        COCODetection(tmp_path)


# --- factory and transforms ------------------------------------------------------------------

def test_build_dataset_covers_every_name(tmp_path: Path) -> None:
    _pets(tmp_path)
    _flowers(tmp_path)
    _voc(tmp_path)
    _coco(tmp_path)
    base = tmp_path / "cifar-10-batches-py"
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"]:
        _pickle(base / name, _cifar_batch(1, 10, "labels")[0])
    _pickle(base / "batches.meta", {"label_names": [b"a"] * 10})
    base = tmp_path / "cifar-100-python"
    _pickle(base / "train", _cifar_batch(1, 100, "fine_labels")[0])
    _pickle(base / "meta", {"fine_label_names": [b"f"] * 100})
    _jpg(tmp_path / "folders" / "n01" / "a.JPEG")
    roots = {"imagefolder": tmp_path / "folders", "synthetic": tmp_path / "cache"}
    expected = {"synthetic": SyntheticDataset, "imagefolder": ImageFolderDataset,
                "cifar10": CIFAR10, "cifar100": CIFAR100, "pets": OxfordPets,
                "flowers102": Flowers102, "voc": VOCSegmentation, "coco": COCODetection}
    assert set(expected) == set(DATASETS)
    for name, cls in expected.items():
        kwargs = {"num_images": 3, "image_size": 32} if name == "synthetic" else {}
        ds = build_dataset(name, roots.get(name, tmp_path), **kwargs)
        assert isinstance(ds, cls) and len(ds) > 0, name
    synthetic = build_dataset("synthetic", tmp_path / "cache", "val", num_images=3, image_size=32)
    assert synthetic.data.config.split == "val"


def test_build_dataset_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="known: synthetic, imagefolder, cifar10"):
        build_dataset("imagenet", tmp_path)
    with pytest.raises(ValueError, match="root"):
        build_dataset("cifar10")
    with pytest.raises(TypeError, match="extra"):
        build_dataset("cifar10", tmp_path, num_images=3)


def test_transforms_normalise_and_flip() -> None:
    image = Image.fromarray(np.tile(np.arange(8, dtype=np.uint8)[None, :, None] * 30, (8, 1, 3)))
    x = eval_transform(8, mean=(0, 0, 0), std=(1, 1, 1))(image)
    torch.testing.assert_close(x[0, 0], torch.arange(8.0) * 30 / 255)
    torch.manual_seed(0)
    rows = {tuple(train_transform(8, mean=(0, 0, 0), std=(1, 1, 1))(image)[0, 0].tolist())
            for _ in range(20)}
    assert len(rows) == 2  # identity and horizontal flip
    y = eval_transform(4, crop_fraction=0.5)(image)  # resize to 8, keep the central 4x4
    assert y.shape == (3, 4, 4)
    with pytest.raises(ValueError, match="random_resized"):
        train_transform(8, crop="corner")
