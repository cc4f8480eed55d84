"""COCO / VOC export of the synthetic data and the shipped sample."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from cratelib.data import sample
from cratelib.data.export import export_coco, export_voc, voc_palette
from cratelib.data.segmentation import COCODetection, VOCSegmentation
from cratelib.data.synthetic import SyntheticConfig, SyntheticData, generate

CONFIG = SyntheticConfig(6, image_size=96, min_objects=1, max_objects=3, seed=11, split="test", version=3)


@pytest.fixture(scope="module")
def data() -> SyntheticData:
    return generate(CONFIG)


@pytest.fixture(scope="module")
def coco_dir(data: SyntheticData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("coco")
    export_coco(data, out)
    return out


def _no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def test_coco_json_content(data: SyntheticData, coco_dir: Path) -> None:
    ann_file = coco_dir / "annotations" / "instances_val2017.json"
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(ann_file))
    assert sorted(coco.getImgIds()) == list(range(1, len(data) + 1))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(data.class_names)
    for i, objects in enumerate(data.instances):
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[i + 1]))
        assert len(anns) == len(objects)
        for ann, obj in zip(anns, objects):
            np.testing.assert_array_equal(coco.annToMask(ann).astype(bool), obj["mask"])
            assert ann["bbox"] == list(obj["box"]) and ann["area"] == obj["area"]
            assert ann["category_id"] == obj["class_id"] + 1 and ann["iscrowd"] == 0
    assert _no_temp_files(coco_dir)


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_cocoeval_of_ground_truth_against_itself_is_perfect(coco_dir: Path, iou_type: str) -> None:
    ann_file = coco_dir / "annotations" / "instances_val2017.json"
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(ann_file))
        dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 1.0,
                 "bbox": a["bbox"], "segmentation": a["segmentation"]}
                for a in json.loads(ann_file.read_text())["annotations"]]
        evaluator = COCOeval(gt, gt.loadRes(dets), iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    ap, ap50, ap75 = evaluator.stats[:3]
    assert ap == ap50 == ap75 == pytest.approx(1.0)


def test_coco_loader_reads_the_export(data: SyntheticData, coco_dir: Path) -> None:
    ds = COCODetection(coco_dir)
    assert len(ds) == len(data) and ds.image_ids == list(range(1, len(data) + 1))
    image, image_id = ds[3]
    assert image_id == 4 and image.size == (96, 96)
    # JPEG at quality 95 stays close to the generated pixels
    err = np.abs(np.asarray(image, dtype=float) - data.images[3]).mean()
    assert err < 6
    assert len(ds.coco.getAnnIds()) == sum(len(o) for o in data.instances)


def test_png_export_is_lossless(data: SyntheticData, tmp_path: Path) -> None:
    export_coco(data, tmp_path, split="val", image_format="png")
    image, _ = COCODetection(tmp_path, split="val")[0]
    np.testing.assert_array_equal(np.asarray(image), data.images[0])


def test_voc_export_reads_back_identically(data: SyntheticData, tmp_path: Path) -> None:
    root = export_voc(data, tmp_path / "VOCdevkit" / "VOC2012")
    assert (root / "ImageSets" / "Segmentation" / "val.txt").read_text().split() == [
        f"{i + 1:06d}" for i in range(len(data))]
    ds = VOCSegmentation(tmp_path)  # finds VOCdevkit/VOC2012 below the parent
    assert len(ds) == len(data)
    for i in range(len(data)):
        image, target = ds[i]
        np.testing.assert_array_equal(target.numpy(), data.semantic[i])
        assert image.size == (96, 96)
        with Image.open(root / "SegmentationObject" / f"{ds.names[i]}.png") as inst:
            assert inst.mode == "P"
            np.testing.assert_array_equal(np.array(inst), data.instance_map[i])
    with Image.open(root / "SegmentationClass" / f"{ds.names[0]}.png") as png:
        assert png.mode == "P" and png.getpalette()[:768] == voc_palette()
    assert voc_palette()[255 * 3: 256 * 3] == [224, 224, 192]
    assert _no_temp_files(tmp_path)


def test_shipped_sample_loads_and_matches_generator() -> None:
    for name, config in sample.SAMPLE_CONFIGS.items():
        assert (sample.REPO_SAMPLE_DIR / name / "config.json").exists(), \
            "data/sample is missing: run `python -m cratelib.data`"
        assert sample.sample_dir(name) == sample.REPO_SAMPLE_DIR / name
        loaded = sample.load_sample(name)
        fresh = generate(config)
        np.testing.assert_array_equal(loaded.semantic, fresh.semantic)
        np.testing.assert_array_equal(loaded.instance_map, fresh.instance_map)
        np.testing.assert_array_equal(loaded.labels, fresh.labels)
        assert np.abs(loaded.images.astype(float) - fresh.images).mean() < 6


def test_sample_is_regenerated_without_the_repo_copy(monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    monkeypatch.setattr(sample, "REPO_SAMPLE_DIR", tmp_path / "absent")
    monkeypatch.setenv("CRATELIB_CACHE", str(tmp_path / "cache"))
    folder = sample.sample_dir("shapes64")
    assert folder == tmp_path / "cache" / "synthetic" / "sample" / "shapes64"
    assert (folder / "annotations" / "instances_val2017.json").exists()
    loaded = sample.load_sample("shapes64")
    fresh = generate(sample.SAMPLE_CONFIGS["shapes64"])
    np.testing.assert_array_equal(loaded.semantic, fresh.semantic)
    assert _no_temp_files(tmp_path)


def test_unknown_sample_name() -> None:
    with pytest.raises(ValueError, match="shapes64"):
        sample.load_sample("nope")
