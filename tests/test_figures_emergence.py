"""The emergence study's figures (cratelib.figures.emergence): measures over the layers, in panels."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

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
    fig = fe.plot_study_panels(rows, [("auc_half", "final", "after training"), ("auc_half", "init", "at init"),
                                       ("pca_auc", "final", "PCA")], references={"pixels, PCA": 0.55}, cols=2)
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
    fig = fe.plot_study_panels(rows, [("auc_half", "final", "a"), ("auc_half", "init", "b")])
    assert len(fig.axes) == 2
    assert not fig.axes[0].collections
    assert len([line for line in fig.axes[1].lines if line.get_marker() == "o"]) == 1  # crate only
    assert fig.legends[0].get_texts()[0].get_text() == "crate (1 seed)"
    matplotlib.pyplot.close(fig)


def test_plot_study_panels_adds_references_per_measure_and_skips_what_no_model_has():
    rows = _rows()
    fig = fe.plot_study_panels(rows, [("auc_half", "final", "AUC"), ("pca_auc", "final", "PCA")], cols=2,
                               by_measure={"auc_half": {"ceiling": 0.9}})
    auc, pca = fig.axes
    assert [round(line.get_ydata()[0], 3) for line in auc.lines[-3:]] == [0.55, 0.5, 0.9]
    assert round(pca.lines[-1].get_ydata()[0], 3) != 0.9  # the ceiling is only in its measure's panel
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels.count("ceiling") == 1
    matplotlib.pyplot.close(fig)
    fig = fe.plot_study_panels([dict(r, extra=1.0) if r["name"] == "crate" else r for r in rows],
                               [("extra", "final", "only CRATE")])
    assert [line.get_marker() for line in fig.axes[0].lines].count("o") == 1  # crate's mean; no baseline line
    assert len(fig.axes[0].lines) == 3  # crate's mean and its two seeds
    matplotlib.pyplot.close(fig)
