"""Helpers of the ablation chapter (cratelib.figures.ablations): inventory, parameter counts,
measures, statistics, the computed verdict and the figures."""

import json

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cratelib import create_model  # noqa: E402
from cratelib.eval.reference import TABLE2_ABLATION  # noqa: E402
from cratelib.eval.sources import Sample  # noqa: E402
from cratelib.figures import ablations as abl  # noqa: E402
from cratelib.models.registry import FAMILIES  # noqa: E402
from cratelib.train.config import load_config  # noqa: E402
from cratelib.train.zoo import zoo_names  # noqa: E402


def test_variants_match_the_zoo_presets_and_table2():
    assert set(abl.VARIANTS) == set(zoo_names())
    for name, v in abl.VARIANTS.items():
        family = FAMILIES[load_config(f"zoo-{name}").model.rsplit("_nano", 1)[0]]
        assert v.attn == family["attn"].upper()
        assert v.block.split(",")[0] == family["mlp"].split("_")[0].upper()
    assert [abl.VARIANTS[n].paper_row for n in abl.TABLE2_NAMES] == list(TABLE2_ABLATION)
    assert abl.VARIANTS["crate-sth"].paper_row is None


def test_shipped_needs_checkpoint_and_record(tmp_path):
    (tmp_path / "crate.pt").write_bytes(b"x")
    (tmp_path / "crate.json").write_text("{}")
    (tmp_path / "vit.pt").write_bytes(b"x")  # no record: not shipped
    assert abl.shipped(zoo_dir=tmp_path) == ["crate"]
    assert abl.shipped(["vit", "crate"], zoo_dir=tmp_path) == ["crate"]
    note = abl.missing_note(["crate-mlp", "crate-sth"])
    assert "`crate-mlp` (CRATE-MLP)" in note and "`crate-sth` (CRATE-sth)" in note
    assert "All five" in abl.missing_note([])


@pytest.mark.parametrize("name", ["crate", "crate-mlp", "crate-mhsa", "vit", "crate-sth"])
def test_param_breakdown_adds_up_and_follows_the_formulas(name):
    p = abl.param_breakdown(name)
    config = load_config(f"zoo-{name}")
    model = create_model(config.model, img_size=config.img_size, num_classes=config.num_classes, **config.model_args)
    assert p["total"] == sum(t.numel() for t in model.parameters())
    assert p["total"] == p["layers"] + p["embedding"] + p["head"]
    assert p["layers"] == model.depth * (p["attention"] + p["second"] + p["norms"])
    d = config.model_args["dim"]
    attn = {"MSSA": 2 * d * d + d, "MHSA": 4 * d * d + 4 * d}[abl.VARIANTS[name].attn]
    second = 8 * d * d + 5 * d if abl.VARIANTS[name].block == "MLP" else d * d
    assert (p["attention"], p["second"]) == (attn, second)


def test_architecture_rows_mark_unshipped_models():
    rows = abl.architecture_rows(["crate", "vit"], {"crate": 0.95})
    assert rows[0]["held-out accuracy"] == "95.0 %" and rows[1]["held-out accuracy"] == "not shipped"
    assert rows[1]["attention"] == "MHSA" and rows[1]["second block"] == "MLP"


def _disc(r: int = 32) -> np.ndarray:
    yy, xx = np.mgrid[:64, :64]
    return (yy - 24) ** 2 + (xx - 24) ** 2 < r**2 / 4


def test_layer_scores_reward_a_map_on_the_object():
    truth = _disc()
    labels = truth.astype(np.uint8) * 3
    frac = torch.nn.functional.adaptive_avg_pool2d(torch.from_numpy(truth).float()[None, None], (8, 8))[0, 0]
    inside = (frac == 1).float() + 1e-9  # attention only on patches wholly inside the object
    on_object = inside / inside.sum()
    uniform = torch.full((8, 8), 1 / 64)
    maps = torch.stack([on_object, uniform])[:, None, None].expand(2, 2, 1, 8, 8)  # (L=2, J=2, K=1)
    s = abl.layer_scores(maps, [truth, truth], [labels, labels])
    assert s.on.shape == s.miou.shape == s.mass_iou.shape == (2, 2)
    assert s.on[1, 0] == pytest.approx(truth.mean(), abs=0.02)  # uniform map: the object's share
    assert s.on[0, 0] > 0.99
    assert s.mass_iou[0, 0] > s.mass_iou[1, 0]
    np.testing.assert_allclose(s.mean("on"), s.on.mean(1))


