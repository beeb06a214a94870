"""Which horizontal bands of a screen changed since the last frame that was read for text.

OCR costs far more than the diff, so a frame is read only where it changed. Bands span the whole width:
text changes inside a line (a cursor, a clock, a typed word) and a narrower crop would read a fragment of
that line as a "new" line. A band grows by `margin` cells above and below so a line on a cell border is read
whole; bands closer than that merge. When most of the frame changed, reading it whole is as cheap.
"""

from __future__ import annotations

import cv2
import numpy as np

Box = tuple[int, int, int, int]  # x, y, width, height


def grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def changed_bands(
    prev: np.ndarray | None,
    cur: np.ndarray,
    cell: int = 16,
    threshold: float = 4.0,
    margin: int = 1,
    whole: float = 0.6,
) -> list[Box] | None:
    """Bands (x, y, w, h) of grey image `cur` that differ from `prev`; None = read the whole frame (no
    previous frame, another size, or more than `whole` of the height changed); [] = nothing changed.

    A cell changed when its mean absolute difference exceeds `threshold` (0–255)."""
    if prev is None or prev.shape != cur.shape:
        return None
    h, w = cur.shape[:2]
    diff = cv2.absdiff(prev, cur)
    rows = max(1, h // cell)
    cells = cv2.resize(diff, (max(1, w // cell), rows), interpolation=cv2.INTER_AREA)
    changed = (cells > threshold).any(axis=1)
    if not changed.any():
        return []
    bands: list[list[int]] = []
    for r in np.flatnonzero(changed):
        lo, hi = max(0, r - margin), min(rows, r + margin + 1)
        if bands and lo <= bands[-1][1]:
            bands[-1][1] = hi
        else:
            bands.append([lo, hi])
    boxes = []
    for lo, hi in bands:
        y0 = lo * h // rows
        y1 = h if hi == rows else hi * h // rows
        boxes.append((0, y0, w, y1 - y0))
    if sum(b[3] for b in boxes) > whole * h:
        return None
    return boxes
