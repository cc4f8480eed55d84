"""scikit-image's photographs (cratelib.data.photographs), read without a download."""
import numpy as np
import pytest

from cratelib.data import PHOTOGRAPHS, photographs

skimage_data = pytest.importorskip("skimage.data")


def test_photographs_are_scikit_images_colour_pictures_as_uint8_rgb():
    images = photographs(("chelsea", "rocket"))
    np.testing.assert_array_equal(images[0], skimage_data.chelsea())
    np.testing.assert_array_equal(images[1], skimage_data.rocket())
    every = photographs()
    assert len(every) == len(PHOTOGRAPHS)
    assert all(im.dtype == np.uint8 and im.ndim == 3 and im.shape[2] == 3 for im in every)


def test_an_unknown_photograph_is_named_with_the_choices():
    with pytest.raises(ValueError, match=r"unknown photographs \['camera'\]; expected some of astronaut, chelsea"):
        photographs(("astronaut", "camera"))