def test_object_hits_and_box_iou():
    gt = {"images": [{"id": 1}, {"id": 2}],
          "annotations": [{"image_id": 1, "bbox": [0, 0, 10, 10]}, {"image_id": 1, "bbox": [20, 20, 10, 10]},
                          {"image_id": 2, "bbox": [0, 0, 10, 10]}]}
    dets = [{"image_id": 1, "bbox": [0, 0, 10, 8]},  # IoU 0.8 with the first object
            {"image_id": 1, "bbox": [25, 25, 10, 10]},  # IoU 25/175 with the second
            {"image_id": 2, "bbox": [0, 0, 10, 10]}]
    np.testing.assert_array_equal(abl.object_hits(dets, gt), [1, 0, 1])
    np.testing.assert_array_equal(abl.object_hits(dets, gt, threshold=0.9), [0, 0, 1])
    np.testing.assert_array_equal(abl.object_hits([], gt), [0, 0, 0])


def test_maskcut_layers_on_a_tiny_model(tmp_path, coco_gt):
    torch.manual_seed(0)
    model = create_model("crate_nano_patch8", img_size=32, num_classes=3, depth=2, dim=48, num_heads=2).eval()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(2)]
    samples = [Sample(im, i + 1, str(i)) for i, im in enumerate(images)]
    square = np.zeros((32, 32), bool)
    square[4:20, 4:20] = True  # box [4, 4, 16, 16], area 256
    gt = coco_gt({1: [square], 2: [square]})
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    out = abl.maskcut_layers(model, samples, path)
    assert sorted(out) == [0, 1]
    for scores in out.values():
        assert set(scores) == {"AP50", "AP75", "AP", "hits"}
        assert 0 <= scores["AP"] <= scores["AP50"] <= 100
        assert scores["hits"].shape == (2,)


def test_paired_and_compare():
    a = np.array([0.5, 0.6, 0.7, 0.8])
    mean, se = abl.paired(a, a - 0.1)
    assert mean == pytest.approx(0.1) and se == pytest.approx(0.0, abs=1e-12)
    assert abl.compare(a, a - 0.1) == 1 and abl.compare(a - 0.1, a) == -1
    noisy = a + np.array([0.3, -0.3, 0.3, -0.31])
    assert abl.compare(noisy, a) == 0
    mean, se = abl.paired(np.array([1.0, np.nan, 3.0]), np.zeros(3))  # nan dropped
    assert mean == 2.0 and se == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 2"):
        abl.paired(np.array([1.0]), np.array([0.0]))


def test_factorial_effects_recover_planted_effects_and_the_papers():
    rng = np.random.default_rng(0)
    base = rng.normal(0.3, 0.05, 200)
    # MSSA adds 0.1, ISTA adds 0.04, no interaction
    per_image = {"crate": base + 0.14, "crate-mlp": base + 0.10, "crate-mhsa": base + 0.04, "vit": base}
    eff = abl.factorial_effects(per_image)
    assert eff["attention"][0] == pytest.approx(0.10)
    assert eff["nonlinearity"][0] == pytest.approx(0.04)
    assert eff["interaction"][0] == pytest.approx(0.0, abs=1e-12)
    paper = abl.paper_effects(3)
    assert paper["attention"] == pytest.approx((23.9 - 18.4 + 22.0 - 14.1) / 2)
    assert paper["attention"] - paper["nonlinearity"] == pytest.approx(22.0 - 18.4)


def test_order_agreement():
    paper = {"a": 4.0, "b": 3.0, "c": 2.0}
    assert abl.order_agreement({"a": 1.0, "b": 0.5, "c": 0.1}, paper) == (3, 3)
    assert abl.order_agreement({"a": 0.1, "b": 0.5, "c": 1.0}, paper) == (0, 3)
    assert abl.order_agreement({"a": 1.0, "b": 1.0, "x": 0.0}, paper) == (0, 1)


