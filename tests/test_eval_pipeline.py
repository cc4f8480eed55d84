"""From files and models to metrics: sources, extraction, coarse segmentation, MaskCut on a data set."""

import numpy as np
import pytest
import torch

from cratelib import create_model
from cratelib.eval.extract import extract, load_model, to_model_input
from cratelib.eval.maskcut_eval import evaluate_maskcut, run_maskcut
from cratelib.eval.segmentation import coarse_segmentation, score_image
from cratelib.eval.sources import Sample, coco_samples, embedded_root, folder_samples, voc_samples


def test_embedded_data_is_read_back_in_both_formats(tmp_path):
    root = embedded_root(3, tmp_path)  # the shipped 8-image sample
    voc = voc_samples(root, limit=3)
    coco, ann_file = coco_samples(root, limit=2)
    assert [s.image_id for s in voc] == [1, 2, 3] and [s.image_id for s in coco] == [1, 2]
    assert ann_file.name == "instances_val2017.json"
    assert voc[0].image.shape == (224, 224, 3) and voc[0].labels.shape == (224, 224)
    assert (voc[0].labels > 0).any() and (voc[0].labels == 0).any()
    np.testing.assert_array_equal(voc[0].image, coco[0].image)
    with pytest.raises(FileNotFoundError, match="no image files"):
        folder_samples(root)
    with pytest.raises(FileNotFoundError, match="not a directory"):
        folder_samples(root / "nope")
    assert len(folder_samples(root / "val2017", limit=2)) == 2


def test_extract_shapes_and_normalisation():
    torch.manual_seed(0)
    model = create_model("crate_nano_patch8", img_size=32, num_classes=3).eval()
    images = [np.random.default_rng(i).integers(0, 255, (40 + i, 50, 3), dtype=np.uint8) for i in range(3)]
    ex = extract(model, images, layers=[-1, 2], img_size=32, batch_size=2)
    assert ex.grid == (4, 4)
    assert ex.attention[-1].shape == (3, 6, 4, 4) and ex.features[2].shape == (3, 16, 192)
    torch.testing.assert_close(ex.attention[2].sum((-2, -1)), torch.ones(3, 6))
    x = to_model_input(images[:1], 32)
    assert x.shape == (1, 3, 32, 32) and -2.2 < x.min() and x.max() < 2.7
    with pytest.raises(ValueError, match="uint8"):
        to_model_input([np.zeros((4, 4, 3), np.float32)], 32)


def test_load_model_by_name_is_deterministic_and_rejects_unknown():
    m1, id1 = load_model("crate_nano_patch8", img_size=32)
    m2, id2 = load_model("crate_nano_patch8", img_size=32)
    assert id1 == id2 and not m1.training
    _, id3 = load_model("crate_nano_patch8", img_size=32, seed=1)
    assert id3 != id1
    with pytest.raises(ValueError, match="neither a checkpoint"):
        load_model("no_such_model", img_size=32)


def patch_aligned_labels():
    """A 32x32 label map on a 4x4 grid of 8-px patches: class 5 top-left, class 9 the bottom row."""
    lab = np.zeros((32, 32), np.int64)
    lab[0:16, 0:16] = 5  # 4 patches
    lab[24:32, :] = 9  # 4 patches
    lab[20, :] = 255
    return lab


