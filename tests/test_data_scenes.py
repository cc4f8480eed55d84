"""Generator version 4 (scenes without pixel shortcuts), the cue audit, fresh training epochs."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from cratelib.cli import main
from cratelib.data import SyntheticConfig, generate, sample_dir
from cratelib.eval.cues import audit, cue_maps
from cratelib.eval.localisation import map_auc, object_fraction
from cratelib.eval.metrics import roc_auc
from cratelib.data.sample import REPO_SAMPLE_DIR
from cratelib.data.scenes import MIN_CONTRAST, TEXTURES, surface_colours
from cratelib.train import load_config, train

FLAT = SyntheticConfig(120, version=4, seed=11, split="test", fill="flat")
TEXTURED = SyntheticConfig(120, version=4, seed=11, split="test", fill="texture",
                           texture_correlation=1.0)


@pytest.fixture(scope="module")
def flat():
    return generate(FLAT)


@pytest.fixture(scope="module")
def textured():
    return generate(TEXTURED)


def test_version3_serialises_as_before_so_caches_and_samples_stay_valid():
    config = SyntheticConfig(8, image_size=64, seed=2023, split="test", version=3)
    fields = json.loads(config.to_json())
    assert set(fields) == {"clutter", "image_size", "main_area", "max_objects", "max_rotation",
                           "min_objects", "num_classes", "num_images", "other_area", "seed",
                           "split"}
    assert fields["main_area"] == [0.2, 0.45] and fields["max_objects"] == 1
    expected = hashlib.sha256(f"v3:{config.to_json()}".encode()).hexdigest()[:16]
    assert config.cache_key() == expected
    # The shipped version-3 samples are still recognised as current (no regeneration).
    assert sample_dir("shapes64") == REPO_SAMPLE_DIR / "shapes64"
    # A record written before the version field existed reads back as version 3.
    assert SyntheticConfig.from_json(config.to_json()) == config


def test_the_default_data_is_the_studys_and_passes_the_cue_audit():
    c = SyntheticConfig(120, seed=11, split="test")
    assert (c.version, c.fill, c.texture_correlation) == (4, "texture", 1.0)
    assert c == SyntheticConfig(**{**load_config("study").data_args, "num_images": 120}, seed=11, split="test")
    assert SyntheticConfig(4, fill="flat").texture_correlation == 0.0
    result = audit(generate(c), patch=8)
    for cue in ("brightness", "saturation", "colour_distance"):
        assert result[cue]["mean"] <= 0.65, (cue, result[cue]["mean"])


def test_version4_defaults_and_json_round_trip():
    c = SyntheticConfig(10, version=4, fill="flat")
    assert (c.main_area, c.other_area, c.min_objects, c.max_objects) == ((0.08, 0.30), (0.03, 0.06), 1, 3)
    fields = json.loads(c.to_json())
    assert "clutter" not in fields and fields["version"] == 4
    assert SyntheticConfig.from_json(c.to_json()) == c
    assert c.cache_key() != SyntheticConfig(10, version=3).cache_key()


@pytest.mark.parametrize("bad, match", [
    (dict(version=5), "version must be one of"),
    (dict(version=3, fill="texture"), "fill applies to generator version 4"),
    (dict(version=4, clutter=2.0), "clutter applies to generator version 3"),
    (dict(version=4, fill="flat", texture_correlation=0.5), "needs fill='texture'"),
    (dict(version=4, fill="stripes"), "fill must be"),
    (dict(version=4, distractors=(2, 1)), "distractors"),
    (dict(version=4, background_regions=(0, 2)), "background_regions"),
])
def test_bad_version4_configs_say_what_was_expected(bad, match):
    with pytest.raises(ValueError, match=match):
        SyntheticConfig(4, **bad)


def test_version4_is_deterministic_with_exact_ground_truth(flat):
    small = SyntheticConfig(6, version=4, seed=11, split="test", fill="flat")
    np.testing.assert_array_equal(generate(small).images, generate(small).images)
    for i in range(len(flat)):
        inst, dis, image = flat.instance_map[i], flat.distractor_map[i], flat.images[i]
        # Flat fills: the visible main object is painted in exactly one colour.
        assert len(np.unique(image[inst == 1], axis=0)) == 1
        # Distractors are background for the class maps and never overlap a visible object.
        assert not (dis.astype(bool) & (inst > 0)).any()
        assert ((flat.semantic[i] > 0) == (inst > 0)).all()
        # The main object is the largest class object and covers roughly 8-30 % of the image.
        areas = np.bincount(inst.ravel())[1:]
        assert areas[0] == areas.max() and 0.05 < areas[0] / inst.size < 0.33
    counts = [int(m.max()) for m in flat.instance_map]
    assert set(counts) == {1, 2, 3}  # 0-2 secondary class objects
    assert all(int(m.max()) >= 1 for m in flat.distractor_map)  # 1-2 distractors, at least partly visible


def test_surface_colours_are_far_apart_and_exchangeable():
    rng = np.random.default_rng(0)
    sets = np.stack([surface_colours(rng, 6) for _ in range(400)])  # (400, 6, 3)
    d = np.linalg.norm(sets[:, :, None] - sets[:, None], axis=-1) + np.eye(6) * 9
    assert (d.min((1, 2)) >= MIN_CONTRAST).mean() > 0.99
    # No position in the draw is special: every position has the same mean brightness.
    luma = sets @ np.array([0.299, 0.587, 0.114])
    assert np.ptp(luma.mean(0)) < 0.05


def test_roc_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(1)
    for _ in range(20):
        s = rng.integers(0, 5, 40).astype(float)  # many ties
        t = rng.random(40) < 0.3
        if t.any() and not t.all():
            assert float(roc_auc(torch.from_numpy(s), torch.from_numpy(t))) == pytest.approx(roc_auc_score(t, s))


def test_cues_and_object_patches_on_a_hand_made_image():
    images = np.zeros((1, 16, 16, 3), np.uint8)
    images[0, :8, :8] = 255  # a white top-left patch on black
    mask = np.zeros((16, 16), bool)
    mask[:8, :8] = True
    mask[8, 8] = True  # one pixel touches the bottom-right patch
    frac = object_fraction([mask], (2, 2))
    cues = cue_maps(images, 8)
    assert cues["brightness"][0, 0, 0] == pytest.approx(1.0) and cues["brightness"][0, 1, 1] == 0
    assert cues["colour_distance"][0, 0, 0] == pytest.approx(3 ** 0.5)  # white vs the black median
    assert cues["saturation"].max() == 0  # grey levels only
    # Brightness ranks the white patch first: AUC 1 for "half", 0.75 for "any" (the bottom-right
    # patch counts as object but is as dark as the background).
    b = cues["brightness"][:, None]
    assert float(map_auc(b, frac, 0.5)) == 1.0 and float(map_auc(b, frac, 1e-9)) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="multiple of the patch size"):
        cue_maps(images, 5)
    with pytest.raises(ValueError, match="unknown cues"):
        cue_maps(images, 8, ["shininess"])


def test_cue_audit_flags_version3_and_passes_version4(flat, textured):
    v3 = audit(generate(SyntheticConfig(120, seed=11, split="test", version=3)), patch=8)
    assert v3["brightness"]["mean"] > 0.8 and v3["colour_distance"]["mean"] > 0.8
    for data in (flat, textured):
        result = audit(data, patch=8)
        for cue in ("brightness", "saturation", "colour_distance"):
            assert 0.4 < result[cue]["mean"] < 0.6, (cue, result[cue]["mean"])
        assert 0.4 < result["random"]["mean"] < 0.6
    with pytest.raises(ValueError, match="rule must be one of"):
        audit(flat, rule="most")


def test_texture_correlation_puts_the_class_texture_on_the_object(textured):
    # With correlation 1 the main object wears TEXTURES[label]: its two tones alternate with the
    # texture's period, so stripes of period 4 px (textures 0-3) flip tone about every 2 px along
    # their normal; coarse stripes (4, 5) about every 4 px.
    def flips(i: int) -> float:
        inside = textured.instance_map[i] == 1
        tone = textured.images[i].astype(int).sum(-1)
        rows = [(np.diff(tone[y][inside[y]]) != 0).mean() for y in range(64) if inside[y].sum() > 8]
        cols = [(np.diff(tone[:, x][inside[:, x]]) != 0).mean() for x in range(64) if inside[:, x].sum() > 8]
        return max(np.mean(rows), np.mean(cols))
    fine = [flips(i) for i in range(len(textured)) if textured.labels[i] in (0, 2)]
    coarse = [flips(i) for i in range(len(textured)) if textured.labels[i] in (4, 5)]
    assert np.mean(fine) > np.mean(coarse) * 1.4
    assert len(TEXTURES) == FLAT.num_classes


def test_fresh_epochs_are_new_reproducible_and_balanced():
    c = SyntheticConfig(20, version=4, seed=3)
    e0, e0_again, e1, base = generate(c, epoch=0), generate(c, epoch=0), generate(c, epoch=1), generate(c)
    np.testing.assert_array_equal(e0.images, e0_again.images)
    assert not np.array_equal(e0.images, e1.images) and not np.array_equal(e0.images, base.images)
    assert np.bincount(e1.labels, minlength=10).tolist() == [2] * 10
    with pytest.raises(ValueError, match="epoch must be None or an int >= 0"):
        generate(c, epoch=-1)


def test_fresh_data_training_resumes_exactly(tmp_path):
    def cfg(out):
        return load_config({
            "model": "crate_nano_patch8", "model_args": {"dim": 32, "num_heads": 2, "depth": 1},
            "data": "synthetic", "data_args": {"num_images": 48, "version": 4}, "fresh_data": True,
            "img_size": 32, "num_classes": 3, "batch_size": 16, "epochs": 3, "warmup_epochs": 0.5,
            "label_smoothing": 0.1, "out_dir": str(out), "data_root": str(tmp_path / "cache")})
    full = train(cfg(tmp_path / "a"), progress=False).model.state_dict()
    first = train(cfg(tmp_path / "b"), progress=False, on_epoch_end=lambda rec: rec["epoch"] == 2)
    assert len(first.history) == 2
    resumed = train(cfg(tmp_path / "b"), resume=True, progress=False)
    for k, v in full.items():
        torch.testing.assert_close(resumed.model.state_dict()[k], v, rtol=0, atol=0)
    with pytest.raises(ValueError, match="fresh_data needs data='synthetic'"):
        load_config({"data": "cifar10", "fresh_data": True})


def test_cli_data_audit(capsys):
    assert main(["data", "audit", "--num-images", "40", "--patch", "8"]) == 0
    out = capsys.readouterr().out
    assert "generator version 4, texture fill (texture correlation 1)" in out  # the default data
    for cue in ("brightness", "saturation", "colour_distance", "edge_energy", "random"):
        assert cue in out
    assert "40 images" in out


def test_snapshot_when_validation_accuracy_first_reaches_a_target(tmp_path):
    cfg = load_config({
        "model": "crate_nano_patch8", "model_args": {"dim": 32, "num_heads": 2, "depth": 1},
        "data": "synthetic", "data_args": {"num_images": 40}, "img_size": 32, "num_classes": 2,
        "batch_size": 20, "epochs": 3, "warmup_epochs": 0, "snapshot_at_val_acc": 0.01,
        "out_dir": str(tmp_path), "data_root": str(tmp_path / "cache")})
    train(cfg, progress=False)
    snap = torch.load(cfg.run_dir / "val_acc_0.01.pt", weights_only=False)
    assert snap["epoch"] == 1  # the first epoch already reaches 1 %
    with pytest.raises(ValueError, match="snapshot_at_val_acc must be in"):
        load_config({"snapshot_at_val_acc": 1.5})