def test_table2_rows_put_the_paper_beside_the_shipped_models():
    rows = abl.table2_rows({"crate": {"AP50": 10.0, "AP75": 2.0, "AP": 3.0, "miou": 40.0}})
    assert [r["model"] for r in rows] == ["CRATE", "CRATE-MLP", "CRATE-MHSA", "ViT", "CRATE-sth"]
    assert rows[0]["paper AP50"] == 2.1 and rows[0]["paper mIoU"] == 23.9 and rows[0]["ours mIoU"] == 40.0
    assert rows[3]["paper mIoU"] == 14.1 and rows[3]["ours mIoU"] == "not shipped"
    assert np.isnan(rows[4]["paper mIoU"]) and np.isnan(rows[3]["ours AP50"])


def _scores(means: dict[str, float], n: int = 100, noise: float = 0.05, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.2, 0.6, n)
    return {k: base + m + rng.normal(0, noise, n) for k, m in means.items()}


def test_verdict_agrees_when_the_data_follow_table2():
    seg = _scores({"crate": 0.3, "crate-mlp": 0.2, "crate-mhsa": 0.1, "vit": 0.0, "crate-sth": 0.3})
    det = {k: (v > 0.5).astype(float) for k, v in _scores({"crate": 0.4, "crate-mlp": 0.1, "crate-mhsa": 0.0,
                                                            "vit": 0.0, "crate-sth": 0.4}, 400).items()}
    text, tally = abl.verdict(seg, det, seg)
    assert tally["disagree"] == 0 and tally["agree"] >= 6
    assert "CRATE is clearly ahead of CRATE-MLP, CRATE-MHSA and ViT" in text
    assert "CRATE > CRATE-MLP > CRATE-MHSA > ViT (6 of the 6 pairs" in text
    assert "attention swap also helps more" in text and "MSSA helps on average" in text
    assert "CRATE-sth's maps segment as well as CRATE's" in text


def test_verdict_says_so_when_the_data_contradict_table2():
    seg = _scores({"crate": 0.0, "crate-mlp": 0.1, "crate-mhsa": 0.2, "vit": 0.3, "crate-sth": -0.3})
    det = {k: (v > 0.5).astype(float) for k, v in seg.items()}
    text, tally = abl.verdict(seg, det, seg)
    assert tally["agree"] == 0 and tally["disagree"] >= 5
    assert "clearly behind" in text and "makes coarse segmentation worse" in text
    assert "ISTA swap helps more" in text and "clearly worse than CRATE's" in text
    assert "MSSA hurts on average" in text and "ViT segments clearly better than CRATE" in text
    assert "(0 of the 6 pairs" in text


def test_verdict_with_two_models_and_with_noise_only():
    seg = _scores({"crate": 0.0, "vit": 0.0}, noise=0.2)
    text, tally = abl.verdict(seg, {k: (v > 0.4).astype(float) for k, v in seg.items()}, seg)
    assert sum(tally.values()) == 3  # CRATE vs ViT on the two tasks and at Fig. 13's layer; no 2x2, no sth
    assert "not distinguishable from ViT" in text and "Ranked" not in text
    text, tally = abl.verdict({"crate": seg["crate"]}, {"crate": seg["crate"]}, {"crate": seg["crate"]})
    assert sum(tally.values()) == 0 and "Too few" in text


def test_figures():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(3)]
    maps = {"CRATE": torch.rand(3, 8, 8), "ViT": torch.rand(3, 8, 8)}
    fig = abl.plot_model_maps(images, maps, truths=[_disc()] * 3)
    assert isinstance(fig, Figure) and len(fig.axes) == 9
    panels = {"a": {"CRATE": [0.1, 0.2], "CRATE, initialisation": [0.1, 0.1]}, "b": {"CRATE": [1, 2]}}
    fig = abl.plot_layer_curves(panels, {"CRATE": "tab:blue"}, {"a": {"chance": 0.05}})
    assert len(fig.axes) == 2 and len(fig.axes[0].lines) == 3
    assert fig.axes[0].lines[1].get_linestyle() == "--"
