"""Real photographs for the maps of released models: the colour pictures that scikit-image ships
inside its package (``skimage.data``), so that reading them needs no download.

scikit-image is one of the book's packages (``requirements.txt``; Colab preinstalls it), not a
dependency of cratelib: it is imported only when a photograph is asked for.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["PHOTOGRAPHS", "photographs"]

# scikit-image's colour photographs (skimage.data.<name>(), uint8 (H, W, 3)), with what they show.
PHOTOGRAPHS = {
    "astronaut": "the astronaut Eileen Collins",
    "chelsea": "Chelsea the cat",
    "coffee": "a cup of coffee",
    "rocket": "a rocket on its launch pad",
}


def photographs(names: Sequence[str] = tuple(PHOTOGRAPHS)) -> list[np.ndarray]:
    """The photographs ``names`` of :data:`PHOTOGRAPHS`, each a uint8 ``(H, W, 3)`` array at its
    own size (astronaut 512 x 512, chelsea 300 x 451, coffee 400 x 600, rocket 427 x 640).

    Raises:
        ValueError: a name that is not one of :data:`PHOTOGRAPHS`.
        ImportError: scikit-image is not installed (the message says how to install it).
    """
    unknown = [n for n in names if n not in PHOTOGRAPHS]
    if unknown:
        raise ValueError(f"unknown photographs {unknown}; expected some of {', '.join(PHOTOGRAPHS)} "
                         "(scikit-image's colour pictures)")
    try:
        from skimage import data
    except ImportError as err:
        raise ImportError("the photographs are scikit-image's: pip install scikit-image") from err
    return [np.ascontiguousarray(getattr(data, name)()) for name in names]
