"""Area-average downscaling that stays on OpenCV's fast path (used for model input and thumbnails)."""

from __future__ import annotations

import cv2
import numpy as np


def shrink(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area-average `rgb` to width×height. A large frame is first reduced by a whole factor: OpenCV's
    INTER_AREA has a fast path only for whole factors (1080p → 224²: 7.9 ms in one step, 2.7 ms in two,
    mean |Δ| 0.3 of 255; a 192 px thumbnail of 1024×768: 2.8 → 1.1 ms, of 720p: 3.3 → 2.2 ms, |Δ| 0.4–2)."""
    s = min(rgb.shape[1] // (2 * width), rgb.shape[0] // (2 * height))
    k = rgb.shape[1] // width
    whole = rgb.shape[1] == k * width and rgb.shape[0] == k * height  # 1080p → 192×108: one fast step already
    if s > 1 and not whole:
        h, w = rgb.shape[0] // s * s, rgb.shape[1] // s * s
        rgb = cv2.resize(rgb[:h, :w], (w // s, h // s), interpolation=cv2.INTER_AREA)
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA)
