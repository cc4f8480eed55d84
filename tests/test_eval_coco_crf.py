"""Class-agnostic COCO evaluation of MaskCut detections, and dense-CRF refinement."""

import json

import numpy as np
import pytest
from pycocotools.coco import COCO

from cratelib.eval.coco_eval import (
    class_agnostic_coco,
    detections_for_image,
    evaluate_detections,
    write_detections,
)
from cratelib.eval.crf import densecrf, refine_mask
from cratelib.eval.metrics import iou


def box_mask(h, w, r0, r1, c0, c1):
    m = np.zeros((h, w), dtype=bool)
    m[r0:r1, c0:c1] = True
    return m


@pytest.fixture
def two_images(coco_gt):
    """Two 64x48 images, objects of categories 3 and 7 (the evaluation ignores them)."""
    objs = {
        1: [(box_mask(64, 48, 5, 30, 4, 20), 3), (box_mask(64, 48, 35, 60, 20, 44), 7)],
        2: [(box_mask(64, 48, 10, 50, 10, 40), 7)],
    }
    return coco_gt(objs, categories={3: "a", 7: "b"}), objs


def test_perfect_detections_give_ap_one(two_images):
    gt, objs = two_images
    dets = []
    for img_id, items in objs.items():
        dets += detections_for_image(img_id, [m for m, _ in items])
    res = evaluate_detections(gt, dets)
    for t in ("bbox", "segm"):
        assert res[t] == {"AP": pytest.approx(1.0), "AP50": pytest.approx(1.0), "AP75": pytest.approx(1.0)}


def test_empty_and_wrong_detections_give_zero(two_images):
    gt, _ = two_images
    assert evaluate_detections(gt, [])["segm"]["AP"] == 0.0
    far = detections_for_image(1, [box_mask(64, 48, 0, 3, 44, 48)])
    res = evaluate_detections(gt, far)
    assert res["bbox"]["AP"] == 0.0 and res["segm"]["AP50"] == 0.0


def test_partial_detection_and_subset_of_images(two_images):
    gt, objs = two_images
    # only image 1's first object found: recall 1/2 on image 1 -> AP about 0.5
    dets = detections_for_image(1, [objs[1][0][0]])
    res = evaluate_detections(gt, dets, image_ids=[1])
    assert 0.45 < res["segm"]["AP"] < 0.55
    # scored on both images, recall is 1/3
    assert evaluate_detections(gt, dets)["segm"]["AP"] < res["segm"]["AP"]
    # a box whose IoU with the object is between .5 and .75 counts for AP50, not AP75
    m = objs[2][0][0]
    loose = box_mask(64, 48, 10, 50, 10, 28)  # 18 of 30 columns: IoU 0.6
    res = evaluate_detections(gt, detections_for_image(2, [loose]), image_ids=[2])
    assert iou(loose, m) == pytest.approx(0.6)
    assert res["bbox"]["AP50"] == pytest.approx(1.0) and res["bbox"]["AP75"] == 0.0


def test_detections_json_round_trips_through_pycocotools(tmp_path, two_images):
    gt, objs = two_images
    dets = detections_for_image(2, [objs[2][0][0], np.zeros((64, 48), bool)], scores=[0.9, 0.1])
    assert len(dets) == 1 and dets[0]["bbox"] == [10.0, 10.0, 30.0, 40.0]
    path = write_detections(dets, tmp_path / "dets.json")
    coco = class_agnostic_coco(gt)
    loaded = coco.loadRes(str(path))
    ann = loaded.loadAnns(loaded.getAnnIds())[0]
    assert ann["category_id"] == 1 and ann["score"] == 0.9
    assert isinstance(json.loads(path.read_text())[0]["segmentation"]["counts"], str)
    assert {a["category_id"] for a in coco.dataset["annotations"]} == {1}
    assert isinstance(coco, COCO)
    with pytest.raises(ValueError, match="scores"):
        detections_for_image(1, [objs[2][0][0]], scores=[0.1, 0.2])
    with pytest.raises(ValueError, match="'annotations'"):
        class_agnostic_coco({"images": []})


def test_crf_refinement_snaps_a_blocky_noisy_mask_to_the_image_edge():
    rng = np.random.default_rng(0)
    h, w = 64, 64
    truth = np.zeros((h, w), dtype=bool)
    yy, xx = np.mgrid[:h, :w]
    truth[(yy - 30) ** 2 + (xx - 34) ** 2 < 15**2] = True  # a disc: edges off the patch grid
    image = np.where(truth[..., None], [200, 60, 40], [40, 90, 160]).astype(np.float64)
    image = np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)
    # coarse mask: the disc at 8-px patch resolution, with two patches flipped
    patches = truth.reshape(8, 8, 8, 8).mean((1, 3)) > 0.3
    patches[0, 0] = True
    patches[3, 4] = False
    coarse = np.kron(patches, np.ones((8, 8), bool))
    image.setflags(write=False)  # as np.asarray(PIL image) returns
    refined = refine_mask(image, coarse)
    assert refined is not None
    assert iou(coarse, truth) < 0.85
    assert iou(refined, truth) > iou(coarse, truth) + 0.05
    # a coarse mask with nothing to do with the image is dropped as implausible
    bogus = box_mask(h, w, 0, 64, 0, 6)
    assert refine_mask(image, bogus) is None
    # the raw CRF also accepts a mask at patch resolution
    assert densecrf(image, patches.astype(float)).shape == (h, w)


def test_crf_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="uint8"):
        densecrf(np.zeros((8, 8, 3), np.float32), np.zeros((8, 8)))
    with pytest.raises(ValueError, match="image's size"):
        refine_mask(np.zeros((8, 8, 3), np.uint8), np.zeros((4, 4), bool))


def test_missing_pydensecrf_names_the_package(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pydensecrf.densecrf", None)
    with pytest.raises(ImportError, match="pip install pydensecrf2"):
        densecrf(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8)))
