"""Study helpers (noise, tables, model comparison) and the figure helpers."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cratelib import create_model  # noqa: E402
from cratelib.eval import plots  # noqa: E402
from cratelib.eval.reference import TABLE3_PARAMS_M, TABLE3_TRANSFER  # noqa: E402
from cratelib.eval.sources import Sample  # noqa: E402
from cratelib.eval.studies import (  # noqa: E402
    add_gaussian_noise,
    compare_models,
    format_table,
    head_maps,
    layerwise_pca,
    noise_study,
    training_snapshots,
    transfer_table,
)


def test_gaussian_noise_hits_the_given_fraction_with_the_given_sigma():
    image = np.full((200, 200, 3), 128, np.uint8)
    noisy = add_gaussian_noise(image, sigma=25, fraction=0.3, seed=1)
    changed = (noisy != image).any(-1)
    assert changed.mean() == pytest.approx(0.3, abs=0.02)
    diff = noisy.astype(float) - 128
    assert diff[changed].std() == pytest.approx(25, rel=0.05)
    assert np.array_equal(add_gaussian_noise(image, 25, 0.3, seed=1), noisy)
    assert np.array_equal(add_gaussian_noise(image, 75, 0.0), image)
    clipped = add_gaussian_noise(np.full((50, 50, 3), 250, np.uint8), 75, 1.0)
    assert clipped.max() == 255 and clipped.dtype == np.uint8
    with pytest.raises(ValueError, match="fraction"):
        add_gaussian_noise(image, 10, 1.5)


def test_transfer_table_and_markdown():
    rows = transfer_table(TABLE3_TRANSFER, TABLE3_PARAMS_M)
    assert rows[0] == {"dataset": "# parameters (M)", **TABLE3_PARAMS_M}
    assert rows[1]["dataset"] == "ImageNet-1K" and rows[1]["CRATE-B"] == 79.5
    partial = transfer_table({"ours": {"CIFAR10": 91.234}, "paper": {"CIFAR10": 94.1, "Pets": 77.0}})
    text = format_table(partial, digits=1)
    assert text.splitlines()[0] == "| dataset | ours | paper |"
    assert "| CIFAR10 | 91.2 | 94.1 |" in text and "| Pets | - | 77.0 |" in text


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return create_model("crate_nano_patch8", img_size=32, num_classes=3).eval()


def test_compare_models_rows(tiny, coco_gt):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    labels = np.zeros((32, 32), np.int64)
    labels[8:24, 8:24] = 1
    voc = [Sample(image, 1, "a", labels)]
    gt = coco_gt({1: [labels.astype(bool)]})
    rows = compare_models({"a": tiny, "b": tiny}, voc=voc, coco=voc, coco_gt=gt, det_img_size=32,
                          seg_img_size=32)
    assert [r["model"] for r in rows] == ["a", "b"]
    assert {k: v for k, v in rows[0].items() if k != "model"} == {k: v for k, v in rows[1].items() if k != "model"}
    assert set(rows[0]) == {"model", "voc_miou", "det_AP50", "det_AP75", "det_AP",
                            "seg_AP50", "seg_AP75", "seg_AP"}
    assert 0 <= rows[0]["voc_miou"] <= 100 and 0 <= rows[0]["det_AP"] <= 100
    with pytest.raises(ValueError, match="coco_gt"):
        compare_models({"a": tiny}, coco=voc)
    snap_rows, pca = training_snapshots({"init": tiny}, voc, gt, det_img_size=32, pca_img_size=32)
    assert snap_rows[0]["model"] == "init" and snap_rows[0]["det_AP"] == rows[0]["det_AP"]
    assert pca["init"][0].shape == (1, 4, 4) and pca["init"][1].shape == (1, 4, 4, 3)


def test_noise_study_and_figures(tiny):
    image = np.random.default_rng(1).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    entries = noise_study(tiny, image, settings=((75, 0.5),), layer=4, img_size=32)
    assert [(e["sigma"], e["fraction"]) for e in entries] == [(0.0, 0.0), (75, 0.5)]
    assert np.array_equal(entries[0]["image"], image) and not np.array_equal(entries[1]["image"], image)
    assert entries[0]["maps"].shape == (6, 4, 4)
    assert not torch.allclose(entries[0]["maps"], entries[1]["maps"])
    maps = head_maps(tiny, [image], layer=-2, img_size=32)[0]
    figs = [
        plots.plot_noise_study(entries, heads=[0, 1]),
        plots.plot_head_maps(image, maps, maps > maps.mean()),
        plots.plot_maskcut(image, [np.eye(32, dtype=bool), np.zeros((32, 32), bool)]),
        plots.plot_layerwise({"crate": {0: 0.1, 1: 0.3}}, "mIoU"),
        plots.plot_bars({"CRATE-S/8": 20.0}, {"CRATE-S/8": 23.9}),
    ]
    grey, rgb = layerwise_pca(tiny, [Sample(image, 1, "a")], layers=[-1], img_size=32)[-1]
    figs.append(plots.plot_pca([image], rgb, grey))
    assert all(isinstance(f, Figure) for f in figs)
    assert len(figs[0].axes) == 2 * 3 and len(figs[1].axes) == 7
    for f in figs:
        matplotlib.pyplot.close(f)
