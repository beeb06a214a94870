"""scikit-image's sample photos (they ship in its wheel: no download) as RGB uint8, whatever their stored form."""

from __future__ import annotations

import numpy as np
import skimage.data


def rgb(name: str) -> np.ndarray:
    """A sample photo as H×W×3 uint8: masks and grey or float images spread over 0-255 and stacked to three."""
    a = getattr(skimage.data, name)()
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    if a.dtype != np.uint8:
        a = (255 * (a - a.min()) / (np.ptp(a) + 1e-9)).astype(np.uint8)
    return np.ascontiguousarray(np.stack([a] * 3, -1) if a.ndim == 2 else a[..., :3])
