"""Figures of the study chapters 7 and 8 (cratelib.figures.attention): models side by side and the
study's measures in panels. Layers and heads numbered from 1."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from cratelib.figures import attention as att  # noqa: E402


def _images(n: int, size: int = 32) -> list[np.ndarray]:
    return [np.random.default_rng(i).integers(0, 255, (size, size, 3), dtype=np.uint8) for i in range(n)]


def test_plot_layers_models_has_a_row_per_image_and_model():
    images = _images(2)
    maps = {m: torch.rand(3, 2, 4, 4).softmax(-1) for m in ("crate", "vit-cls")}  # (L, J, h, w)
    truth = np.zeros((32, 32), bool)
    truth[8:24, 8:24] = True
    fig = att.plot_layers_models(images, maps, truths=[truth, truth], heads={"crate": [0, 3, 1]})
    assert len(fig.axes) == 2 * 2 * (3 + 1)
    assert fig.axes[1].get_title() == "layer 1" and fig.axes[3].get_title() == "layer 3"
    assert [fig.axes[r * 4].get_ylabel() for r in range(4)] == ["crate", "vit-cls", "crate", "vit-cls"]
    assert fig.axes[2].texts[0].get_text() == "h4"  # crate, layer 2 chose head 4
    assert not fig.axes[5].texts  # no heads given for vit-cls
    matplotlib.pyplot.close(fig)


def test_plot_heads_models_puts_every_head_of_every_model_in_a_row():
    images = _images(3)
    maps = {"crate": torch.rand(3, 4, 4, 4), "vit-gap": torch.rand(3, 2, 4, 4)}  # (J, K, h, w)
    fig = att.plot_heads_models(images, maps)
    assert len(fig.axes) == 3 * (1 + 4 + 2)
    titles = [ax.get_title() for ax in fig.axes[:7]]
    assert titles == ["image", "crate\nhead 1", "head 2", "head 3", "head 4", "vit-gap\nhead 1", "head 2"]
    matplotlib.pyplot.close(fig)


def _rows():
    rows = []
    for name, base in (("crate", 0.8), ("vit-cls", 0.7)):
        for seed in (0, 1):
            for stage, shift in (("final", 0.0), ("init", -0.3)):
                for layer in (1, 2, 3):
                    rows.append({"name": name, "seed": seed, "stage": stage, "layer": layer, "primary": layer == 3,
                                 "auc_half": base + shift + 0.01 * seed + 0.01 * layer, "pca_auc": 0.6})
    rows += [{"name": "brightness", "seed": -1, "stage": "baseline", "layer": 1, "primary": True,
              "auc_half": 0.55, "pca_auc": float("nan")},
             {"name": "random", "seed": -1, "stage": "baseline", "layer": 1, "primary": True,
              "auc_half": 0.5, "pca_auc": float("nan")}]
    return rows


def test_plot_study_panels_draws_models_seeds_and_baselines_per_panel():
    rows = _rows()
    fig = att.plot_study_panels(rows, [("auc_half", "final", "after training"), ("auc_half", "init", "at init"),
                                       ("pca_auc", "final", "PCA")], references={"pixels, PCA": 0.55}, cols=2)
    axes = fig.axes
    assert len(axes) == 4 and not axes[3].axison  # 2 x 2 grid, the fourth panel blank
    assert [ax.get_title() for ax in axes[:3]] == ["after training", "at init", "PCA"]
    crate = axes[0].lines[0]
    np.testing.assert_allclose(crate.get_ydata(), [0.815, 0.825, 0.835])  # mean over the two seeds
    assert len(axes[0].collections) == 2  # one shaded seed range per model
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["crate (2 seeds)", "vit-cls (2 seeds)", "best pixel cue", "random maps", "pixels, PCA"]
    # no pixel cue has the PCA measure: its panel draws the models and the reference only
    assert len(axes[2].lines) == 3
    assert [round(line.get_ydata()[0], 3) for line in axes[0].lines[2:]] == [0.55, 0.5, 0.55]
    matplotlib.pyplot.close(fig)


def test_plot_study_panels_one_seed_has_no_shading_and_a_missing_model_is_skipped():
    rows = [r for r in _rows() if r["seed"] == 0 and not (r["name"] == "vit-cls" and r["stage"] == "init")]
    fig = att.plot_study_panels(rows, [("auc_half", "final", "a"), ("auc_half", "init", "b")])
    assert len(fig.axes) == 2
    assert not fig.axes[0].collections
    assert len([line for line in fig.axes[1].lines if line.get_marker() == "o"]) == 1  # crate only
    assert fig.legends[0].get_texts()[0].get_text() == "crate (1 seed)"
    matplotlib.pyplot.close(fig)
