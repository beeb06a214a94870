"""Text detection around PP-OCR's DB detector: where on a canvas the text lines are, with numpy + cv2 only.

The detector sees a canvas of one of two fixed sizes (static shapes: an NPU needs them, and on the CPU they
measured faster and took less memory than dynamic ones). The parts of the frame to read (the whole frame, or
the regions that changed) are packed side by side at native resolution onto the smallest canvas that holds
them (`pack`: several small changes cost one small inference, and small screen text keeps its pixels), else
their bounding box is scaled down to fit the large canvas (`fit`: 1920×1080 at 2/3 scale still reads 11 px
text). DB post-processing is PaddleOCR's (binarise the probability map, dilate, contours,
minimum-area rectangle, mean probability inside it as the score, unclip), without pyclipper/shapely: for a
rectangle, pyclipper's offset by d = area × ratio / perimeter is the rectangle with each side pushed out by d.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

GAP = 32  # canvas pixels between packed regions, so their text never merges into one blob
MIN_SIDE = 3  # DB's min_size: shorter boxes are noise


@dataclass(frozen=True)
class DetParams:
    thresh: float = 0.3  # probability above which a pixel is text
    box_thresh: float = 0.5  # mean probability a box needs
    unclip_ratio: float = 1.6
    max_candidates: int = 1000


@dataclass(frozen=True)
class Placement:
    """A frame rectangle (x, y, w, h) drawn onto the canvas at (cx, cy), scaled by `scale`."""

    x: int
    y: int
    w: int
    h: int
    cx: int
    cy: int
    scale: float


def merge_regions(regions: Sequence[tuple[int, int, int, int]], width: int, height: int) -> list[tuple[int, ...]]:
    """Regions clipped to the frame, empty ones dropped, overlapping or touching ones (within GAP) merged.

    Many small rectangles (a diff's output) are first grouped on a coarse mask in one pass, so the pairwise
    merge only sees a few groups.
    """
    rects = []
    for x, y, w, h in regions:
        x0, y0, x1, y1 = max(0, int(x)), max(0, int(y)), min(width, int(x + w)), min(height, int(y + h))
        if x1 > x0 and y1 > y0:
            rects.append([x0, y0, x1, y1])
    if len(rects) > 8:
        cell = GAP // 2
        mask = np.zeros((height // cell + 2, width // cell + 2), np.uint8)
        for x0, y0, x1, y1 in rects:
            mask[y0 // cell : y1 // cell + 1, x0 // cell : x1 // cell + 1] = 1
        _, labels = cv2.connectedComponents(mask, connectivity=8)
        groups: dict[int, list[int]] = {}
        for x0, y0, x1, y1 in rects:
            g = groups.setdefault(int(labels[y0 // cell, x0 // cell]), [x0, y0, x1, y1])
            g[:] = [min(g[0], x0), min(g[1], y0), max(g[2], x1), max(g[3], y1)]
        rects = list(groups.values())
    merged = True
    while merged:
        merged = False
        for i in range(len(rects)):
            for j in range(i + 1, len(rects)):
                a, b = rects[i], rects[j]
                if a[0] - GAP < b[2] and b[0] - GAP < a[2] and a[1] - GAP < b[3] and b[1] - GAP < a[3]:
                    rects[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                    del rects[j]
                    merged = True
                    break
            if merged:
                break
    return [(x0, y0, x1 - x0, y1 - y0) for x0, y0, x1, y1 in rects]


def fit(x: int, y: int, w: int, h: int, size: tuple[int, int]) -> list[Placement]:
    """One rectangle at the top left of the canvas, scaled down (never up) to fit it."""
    ch, cw = size
    scale = min(1.0, cw / w, ch / h)
    return [Placement(x, y, w, h, 0, 0, scale)]


def pack(rects: Sequence[tuple[int, ...]], size: tuple[int, int]) -> list[Placement] | None:
    """Rectangles at native scale in shelves (rows) on the canvas, tallest first; None when they do not fit."""
    ch, cw = size
    out: list[Placement] = []
    cx = cy = shelf = 0
    for x, y, w, h in sorted(rects, key=lambda r: -r[3]):
        if w > cw:
            return None
        if cx + w > cw:  # next shelf
            cx, cy, shelf = 0, cy + shelf + GAP, 0
        if cy + h > ch:
            return None
        out.append(Placement(x, y, w, h, cx, cy, 1.0))
        cx, shelf = cx + w + GAP, max(shelf, h)
    return out


def layout(
    width: int, height: int, regions: Sequence[tuple[int, int, int, int]] | None, sizes: Sequence[tuple[int, int]]
) -> tuple[tuple[int, int], list[Placement]]:
    """The canvas size to use (from `sizes`, smallest first) and where each part of the frame to read goes on it.

    Parts are packed at native scale onto the smallest canvas that holds them; when none does, their bounding
    box is scaled down to fit the largest. No parts (empty or off-frame regions): nothing to read.
    """
    rects = [(0, 0, width, height)] if regions is None else merge_regions(regions, width, height)
    if not rects:
        return sizes[-1], []
    for size in sizes:
        packed = pack(rects, size)
        if packed is not None:
            return size, packed
    x0, y0 = min(r[0] for r in rects), min(r[1] for r in rects)
    x1, y1 = max(r[0] + r[2] for r in rects), max(r[1] + r[3] for r in rects)
    return sizes[-1], fit(x0, y0, x1 - x0, y1 - y0, sizes[-1])


def canvas(rgb: np.ndarray, places: Sequence[Placement], size: tuple[int, int]) -> np.ndarray:
    """The detector's input [1, 3, h, w] float32 in BGR: the placed parts normalised to [-1, 1], 0 elsewhere."""
    img = np.full((*size, 3), 127.5, np.float32)  # normalises to 0, the model's neutral value
    for p in places:
        part = rgb[p.y : p.y + p.h, p.x : p.x + p.w]
        if p.scale != 1.0:
            tw, th = max(1, round(p.w * p.scale)), max(1, round(p.h * p.scale))
            part = cv2.resize(part, (tw, th), interpolation=cv2.INTER_AREA)
        ph, pw = part.shape[:2]
        img[p.cy : p.cy + ph, p.cx : p.cx + pw] = part
    img = img * np.float32(1 / 127.5) - np.float32(1.0)
    return np.ascontiguousarray(img.transpose(2, 0, 1)[None, ::-1])


def _score(prob: np.ndarray, pts: np.ndarray) -> float:
    """Mean probability inside the polygon `pts` (DB's "fast" score)."""
    h, w = prob.shape
    x0, x1 = int(np.clip(np.floor(pts[:, 0].min()), 0, w - 1)), int(np.clip(np.ceil(pts[:, 0].max()), 0, w - 1))
    y0, y1 = int(np.clip(np.floor(pts[:, 1].min()), 0, h - 1)), int(np.clip(np.ceil(pts[:, 1].max()), 0, h - 1))
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    cv2.fillPoly(mask, [(pts - [x0, y0]).astype(np.int32)], 1)
    return float(cv2.mean(prob[y0 : y1 + 1, x0 : x1 + 1], mask)[0])


def boxes(prob: np.ndarray, places: Sequence[Placement], p: DetParams) -> list[tuple[np.ndarray, float]]:
    """Text boxes (4×2 float32 corner points in frame pixels, score) from the canvas probability map [h, w]."""
    mask = cv2.dilate((prob > p.thresh).astype(np.uint8), np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for contour in contours[: p.max_candidates]:
        (cx, cy), (rw, rh), angle = cv2.minAreaRect(contour)
        if min(rw, rh) < MIN_SIDE:
            continue
        score = _score(prob, cv2.boxPoints(((cx, cy), (rw, rh), angle)))
        if score < p.box_thresh:
            continue
        d = rw * rh * p.unclip_ratio / (2 * (rw + rh))
        rw, rh = rw + 2 * d, rh + 2 * d
        if min(rw, rh) < MIN_SIDE + 2:
            continue
        place = next((q for q in places if _inside(q, cx, cy)), None)
        if place is None:  # a blob in the canvas's padding
            continue
        pts = cv2.boxPoints(((cx, cy), (rw, rh), angle))
        pts = (pts - [place.cx, place.cy]) / place.scale + [place.x, place.y]
        pts[:, 0] = np.clip(pts[:, 0], place.x, place.x + place.w)
        pts[:, 1] = np.clip(pts[:, 1], place.y, place.y + place.h)
        out.append((pts.astype(np.float32), score))
    return out


def _inside(p: Placement, x: float, y: float) -> bool:
    return p.cx <= x < p.cx + p.w * p.scale and p.cy <= y < p.cy + p.h * p.scale
