"""Helpers of chapter 12 (cratelib.figures.studies): samples and COCO ground truth of a synthetic
set, what each head looks at, predictions, map overlap, the noise sweep and the figures."""
import json

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cratelib import create_model  # noqa: E402
from cratelib.data import SyntheticConfig, generate  # noqa: E402
from cratelib.figures import studies as st  # noqa: E402
from cratelib.figures.attention import patch_kinds  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return generate(SyntheticConfig(6, image_size=32, num_classes=3, seed=5, split="test"))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("crate_nano_patch8", img_size=32, num_classes=3, depth=2, dim=32, num_heads=2).eval()


def _truths(data):
    return [inst == 1 for inst in data.instance_map]


def test_held_out_samples_match_the_coco_export(data, tmp_path):
    samples, gt = st.held_out_samples(data, tmp_path)
    coco = json.loads(gt.read_text())
    assert [s.image_id for s in samples] == [im["id"] for im in coco["images"]]
    for s, image, sem in zip(samples, data.images, data.semantic):
        assert s.labels.dtype == np.int64
        np.testing.assert_array_equal(s.labels, sem)
        np.testing.assert_array_equal(s.image, image)
    assert {a["image_id"] for a in coco["annotations"]} == {s.image_id for s in samples}


def test_patch_kinds_partition_the_patches():
    frac = torch.tensor([[[0.0, 0.5], [1.0, 0.25]]])
    kinds = patch_kinds(frac)
    assert set(kinds) == set(st.KINDS)
    torch.testing.assert_close(sum(kinds.values()), torch.ones_like(frac))
    assert kinds["background"][0, 0, 0] == 1 and kinds["interior"][0, 1, 0] == 1
    assert kinds["outline"][0].sum() == 2


def _square_truth(size=16, rows=slice(4, 12), cols=slice(4, 12)):
    t = np.zeros((size, size), bool)
    t[rows, cols] = True
    return t


def test_head_measures_of_planted_heads():
    """4x4 grid of 4x4-pixel patches; the object fills the middle 2x2 patches. Head 1 attends to
    the background only, head 2 uniformly to the object, head 3 to the object's top row."""
    truth = _square_truth()
    maps = torch.zeros(1, 3, 4, 4)
    maps[0, 0] = 1.0
    maps[0, 0, 1:3, 1:3] = 0.0
    maps[0, 1, 1:3, 1:3] = 1.0
    maps[0, 2, 1, 1:3] = 1.0
    m = st.head_measures(maps, [truth])
    assert all(v.shape == (1, 3) for v in m.values())
    np.testing.assert_allclose(m["object"][0], [0.0, 1.0, 1.0])
    np.testing.assert_allclose(m["background"][0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(m["interior"][0] + m["outline"][0] + m["background"][0], 1.0)
    # the uniform object head: 3 of its 4 equal patches hold 60 % of the mass
    assert m["iou"][0, 1] == pytest.approx(0.75)
    assert m["best"][0].tolist() == [0.0, 1.0, 0.0]
    # the top-row head sits a quarter of the object's height above its centre, centred in x
    assert m["dy"][0, 2] == pytest.approx(-0.25)
    assert m["dx"][0, 2] == pytest.approx(0.0, abs=1e-6)
    assert m["dy"][0, 1] == pytest.approx(0.0, abs=1e-6)
    assert np.isnan(m["dy"][0, 0])  # no attention on the object: no position on it


def test_head_measures_checks_counts():
    with pytest.raises(ValueError, match="masks"):
        st.head_measures(torch.rand(2, 2, 4, 4), [_square_truth()])


def test_head_rows_and_class_means():
    m = {"object": np.array([[0.2, 0.8], [0.4, 0.6]]), "dy": np.array([[0.1, -0.1], [0.1, -0.3]]),
         "best": np.array([[0.0, 1.0], [1.0, 0.0]])}
    rows = st.head_rows(m, "M", keys=("object", "dy"))
    assert [r["head"] for r in rows] == ["M 1", "M 2"]
    assert rows[0]["object"] == "0.30 (0.10)" and rows[1]["dy"] == "-0.20 (0.10)"
    assert rows[0]["best head"] == "50%"
    means = st.class_head_means(m["object"], [1, 1], num_classes=3)
    assert np.isnan(means[0]).all() and np.isnan(means[2]).all()
    np.testing.assert_allclose(means[1], [0.3, 0.7])


def test_map_overlap():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    assert st.map_overlap(a, 3 * a).item() == pytest.approx(1.0)
    assert st.map_overlap(a, b).item() == pytest.approx(0.0)
    assert st.map_overlap(a, torch.ones(2, 2)).item() == pytest.approx(0.5)


def test_predict_matches_the_model(model, data):
    from cratelib.eval.extract import to_model_input

    pred = st.predict(model, list(data.images), batch_size=4)
    with torch.no_grad():
        expected = model(to_model_input(list(data.images), 32)).argmax(-1).numpy()
    np.testing.assert_array_equal(pred, expected)


def test_noise_sweep(model, data):
    truths = _truths(data)
    sweep = st.noise_sweep(model, list(data.images), truths, data.labels, layer=1,
                           settings=((0.0, 0.5), (80.0, 1.0)))
    assert [(s["sigma"], s["fraction"]) for s in sweep] == [(0.0, 0.0), (0.0, 0.5), (80.0, 1.0)]
    clean, zero, noisy = sweep
    np.testing.assert_allclose(clean["overlap"], 1.0, atol=1e-5)
    np.testing.assert_allclose(zero["overlap"], 1.0, atol=1e-5)  # sigma 0 changes nothing
    assert noisy["overlap"].mean() < 1 - 1e-4
    assert not np.array_equal(noisy["images"][0], data.images[0])
    acc = (st.predict(model, list(data.images)) == data.labels).mean()
    assert clean["acc"] == pytest.approx(acc)
    assert clean["object"].shape == (len(truths), 2) and clean["iou"].shape == (len(truths),)


def test_figures(data):
    m = {"A": {k: np.random.default_rng(0).random((4, 2)) for k in
               ("object", *st.KINDS, "iou", "best", "dy", "dx")}}
    figs = [
        st.plot_series({"a": {0: 1.0, 2: 3.0}, "b": {1: 2.0}}, "x", "y", styles={"b": "--"}),
        st.plot_head_measures(m, {"background": 0.6, "outline": 0.2, "interior": 0.2}),
        st.plot_class_heads({"A": np.eye(3, 2)}, ["a", "b", "c"], "share"),
        st.plot_layer_epoch(np.arange(6.0).reshape(2, 3), [0, 5], "mIoU"),
    ]
    assert all(isinstance(f, Figure) for f in figs)
    assert len(figs[0].axes[0].lines) == 2
    assert len(figs[1].axes[0].patches) == 3 * 3  # uniform bar + 2 heads, three kinds each
    assert [t.get_text() for t in figs[3].axes[0].get_yticklabels()] == ["0", "5"]
