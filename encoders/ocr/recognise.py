"""Text recognition around PP-OCR's CTC recogniser: crops to fixed-height batches, and greedy CTC decoding.

Each detected box is cropped axis-aligned (screens are upright, so there is no angle classifier and no
rotation of tall crops: a narrow box is a short word such as "1" or "I", not vertical text), scaled to the
model's height (48) and placed left-aligned in the narrowest width bucket that holds it (elsewhere than on
a static-shape device: in a width rounded up to a multiple of STEP), padded with the model's neutral 0. A
line wider than the widest bucket is cut in a gap between words (see `split`) and read in pieces. On a
static-shape device every batch of a bucket has the same size (padded with empty rows); elsewhere batches
are as large as needed, up to that size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

HEIGHT = 48
BUCKETS = (160, 320, 640, 1280)  # input widths on a static-shape device; the time steps are width / 8
# elsewhere widths are rounded up to a multiple of this: each new input shape costs the CPU plugin memory
# (38 shapes at 64-column steps: +155 MB; 18 at 128: +104 MB; the 4 buckets: +79 MB) and padding costs time
STEP = 128
BATCH = 8  # lines per inference, fewer for the wider buckets (see `batch`)


def batch(width: int) -> int:
    """Lines per inference at this input width: 8 up to 320 columns, then fewer (bounded activation memory)."""
    return max(1, min(BATCH, 2560 // width))


@dataclass(frozen=True)
class Piece:
    line: int  # index of the box it was cut from
    image: np.ndarray  # HEIGHT × w × 3 uint8 BGR, w ≤ BUCKETS[-1]
    space_before: bool  # the cut was in a gap wide enough to be a space


def to_height(crop: np.ndarray) -> np.ndarray:
    """`crop` scaled to HEIGHT rows, keeping its aspect ratio (at least 8 columns: one CTC step)."""
    h, w = crop.shape[:2]
    nw = max(8, round(w * HEIGHT / h))
    interp = cv2.INTER_AREA if h > HEIGHT else cv2.INTER_CUBIC
    return cv2.resize(crop, (nw, HEIGHT), interpolation=interp)


def split(img: np.ndarray, width: int) -> list[tuple[np.ndarray, bool]]:
    """`img` (HEIGHT rows) in pieces of at most `width` columns; (piece, space_before).

    Each cut is in the middle of the widest run of blank columns in the window's last quarter: a gap between
    words rather than between letters. A run of at least HEIGHT / 8 columns (about a quarter of the font's
    em at the detector's box margins; letter gaps are under half that) is read as a space.
    """
    grey = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    ink = np.abs(grey - np.median(grey)).max(axis=0)  # per column: the strongest departure from the background
    quiet = ink <= max(24.0, ink.max() * 0.1)
    out, start, space = [], 0, False
    while img.shape[1] - start > width:
        lo, hi = start + width * 3 // 4, start + width
        best, cut = 0, lo + int(np.argmin(ink[lo:hi]))  # no blank column: the faintest one
        i = lo
        while i < hi:
            if quiet[i]:
                j = i
                while j < img.shape[1] and quiet[j]:
                    j += 1
                if j - i >= best and (i + j) // 2 < hi:
                    best, cut = j - i, (i + j) // 2
                i = j
            else:
                i += 1
        out.append((img[:, start:cut], space))
        space = best >= HEIGHT // 8
        start = cut
    out.append((img[:, start:], space))
    return out


def pieces(bgr: np.ndarray, rects: Sequence[tuple[int, int, int, int]]) -> list[Piece]:
    """Crops of the frame at `rects` (x, y, w, h), scaled and cut for the recogniser."""
    out = []
    for i, (x, y, w, h) in enumerate(rects):
        crop = np.ascontiguousarray(bgr[y : y + h, x : x + w])
        if crop.shape[0] < 2 or crop.shape[1] < 2:
            continue
        for img, space in split(to_height(crop), BUCKETS[-1]):
            out.append(Piece(i, img, space))
    return out


def bucket(width: int) -> int:
    return next(b for b in BUCKETS if width <= b)


def batches(items: Sequence[Piece], static: bool) -> list[tuple[int, list[int]]]:
    """(input width, piece indices) per inference: grouped by bucket (static) or by similar width (dynamic)."""
    order = sorted(range(len(items)), key=lambda i: items[i].image.shape[1])
    out: list[tuple[int, list[int]]] = []
    if static:
        for b in BUCKETS:
            idx = [i for i in order if bucket(items[i].image.shape[1]) == b]
            n = batch(b)
            out += [(b, idx[k : k + n]) for k in range(0, len(idx), n)]
        return out
    rstep = lambda i: -(-items[i].image.shape[1] // STEP) * STEP  # noqa: E731
    k = 0
    while k < len(order):  # ascending widths: grow a batch while it stays within its widest line's size
        n = 1
        while k + n < len(order) and n < batch(rstep(order[k + n])):
            n += 1
        idx = order[k : k + n]
        out.append((rstep(idx[-1]), idx))
        k += n
    return out


def tensor(images: Sequence[np.ndarray], width: int, rows: int) -> np.ndarray:
    """[rows, 3, HEIGHT, width] float32, each image normalised to [-1, 1] at the left, 0 elsewhere."""
    x = np.zeros((rows, 3, HEIGHT, width), np.float32)
    for k, img in enumerate(images):
        x[k, :, :, : img.shape[1]] = img.transpose(2, 0, 1) * np.float32(1 / 127.5) - np.float32(1.0)
    return x


class CtcDecoder:
    """Greedy CTC: best class per step, repeats collapsed, blanks dropped. Classes: blank, charset…, space."""

    def __init__(self, charset: Sequence[str]) -> None:
        self.chars = ["", *charset, " "]

    def __call__(self, idx: np.ndarray, best: np.ndarray) -> tuple[str, float]:
        """Text and mean confidence of its characters from one row's best class and its probability per step."""
        keep = idx != 0
        keep[1:] &= idx[1:] != idx[:-1]
        if not keep.any():
            return "", 0.0
        return "".join(self.chars[i] for i in idx[keep]), float(best[keep].mean())


Infer = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]


def recognise(items: Sequence[Piece], infer: Infer, decode: CtcDecoder, static: bool) -> list[tuple[str, float]]:
    """(text, score) per piece; `infer` maps a [B, 3, HEIGHT, W] batch to (best class, its probability) [B, W/8]."""
    out: list[tuple[str, float]] = [("", 0.0)] * len(items)
    for width, idx in batches(items, static):
        x = tensor([items[i].image for i in idx], width, batch(width) if static else len(idx))
        index, prob = infer(x)
        for k, i in enumerate(idx):
            steps = -(-items[i].image.shape[1] // 8) + 1  # the padding's steps can only add noise
            out[i] = decode(index[k, :steps], prob[k, :steps])
    return out
