"""The emergence study's protocol: per-image AUC, head chosen on the selection set, baselines,
the decision rule, and the whole protocol on CRATE and on a timm ViT."""
from __future__ import annotations

import numpy as np
import pytest
import timm
import torch

import cratelib
from cratelib.data import SyntheticConfig, generate
from cratelib.eval import emergence as em
from cratelib.eval.localisation import object_fraction

DATA = dict(version=4, image_size=32, fill="texture", texture_correlation=1.0)


@pytest.fixture(scope="module")
def sets() -> em.ProbeSets:
    return em.ProbeSets(generate(SyntheticConfig(12, split="val", seed=5, **DATA)),
                        generate(SyntheticConfig(12, split="test", seed=5, **DATA)))


def _planted(data, heads: int, good: int, seed: int) -> torch.Tensor:
    """``(1, J, K, 4, 4)`` maps: head ``good`` is the main object's patch fraction (plus a little
    noise), the other heads are noise."""
    frac = object_fraction(list(data.instance_map == 1), (4, 4))
    gen = torch.Generator().manual_seed(seed)
    maps = torch.rand(len(data), heads, 4, 4, generator=gen)
    maps[:, good] = frac + 0.01 * maps[:, good]
    return maps[None]


def test_the_head_is_chosen_on_the_selection_set_and_scored_on_the_measurement_set(sets):
    select = _planted(sets.select, 3, good=2, seed=0)
    measure = _planted(sets.measure, 3, good=0, seed=1)  # the good head differs on the measured images
    scores = em.score_maps_on(measure, select, sets, [0])
    assert scores.head("half").tolist() == [2]  # chosen where it was good: never per image
    assert np.nanmean(scores.auc["half"][0, :, 0]) == pytest.approx(1.0)
    assert np.nanmean(scores.chosen("half")) < 0.8  # head 2 is noise on the measured images
    assert scores.chosen("half").shape == scores.head_mean("any").shape == (1, 12)
    row = em.summary_row(scores, 0)
    assert row["head"] == 3 and row["layer"] == 1  # numbered from 1
    # An object-shaped map puts more of its attention on the object than a flat map would.
    assert scores.on_main[0, :, 0].mean() > em.flat_shares(sets.measure)["on_main"]


def test_pixel_cues_and_random_maps_score_near_chance_on_the_study_data(sets):
    for name, scores in em.baseline_scores(sets, (4, 4), heads=4).items():
        assert 0.3 < em.summary_row(scores, 0)["auc_half"] < 0.7, name


@pytest.mark.parametrize("a, b, real", [
    ([0.80, 0.82, 0.81], [0.60, 0.61, 0.63], True),   # same sign, far beyond the spread
    ([0.80, 0.62, 0.81], [0.60, 0.61, 0.63], False),  # one seed goes the other way
    ([0.70, 0.60, 0.80], [0.60, 0.59, 0.62], False),  # same sign but within two spreads
    ([0.54, 0.55, 0.56], [0.40, 0.41, 0.40], False),  # B does not beat the best pixel cue (0.5)
])
def test_verdict_states_the_decision_rule(a, b, real):
    v = em.verdict(a, b, best_pixel=0.5)
    assert v["real"] is real and v["seeds"] == 3
    assert v["difference"] == pytest.approx(np.mean(np.subtract(a, b)))


def test_one_seed_never_decides():
    v = em.verdict([0.9], [0.5], best_pixel=0.5)
    assert not v["real"] and np.isnan(v["spread"])
    with pytest.raises(ValueError, match="one value per seed"):
        em.verdict([0.9, 0.8], [0.5], best_pixel=0.5)


@pytest.mark.parametrize("make", [
    lambda: cratelib.create_model("crate_nano_patch8", img_size=32, num_classes=10, dim=32, num_heads=2, depth=2),
    lambda: timm.create_model("vit_small_patch8_224", pretrained=False, img_size=32, depth=2, num_classes=10),
], ids=["crate", "timm-vit"])
def test_the_whole_protocol_runs_on_crate_and_on_a_timm_vit(make, sets, tmp_path):
    model = make().eval()
    scores = em.score_model(model, sets)
    L = len(scores.layers)
    assert L == 2 and scores.pca_auc.shape == (L, 12)
    heads = scores.auc["half"].shape[-1]
    assert scores.auc["any"].shape == (L, 12, heads) and scores.select_auc["half"].shape == (L, 12, heads)
    row = em.summary_row(scores, -1)
    assert row["layer"] == L and 1 <= row["head"] <= heads
    assert 0 <= row["auc_half"] <= 1 and 0 <= row["on_main"] <= 1
    assert 0 <= em.maskcut_ap50(model, sets.measure, tmp_path / "coco", -1) <= 100


def test_primary_layers_are_named_before_the_runs():
    assert em.primary_layer("crate") == em.primary_layer("crate-mlp") == -2
    assert em.primary_layer("vit-cls") == em.primary_layer("vit-gap") == -1