def test_coarse_segmentation_with_a_perfect_and_a_useless_head():
    lab = patch_aligned_labels()
    grid_lab = lab[4::8, 4::8]  # one pixel per patch
    perfect = torch.stack([torch.tensor(grid_lab == 5), torch.tensor(grid_lab == 9)]).float()
    perfect = perfect + 1e-3  # strictly positive maps
    miou, per, conf, best = score_image(perfect, lab, p=4 / 16, mode="top-entries")
    assert per == {5: 1.0, 9: 1.0} and best == {5: 0, 9: 1} and miou == 1.0
    # with P = 8/16 every head keeps 4 extra patches: IoU 4/8, except for the
    # 8 ignored pixels of row 20 for each extra patch in grid row 2
    _, per_half, *_ = score_image(perfect, lab, p=8 / 16, mode="top-entries")
    assert all(0.5 <= v <= 256 / (512 - 4 * 8) for v in per_half.values())
    # a flat map keeps an arbitrary 60 %: IoU strictly between 0 and 1
    flat = torch.ones(1, 4, 4)
    m_flat, *_ = score_image(flat, lab)
    assert 0 < m_flat < 1
    res = coarse_segmentation({3: perfect[None].expand(2, -1, -1, -1)}, [lab, lab], p=4 / 16)
    assert res.miou[3] == pytest.approx(miou) and res.per_image[3].shape == (2,)
    assert res.best_heads[3].tolist() == [2, 2] and 0 < res.fg_miou[3] <= 1
    with pytest.raises(ValueError, match="2 attention maps but 1 label maps"):
        coarse_segmentation({0: perfect[None].expand(2, -1, -1, -1)}, [lab])


def test_mass_mode_on_a_peaked_map():
    lab = patch_aligned_labels()
    lab[lab == 255] = 0
    peaked = torch.full((1, 4, 4), 0.01)
    peaked[0, :2, :2] = 1.0  # 97 % of the mass on class 5's four patches
    _, per, *_ = score_image(peaked, lab, p=0.9, mode="mass")
    assert per[5] == 1.0
    _, per, *_ = score_image(peaked, lab, p=0.6, mode="mass")  # 3 of the 4 patches hold 73 %
    assert per[5] == 0.75
    _, per_top, *_ = score_image(peaked, lab, p=0.6, mode="top-entries")
    assert per_top[5] == pytest.approx(4 / 10)  # 60 % of the entries is 10 patches


def test_maskcut_on_planted_features_scores_ap_one(coco_gt):
    """Features planted from the ground truth give MaskCut detections with AP 1."""
    rng = np.random.default_rng(0)
    samples, objects, feats = [], {}, []
    for img_id, (r0, r1, c0, c1) in enumerate([(2, 6, 3, 9), (4, 10, 1, 5)], start=1):
        grid_mask = np.zeros((12, 12), bool)
        grid_mask[r0:r1, c0:c1] = True
        centres = rng.normal(size=(2, 64))
        f = centres[grid_mask.ravel().astype(int)] + 0.3 * rng.normal(size=(144, 64)) / 8
        feats.append(torch.tensor(f, dtype=torch.float32))
        mask = np.kron(grid_mask, np.ones((8, 8), bool))  # 96 x 96 image
        samples.append(Sample(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8), img_id, str(img_id)))
        objects[img_id] = [(mask, 4)]
    gt = coco_gt(objects)
    run = run_maskcut(torch.stack(feats), (12, 12), samples, num_objects=1)
    scores = evaluate_maskcut(run, gt)
    assert set(scores) == {"no_crf"} and run.detections_crf is None
    assert scores["no_crf"]["segm"]["AP"] == pytest.approx(1.0)
    assert scores["no_crf"]["bbox"]["AP75"] == pytest.approx(1.0)


def test_load_model_timm_prefix_asks_timm_for_pretrained_weights(monkeypatch):
    import timm

    calls = []

    def fake_create_model(name, pretrained=False, **kwargs):
        calls.append((name, pretrained, kwargs))
        return timm.models.VisionTransformer(img_size=kwargs["img_size"], patch_size=8, embed_dim=32, depth=1,
                                             num_heads=2, num_classes=0)

    monkeypatch.setattr(timm, "create_model", fake_create_model)
    model, model_id = load_model("timm:vit_small_patch8_224.dino", img_size=32)
    assert calls == [("vit_small_patch8_224.dino", True, {"img_size": 32})]
    assert model_id == "timm-vit_small_patch8_224.dino-32" and not model.training
