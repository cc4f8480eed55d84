"""Figures and tables of chapters 6 (training) and 7 (attention maps)."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import cratelib  # noqa: E402
from cratelib.data import SyntheticConfig, load_or_generate  # noqa: E402
from cratelib.eval.extract import layer_maps  # noqa: E402
from cratelib.figures import attention as att  # noqa: E402
from cratelib.figures import training  # noqa: E402
from cratelib.train import load_config  # noqa: E402
from cratelib.train.cost import recipe_rows, training_compute  # noqa: E402


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return load_or_generate(SyntheticConfig(60, image_size=32, split="train"), cache_dir=cache)


def test_attention_figures_number_layers_and_heads_from_one(shapes):
    model = cratelib.create_model("crate_nano_patch8", img_size=32, num_classes=10, depth=2, dim=48,
                                  num_heads=3).eval()
    images = list(shapes.images[:2])
    maps = layer_maps(model, images)
    fig = att.plot_layers_heads(images[0], maps[:, 0])
    assert len(fig.axes) == 2 * 4
    assert fig.axes[1].get_title() == "head 1" and fig.axes[0].get_ylabel() == "layer 1"
    matplotlib.pyplot.close(fig)
    fig = att.plot_images_heads(images, maps[-1], row_labels=["a", "b"])
    assert len(fig.axes) == 2 * 4 and fig.axes[3].get_title() == "head 3"  # no empty panel
    matplotlib.pyplot.close(fig)
    truth = np.zeros((32, 32), bool)
    truth[8:24, 8:24] = True
    fig = att.plot_map_detail(images[0], maps[-1, 0, 0], truth=truth)
    assert "IoU" in fig.axes[2].get_title()
    matplotlib.pyplot.close(fig)
    fig = att.plot_dino_display(images, maps[-1, :, 0], truths=[truth, truth])
    assert len(fig.axes) == 4
    matplotlib.pyplot.close(fig)


def test_one_per_class_returns_first_index_of_each_class(shapes):
    idx = training.one_per_class(shapes)
    labels = shapes.labels[idx]
    assert list(labels) == sorted(set(shapes.labels.tolist()))
    for i, label in zip(idx, labels):
        assert (shapes.labels[:i] != label).all()


def test_training_compute_scales_with_epochs_and_vit_is_larger():
    crate = load_config("cpu-demo")
    longer = load_config("cpu-demo", {"epochs": 2 * crate.epochs})
    a, b = training_compute(crate), training_compute(longer)
    assert b["images_seen"] == 2 * a["images_seen"]
    assert b["flops"] == pytest.approx(2 * a["flops"])
    assert a["tokens"] == (crate.img_size // 8) ** 2 + 1
    vit = training_compute(load_config("cpu-demo", {"model": "vit_nano_patch8"}))
    assert vit["params"] > 2 * a["params"]


def test_recipe_rows_read_the_configs():
    rows = recipe_rows({"paper": load_config("paper"), "cpu-demo": load_config("cpu-demo")})
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
