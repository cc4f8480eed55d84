"""The emergence study's figures (cratelib.figures.emergence): measures over the layers, in panels
(cratelib.eval.study.tables.study_panels), and maps on their percentile scale."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from cratelib.eval.study.tables import study_panels  # noqa: E402
from cratelib.figures import emergence as fe  # noqa: E402


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
    fig = fe.plot_study_panels(study_panels(rows, [("auc_half", "final", "after training"), ("auc_half", "init", "at init"),
                                                   ("pca_auc", "final", "PCA")], references={"pixels, PCA": 0.55}), cols=2)
    axes = fig.axes
    assert len(axes) == 4 and not axes[3].axison  # 2 x 2 grid, the fourth panel blank
    assert [ax.get_title() for ax in axes[:3]] == ["after training", "at init", "PCA"]
    crate = axes[0].lines[0]
    np.testing.assert_allclose(crate.get_ydata(), [0.815, 0.825, 0.835])  # mean over the two seeds
    assert len(axes[0].collections) == 2  # one shaded seed range per model
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["crate (2 seeds)", "vit-cls (2 seeds)", "best pixel cue (brightness)", "random maps",
                      "pixels, PCA"]
    # per model: its mean and each seed's thin line; then the references
    assert len(axes[0].lines) == 2 * 3 + 3
    np.testing.assert_allclose(axes[0].lines[1].get_ydata(), [0.81, 0.82, 0.83])  # crate, seed 0
    assert [round(line.get_ydata()[0], 3) for line in axes[0].lines[-3:]] == [0.55, 0.5, 0.55]
    # no pixel cue has the PCA measure: its panel draws the models and the extra reference only
    assert len(axes[2].lines) == 2 * 3 + 1
    assert axes[0].lines[0].get_color() == axes[1].lines[0].get_color()  # a model keeps its colour
    matplotlib.pyplot.close(fig)


def test_plot_study_panels_one_seed_has_no_shading_and_a_missing_model_is_skipped():
    rows = [r for r in _rows() if r["seed"] == 0 and not (r["name"] == "vit-cls" and r["stage"] == "init")]
    fig = fe.plot_study_panels(study_panels(rows, [("auc_half", "final", "a"), ("auc_half", "init", "b")]))
    assert len(fig.axes) == 2
    assert not fig.axes[0].collections
    assert len([line for line in fig.axes[1].lines if line.get_marker() == "o"]) == 1  # crate only
    assert fig.legends[0].get_texts()[0].get_text() == "crate (1 seed)"
    matplotlib.pyplot.close(fig)


def test_plot_study_panels_adds_references_per_measure_and_skips_what_no_model_has():
    rows = _rows()
    fig = fe.plot_study_panels(study_panels(rows, [("auc_half", "final", "AUC"), ("pca_auc", "final", "PCA")],
                                            by_measure={"auc_half": {"ceiling": 0.9}}), cols=2)
    auc, pca = fig.axes
    assert [round(line.get_ydata()[0], 3) for line in auc.lines[-3:]] == [0.55, 0.5, 0.9]
    assert round(pca.lines[-1].get_ydata()[0], 3) != 0.9  # the ceiling is only in its measure's panel
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels.count("ceiling") == 1
    matplotlib.pyplot.close(fig)
    fig = fe.plot_study_panels(study_panels([dict(r, extra=1.0) if r["name"] == "crate" else r for r in rows],
                                            [("extra", "final", "only CRATE")]))
    assert [line.get_marker() for line in fig.axes[0].lines].count("o") == 1  # crate's mean; no baseline line
    assert len(fig.axes[0].lines) == 3  # crate's mean and its two seeds
    matplotlib.pyplot.close(fig)


def test_percentile_maps_keep_the_order_the_auc_scores():
    import torch

    from cratelib.eval.localisation import map_auc, object_fraction, percentile_maps

    g = torch.Generator().manual_seed(0)
    maps = torch.rand(5, 1, 6, 6, generator=g) ** 4  # (J, K, h, w), a few hot patches
    maps[0, 0, 0, :3] = 0.0  # ties
    truths = [np.zeros((24, 24), bool) for _ in range(5)]
    for j, t in enumerate(truths):
        t[4 + j:14 + j, 6:18] = True
    fraction = object_fraction(truths, (6, 6))
    ranked = percentile_maps(maps)
    assert ranked.shape == maps.shape
    assert torch.allclose(ranked[1:].amin((-2, -1)), torch.zeros(4, 1))
    assert torch.allclose(ranked.amax((-2, -1)), torch.ones(5, 1))
    assert torch.allclose(ranked[0, 0, 0, :3], torch.full((3,), 1.0 / 35))  # mean of ranks 0, 1, 2 over 35
    assert torch.allclose(map_auc(ranked, fraction), map_auc(maps, fraction), atol=1e-12)
    assert not torch.allclose(ranked, maps / maps.amax((-2, -1), keepdim=True))
    assert torch.equal(percentile_maps(torch.ones(2, 1, 1)), torch.full((2, 1, 1), 0.5))
    with pytest.raises(ValueError, match="h, w"):
        percentile_maps(torch.ones(4))


def test_plot_study_maps_draws_a_row_per_model_on_either_scale():
    import torch

    images = [np.full((16, 16, 3), 0.5) for _ in range(3)]
    truths = [np.pad(np.ones((8, 8), bool), 4) for _ in range(3)]
    maps = {"crate": torch.rand(3, 4, 4), "vit-cls": torch.rand(3, 4, 4)}
    for scale in ("value", "percentile"):
        fig = fe.plot_study_maps(images, maps, truths, scale=scale)
        axes = np.array(fig.axes).reshape(3, 3)
        assert [a.get_ylabel() for a in axes[:, 0]] == ["image", "crate", "vit-cls"]
        lo, hi = axes[1, 0].get_images()[0].get_clim()
        if scale == "percentile":
            assert (lo, hi) == (0.0, 1.0)
        else:
            assert (lo, hi) == pytest.approx((maps["crate"][0].min().item(), maps["crate"][0].max().item()))
        matplotlib.pyplot.close(fig)
    with pytest.raises(ValueError, match="percentile"):
        fe.plot_study_maps(images, maps, truths, scale="log")
