"""The drivers from a model and images to numbers: maps and features of any layers at the model's
own size, several models side by side, noise sweeps, predictions and linear probes."""
import json

import numpy as np
import pytest
import torch

from cratelib import create_model
from cratelib.data import SyntheticConfig, generate
from cratelib.eval import classify
from cratelib.eval.extract import FeatureCache, extract, layer_features, layer_maps, model_img_size, to_model_input
from cratelib.eval.noise import add_gaussian_noise, noise_sweep
from cratelib.eval.pca import layerwise_pca
from cratelib.eval.sources import held_out_samples


@pytest.fixture(scope="module")
def data():
    return generate(SyntheticConfig(6, image_size=32, num_classes=3, seed=5, split="test"))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("crate_nano_patch8", img_size=32, num_classes=3, depth=2, dim=32, num_heads=2).eval()


def test_maps_and_features_default_to_every_layer_at_the_models_own_size(model, data):
    images = list(data.images[:2])
    assert model_img_size(model) == 32
    maps = layer_maps(model, images)
    assert maps.shape == (2, 2, 2, 4, 4)  # (L, J, K, h, w) on the 4x4 grid of 32 px
    torch.testing.assert_close(maps.sum((-2, -1)), torch.ones(2, 2, 2), atol=1e-5, rtol=0)
    feats, grid = layer_features(model, images)
    assert grid == (4, 4) and feats.shape == (2, 2, 16, 32)
    big = layer_maps(model, images, layers=[-1], img_size=64)
    assert big.shape == (1, 2, 2, 8, 8)
    ex = extract(model, images, [1], what=("features",))
    torch.testing.assert_close(ex.features[1], feats[1])


def test_extract_cache_returns_the_same_tensors(model, data, tmp_path):
    images = list(data.images[:2])
    cache = FeatureCache(tmp_path, model_id="m")
    first = layer_maps(model, images, cache=cache)
    second = layer_maps(model, images, cache=cache)
    assert cache.hits == [False, True]
    torch.testing.assert_close(first, second)
    assert len(list((tmp_path / "features").glob("*.pt"))) == 1
    other = FeatureCache(tmp_path)  # identity from the weights: a new key
    layer_maps(model, images, cache=other)
    assert other.hits == [False]


def test_model_img_size_needs_a_known_model():
    with pytest.raises(TypeError, match="img_size"):
        model_img_size(torch.nn.Linear(2, 2))


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


def test_noise_sweep(model, data):
    truths = [inst == 1 for inst in data.instance_map]
    sweep = noise_sweep(model, list(data.images), layer=1, settings=((0.0, 0.5), (80.0, 1.0)),
                        truths=truths, labels=data.labels)
    assert [(s["sigma"], s["fraction"]) for s in sweep] == [(0.0, 0.0), (0.0, 0.5), (80.0, 1.0)]
    clean, zero, noisy = sweep
    np.testing.assert_allclose(clean["overlap"], 1.0, atol=1e-5)
    np.testing.assert_allclose(zero["overlap"], 1.0, atol=1e-5)  # sigma 0 changes nothing
    assert noisy["overlap"].mean() < 1 - 1e-4
    assert not np.array_equal(noisy["images"][0], data.images[0])
    acc = (classify.predict(model, list(data.images)) == data.labels).mean()
    assert clean["acc"] == pytest.approx(acc)
    assert clean["object"].shape == (len(truths), 2) and clean["iou"].shape == (len(truths),)
    # one image, maps only: the noisy copy is seeded like the first image of the set
    one = noise_sweep(model, [data.images[0]], layer=1, settings=((80.0, 1.0),))
    assert set(one[1]) == {"sigma", "fraction", "images", "maps", "overlap"}
    np.testing.assert_array_equal(one[1]["images"][0], noisy["images"][0])
    torch.testing.assert_close(one[1]["maps"][0], noisy["maps"][0])


def test_held_out_samples_match_the_coco_export(data, tmp_path):
    samples, gt = held_out_samples(data, tmp_path)
    coco = json.loads(gt.read_text())
    assert [s.image_id for s in samples] == [im["id"] for im in coco["images"]]
    for s, image, sem in zip(samples, data.images, data.semantic):
        assert s.labels.dtype == np.int64
        np.testing.assert_array_equal(s.labels, sem)
        np.testing.assert_array_equal(s.image, image)
    assert {a["image_id"] for a in coco["annotations"]} == {s.image_id for s in samples}


def test_layerwise_pca_is_pca_of_the_layer_features(model, data):
    images = list(data.images[:3])
    pca = layerwise_pca(model, images, layers=[-1])
    grey, rgb = pca[-1]
    assert grey.shape == (3, 4, 4) and rgb.shape == (3, 4, 4, 3)
    assert sorted(layerwise_pca(model, images)) == [0, 1]


def test_predict_matches_the_model(model, data):
    pred = classify.predict(model, list(data.images), batch_size=4)
    with torch.no_grad():
        expected = model(to_model_input(list(data.images), 32)).argmax(-1).numpy()
    np.testing.assert_array_equal(pred, expected)


def test_probe_features_shapes_and_content(data):
    hist = classify.colour_histogram_features(data)
    assert hist.shape == (len(data), 64)
    np.testing.assert_allclose(hist.sum(1), 1.0)
    assert classify.object_appearance_features(data).shape == (len(data), 7)
    shape_feats = classify.mask_shape_features(data, size=8)
    assert shape_feats.shape == (len(data), 64)
    assert shape_feats.max() == pytest.approx(1.0) and shape_feats.min() == pytest.approx(0.0)


def test_probe_accuracy_separates_informative_from_noise_features():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 300)
    informative = np.eye(3)[y] + 0.1 * rng.standard_normal((300, 3))
    noise = rng.standard_normal((300, 3))
    assert classify.probe_accuracy(informative[:200], y[:200], informative[200:], y[200:]) > 0.95
    assert classify.probe_accuracy(noise[:200], y[:200], noise[200:], y[200:]) < 0.6
