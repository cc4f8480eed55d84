"""figures.mae: pictures back from model inputs, and the masked-completion panels."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from cratelib.eval.extract import to_model_input  # noqa: E402
from cratelib.figures.mae import display_images, plot_reconstructions  # noqa: E402


def test_display_images_inverts_the_normalisation():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    back = display_images(to_model_input(list(images), 16))
    assert back.dtype == np.uint8 and back.shape == images.shape
    assert np.abs(back.astype(int) - images.astype(int)).max() <= 1
    assert display_images(torch.full((1, 3, 2, 2), 50.0)).min() == 255  # clipped, not wrapped


def test_reconstruction_panels_grey_out_exactly_the_hidden_patches():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 100, (2, 16, 16, 3), dtype=np.uint8)  # no pixel is 128 by chance
    masks = np.zeros((2, 2, 2), bool)
    masks[0, 0, 1] = masks[1, 1, 0] = True
    fig = plot_reconstructions(images, masks, {"model": images, "baseline": images})
    axes = np.array(fig.axes).reshape(2, 4)
    assert [ax.get_title() for ax in axes[0]] == ["image", "encoder's input", "model", "baseline"]
    shown = axes[0, 1].get_images()[0].get_array()
    grey = np.all(np.asarray(shown) == 128, axis=-1)
    assert grey[:8, 8:].all() and grey.sum() == 64  # the top-right 8x8 patch only
    np.testing.assert_array_equal(np.asarray(axes[1, 0].get_images()[0].get_array()), images[1])
