"""The measurement helpers of chapters 6 (training) and 7 (attention maps)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch

import cratelib
from cratelib.data import SyntheticConfig, load_or_generate
from cratelib.figures import attention as att
from cratelib.figures import training
from cratelib.train import load_config


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return load_or_generate(SyntheticConfig(60, image_size=32, split="train"), cache_dir=cache)


# --- chapter 7 ---------------------------------------------------------------------------------


def test_layer_maps_shape_and_normalisation():
    model = cratelib.create_model("crate_nano_patch8", img_size=32, num_classes=10, depth=2, dim=48,
                                  num_heads=3).eval()
    images = [np.random.default_rng(i).integers(0, 256, (32, 32, 3), dtype=np.uint8) for i in range(2)]
    maps = att.layer_maps(model, images)
    assert maps.shape == (2, 2, 3, 4, 4)  # (L, J, K, h, w)
    torch.testing.assert_close(maps.sum((-2, -1)), torch.ones(2, 2, 3), atol=1e-5, rtol=0)


def test_object_fraction_and_attention_on():
    truth = np.zeros((16, 16), bool)
    truth[:8, :8] = True  # the top-left patch of a 2 x 2 grid
    truth[8:12, 8:16] = True  # half of the bottom-right patch
    frac = att.object_fraction([truth], (2, 2))
    torch.testing.assert_close(frac, torch.tensor([[[1.0, 0.0], [0.0, 0.5]]]))
    on_object = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])  # (J=1, K=1, 2, 2)
    uniform = torch.full((1, 1, 2, 2), 0.25)
    assert att.attention_on(on_object, frac).item() == pytest.approx(1.0)
    assert att.attention_on(uniform, frac).item() == pytest.approx(frac.mean().item())


def test_best_head_ious_picks_the_head_on_the_object():
    truth = np.zeros((16, 16), bool)
    truth[:8, :8] = True
    good = torch.tensor([[0.97, 0.01], [0.01, 0.01]])
    bad = torch.tensor([[0.01, 0.01], [0.01, 0.97]])
    ious, heads = att.best_head_ious(torch.stack([bad, good])[None], [truth])
    assert heads.tolist() == [1]
    assert ious[0] == pytest.approx(1.0)
    # a uniform map keeps every patch: IoU = the object's share of the image
    assert att.uniform_ious([truth])[0] == pytest.approx(0.25)


def test_random_maps_score_below_a_perfect_map():
    truth = np.zeros((32, 32), bool)
    truth[8:24, 8:24] = True
    rand = att.random_map_ious([truth] * 8, (4, 4), heads=4)
    assert rand.shape == (8,)
    assert 0 < rand.mean() < 0.9


def test_brightness_maps_point_at_light_objects():
    image = np.full((16, 16, 3), 40, np.uint8)
    image[:8, 8:] = 220
    maps = att.brightness_maps([image], patch_size=8)
    assert maps.shape == (1, 1, 2, 2)
    assert maps[0, 0].argmax().item() == 1  # top-right
    assert maps.sum().item() == pytest.approx(1.0)


def test_plots_return_figures(shapes):
    model = cratelib.create_model("crate_nano_patch8", img_size=32, num_classes=10, depth=2, dim=48,
                                  num_heads=3).eval()
    images = list(shapes.images[:2])
    maps = att.layer_maps(model, images)
    for fig in (att.plot_layers_heads(images[0], maps[:, 0]), att.plot_images_heads(images, maps[-1])):
        assert len(fig.axes) > 1
        matplotlib.pyplot.close(fig)


# --- chapter 6 ---------------------------------------------------------------------------------


def test_one_per_class_returns_first_index_of_each_class(shapes):
    idx = training.one_per_class(shapes)
    labels = shapes.labels[idx]
    assert list(labels) == sorted(set(shapes.labels.tolist()))
    for i, label in zip(idx, labels):
        assert (shapes.labels[:i] != label).all()


def test_probe_features_shapes_and_content(shapes):
    hist = training.colour_histogram_features(shapes)
    assert hist.shape == (len(shapes), 64)
    np.testing.assert_allclose(hist.sum(1), 1.0)
    assert training.object_appearance_features(shapes).shape == (len(shapes), 7)
    shape_feats = training.mask_shape_features(shapes, size=8)
    assert shape_feats.shape == (len(shapes), 64)
    assert shape_feats.max() == pytest.approx(1.0) and shape_feats.min() == pytest.approx(0.0)


def test_probe_accuracy_separates_informative_from_noise_features():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    informative = np.eye(3)[y] + 0.1 * rng.standard_normal((300, 3))
    noise = rng.standard_normal((300, 3))
    assert training.probe_accuracy(informative[:200], y[:200], informative[200:], y[200:]) > 0.95
    assert training.probe_accuracy(noise[:200], y[:200], noise[200:], y[200:]) < 0.6


def test_training_compute_scales_with_epochs_and_vit_is_larger():
    crate = load_config("cpu-demo")
    longer = load_config("cpu-demo", {"epochs": 2 * crate.epochs})
    a, b = training.training_compute(crate), training.training_compute(longer)
    assert b["images_seen"] == 2 * a["images_seen"]
    assert b["flops"] == pytest.approx(2 * a["flops"])
    assert a["tokens"] == (crate.img_size // 8) ** 2 + 1
    vit = training.training_compute(load_config("cpu-demo", {"model": "vit_nano_patch8"}))
    assert vit["params"] > 2 * a["params"]


def test_recipe_rows_read_the_configs():
    rows = training.recipe_rows({"paper": load_config("paper"), "cpu-demo": load_config("cpu-demo")})
    by_label = {r["setting"]: r for r in rows}
    assert by_label["optimizer"]["paper"] == "Lion"
    assert by_label["learning rate"]["paper"] == "9.6e-05"
    assert by_label["classes"]["paper"] == "21,841"


def test_plot_history_marks_snapshots():
    hist = [{"epoch": e, "train_loss": 2.0 / e, "train_acc": 0.1 * e, "val_loss": 2.1 / e,
             "val_acc": 0.1 * e} for e in range(1, 6)]
    fig = training.plot_history({"run": hist}, chance=0.1, marks={"run": [2, 4]})
    marked = [line for line in fig.axes[1].lines if line.get_marker() == "o"]
    assert len(marked) == 1 and list(marked[0].get_xdata()) == [2, 4]
    matplotlib.pyplot.close(fig)
