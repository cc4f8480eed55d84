"""The synthetic data set: determinism, exact ground truth, learnability properties, cache."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from cratelib.data import synthetic_store
from cratelib.data.shapes import SHAPES, rasterize
from cratelib.data.synthetic import CLASS_NAMES, SyntheticConfig, SyntheticData, generate
from cratelib.data.synthetic_store import SyntheticDataset, default_cache_dir, load_or_generate
from cratelib.data.transforms import IMAGENET_MEAN, IMAGENET_STD

SINGLE = SyntheticConfig(60, image_size=64, seed=3, version=3)
MULTI = SyntheticConfig(12, image_size=128, min_objects=2, max_objects=3, seed=4, split="val", version=3)


@pytest.fixture(scope="module")
def single() -> SyntheticData:
    return generate(SINGLE)


@pytest.fixture(scope="module")
def multi() -> SyntheticData:
    return generate(MULTI)


def test_shapes_and_dtypes(single: SyntheticData) -> None:
    n, s = SINGLE.num_images, SINGLE.image_size
    assert single.images.shape == (n, s, s, 3) and single.images.dtype == np.uint8
    assert single.labels.shape == (n,) and single.labels.dtype == np.int64
    assert single.semantic.shape == (n, s, s) and single.semantic.dtype == np.uint8
    assert single.instance_map.shape == (n, s, s)
    assert single.class_names == CLASS_NAMES[:10]


def test_deterministic_for_a_seed(single: SyntheticData) -> None:
    again = generate(SINGLE)
    for key in ("images", "labels", "semantic", "instance_map"):
        np.testing.assert_array_equal(getattr(again, key), getattr(single, key))
    other_seed = generate(dataclasses.replace(SINGLE, seed=4))
    other_split = generate(dataclasses.replace(SINGLE, split="test"))
    assert not np.array_equal(other_seed.images, single.images)
    assert not np.array_equal(other_split.images, single.images)


def test_semantic_map_is_union_of_instances(single: SyntheticData, multi: SyntheticData) -> None:
    for data in (single, multi):
        for i, objects in enumerate(data.instances):
            rebuilt = np.zeros_like(data.semantic[i])
            for obj in objects:
                assert not rebuilt[obj["mask"]].any(), "visible masks must be disjoint"
                rebuilt[obj["mask"]] = obj["class_id"] + 1
            np.testing.assert_array_equal(rebuilt, data.semantic[i])
            assert data.labels[i] == objects[0]["class_id"]


def test_boxes_are_tight(multi: SyntheticData) -> None:
    for objects in multi.instances:
        for obj in objects:
            x, y, w, h = obj["box"]
            mask = obj["mask"]
            assert mask[y:y + h, x:x + w].sum() == mask.sum() == obj["area"]
            # every edge row/column of the box touches the mask
            inner = mask[y:y + h, x:x + w]
            assert inner[0].any() and inner[-1].any() and inner[:, 0].any() and inner[:, -1].any()


def test_object_counts_and_main_object_largest(multi: SyntheticData) -> None:
    counts = [len(objs) for objs in multi.instances]
    assert min(counts) >= MULTI.min_objects and max(counts) <= MULTI.max_objects
    assert len(set(counts)) > 1
    for objs in multi.instances:
        assert objs[0]["area"] == max(o["area"] for o in objs)


def test_main_objects_are_large(single: SyntheticData) -> None:
    area = (single.instance_map == 1).mean(axis=(1, 2))
    assert area.min() >= 0.19 and area.max() <= 0.46
    assert 0.25 <= area.mean() <= 0.40


def test_objects_stand_out_from_their_surroundings(multi: SyntheticData) -> None:
    """Mean colour inside each visible mask vs a 2-px ring of background around it."""
    for image, inst in zip(multi.images.astype(float), multi.instance_map):
        for k in range(1, int(inst.max()) + 1):
            mask = inst == k
            ring = ndimage.binary_dilation(mask, iterations=2) & (inst == 0)
            if ring.sum() < 10:
                continue
            assert np.linalg.norm(image[mask].mean(0) - image[ring].mean(0)) > 30


def test_background_is_busy_but_not_blank(single: SyntheticData) -> None:
    """The background varies (clutter), yet less than object vs background."""
    bg = single.instance_map == 0
    stds = [single.images[i][bg[i]].astype(float).std(0).mean() for i in range(len(single))]
    assert min(stds) > 5


def test_classes_are_balanced() -> None:
    data = generate(SyntheticConfig(53, num_classes=5, seed=1, version=3))
    counts = np.bincount(data.labels, minlength=5)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 53


def test_patch_level_mask_beats_uniform_map(single: SyntheticData) -> None:
    """At 8-px patches, an attention map equal to the object mask segments the object well,
    a uniform map does not: the objects are large enough for the coarse-segmentation metric."""
    main = (single.instance_map == 1).astype(float)  # (n, 64, 64)
    n, s, _ = main.shape
    patch = main.reshape(n, s // 8, 8, s // 8, 8).mean((2, 4))  # (n, 8, 8)
    predicted = np.kron(patch >= 0.5, np.ones((8, 8))).astype(bool)

    def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return (a & b).sum((1, 2)) / (a | b).sum((1, 2))

    oracle = iou(predicted, main.astype(bool))
    uniform = iou(np.ones_like(predicted), main.astype(bool))
    assert oracle.mean() > 0.75 and uniform.mean() < 0.4


def test_max_rotation_limits_the_rotation() -> None:
    """Squares (class 1) fill their tight box when upright, and not when turned."""
    def square_fill(max_rotation: float) -> np.ndarray:
        data = generate(SyntheticConfig(40, num_classes=2, seed=6, max_rotation=max_rotation, version=3))
        return np.array([o[0]["area"] / (o[0]["box"][2] * o[0]["box"][3])
                         for o, y in zip(data.instances, data.labels) if y == 1])

    assert square_fill(0.0).min() > 0.95
    turned = square_fill(180.0)  # capped by the square's own limit of 45 degrees
    assert turned.min() < 0.75 and turned.min() > 0.45


def test_rasterize_matches_the_shape_area() -> None:
    for shape in SHAPES:
        mask = rasterize(shape, (64.0, 64.0), 40.0, 17.0, 128)
        assert math.isclose(mask.sum(), shape.unit_area * 40.0**2, rel_tol=0.03), shape.name


@pytest.mark.parametrize("bad", [dict(image_size=60), dict(image_size=240), dict(num_classes=11),
                                 dict(min_objects=2, max_objects=1), dict(split="dev"),
                                 dict(other_area=(0.1, 0.3)), dict(max_rotation=-1)])
def test_invalid_config_is_rejected(bad: dict) -> None:
    with pytest.raises(ValueError, match="SyntheticConfig"):
        SyntheticConfig(4, **bad)


def test_config_json_round_trip_and_cache_key() -> None:
    assert SyntheticConfig.from_json(MULTI.to_json()) == MULTI
    assert MULTI.cache_key() != dataclasses.replace(MULTI, seed=5).cache_key()


def test_cache_dir_follows_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CRATELIB_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "synthetic"


def test_cache_round_trip(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = SyntheticConfig(6, image_size=32, seed=9)
    first = load_or_generate(config, tmp_path)
    files = list(tmp_path.iterdir())
    assert [f.name for f in files] == [f"synthetic-{config.cache_key()}.npz"]

    def fail(_: SyntheticConfig) -> SyntheticData:
        raise AssertionError("should have been read from the cache")

    monkeypatch.setattr(synthetic_store, "generate", fail)
    second = load_or_generate(config, tmp_path)
    for key in ("images", "labels", "semantic", "instance_map"):
        np.testing.assert_array_equal(getattr(first, key), getattr(second, key))


def test_epoch_draws_are_cached_compressed_with_only_what_training_reads(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Path) -> None:
    config = SyntheticConfig(40, image_size=64, seed=3)
    images, labels = synthetic_store.epoch_images(config, 2, tmp_path)
    drawn = generate(config, epoch=2)
    np.testing.assert_array_equal(images, drawn.images)
    np.testing.assert_array_equal(labels, drawn.labels)
    path = synthetic_store.cache_path(config, tmp_path, epoch=2)
    assert [f.name for f in tmp_path.iterdir()] == [path.name] and path.name.endswith("-e2-train.npz")
    with np.load(path) as f:
        assert sorted(f.files) == ["config", "images", "labels"]
    assert path.stat().st_size < drawn.images.nbytes / 4  # compressed: textures and fills repeat

    def fail(*_) -> SyntheticData:
        raise AssertionError("should have been read from the cache")

    monkeypatch.setattr(synthetic_store, "generate", fail)
    again, again_labels = synthetic_store.epoch_images(config, 2, tmp_path)
    np.testing.assert_array_equal(again, images)
    np.testing.assert_array_equal(again_labels, labels)
    monkeypatch.undo()
    path.write_bytes(path.read_bytes()[:100])  # damaged: drawn again, with a warning
    with pytest.warns(UserWarning, match="regenerating"):
        np.testing.assert_array_equal(synthetic_store.epoch_images(config, 2, tmp_path)[0], images)
    np.testing.assert_array_equal(synthetic_store.epoch_images(config, 3, tmp_path)[0], generate(config, epoch=3).images)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_cache_is_regenerated(tmp_path: Path, damage: str) -> None:
    config = SyntheticConfig(4, image_size=32, seed=2)
    path = tmp_path / f"synthetic-{config.cache_key()}.npz"
    if damage == "garbage":
        path.write_bytes(b"not an npz")
    else:
        load_or_generate(config, tmp_path)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.warns(UserWarning, match="regenerating"):
        data = load_or_generate(config, tmp_path)
    np.testing.assert_array_equal(data.images, generate(config).images)
    with np.load(path) as f:
        assert str(f["config"]) == config.to_json()


def test_failed_cache_write_leaves_no_files(monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    def broken_savez(f, **arrays) -> None:
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(synthetic_store.np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        load_or_generate(SyntheticConfig(2, image_size=32), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_dataset_items(tmp_path: Path) -> None:
    config = SyntheticConfig(5, image_size=32, seed=1)
    ds = SyntheticDataset(config, cache_dir=tmp_path)
    x, y = ds[2]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y == ds.data.labels[2]
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1)
    pixels = torch.from_numpy(ds.data.images[2]).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(x * std + mean, pixels)

    plain = SyntheticDataset(config, mean=(0, 0, 0), std=(1, 1, 1), cache=False)
    torch.testing.assert_close(plain[2][0], pixels)
    flipped = SyntheticDataset(config, transform=lambda im: np.asarray(im)[:, ::-1], cache=False)
    np.testing.assert_array_equal(flipped[2][0], ds.data.images[2][:, ::-1])
