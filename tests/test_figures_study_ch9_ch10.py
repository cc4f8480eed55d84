"""Figures of the study in chapter 10: cratelib.figures.maskcut.plot_seed_values, drawn from the
seed bands of rows shaped like StudyResult.rows."""

import matplotlib

matplotlib.use("Agg")

from cratelib.eval.stats import seed_bands  # noqa: E402
from cratelib.eval.study.tables import seed_curves  # noqa: E402
from cratelib.figures import maskcut as mc  # noqa: E402


def study_rows():
    rows = []
    for name, seeds in (("crate", (0, 1)), ("vit-cls", (0,))):
        for seed in seeds:
            for stage in ("final", "init"):
                for layer in range(1, 4):
                    rows.append({"name": name, "seed": seed, "stage": stage, "layer": layer, "primary": layer == 2,
                                 "auc_half": 0.5 + 0.1 * layer + 0.01 * seed, "mass_iou": 0.3,
                                 "maskcut_ap50": 10.0 + seed if layer == 2 else float("nan")})
    for name, value in (("brightness", 0.52), ("edge_energy", 0.55), ("random", 0.5)):
        rows.append({"name": name, "seed": -1, "stage": "baseline", "layer": 1, "primary": True,
                     "auc_half": value, "mass_iou": 0.2, "maskcut_ap50": float("nan")})
    return rows


def test_seed_values_bars_are_means_and_dots_are_seeds():
    bands = seed_bands(seed_curves(study_rows(), "maskcut_ap50", "stage", ("init", "final"), primary_only=True))
    fig = mc.plot_seed_values(bands, stages=("init", "final"), references={"raw pixels": 7.0})
    ax = fig.axes[0]
    heights = sorted(round(p.get_height(), 6) for p in ax.patches)
    assert heights == [10.0, 10.0, 10.5, 10.5]  # vit-cls (one seed) and crate (mean of 10 and 11), two stages
    dots = [line for line in ax.get_lines() if line.get_marker() == "o"]
    assert sorted(len(d.get_ydata()) for d in dots) == [1, 1, 2, 2]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["crate", "vit-cls"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["init", "final", "raw pixels"]
