"""Screen text: PP-OCRv6 detection + recognition on our OpenVINO runtime, lines out in reading order.

Both IRs compile through `Runtime`, so the `[device]` setting (NPU → CPU fallback, cache_dir, threads)
applies. The detector is compiled at two fixed canvas sizes on every device (see detect.py). On a
static-shape device (NPU) the recogniser is compiled once per width bucket at a fixed batch; elsewhere it
takes any width and batch (measured faster on the CPU: no padding to a bucket). There is
no angle classifier: screens are upright. Nothing here imports rapidocr or anything that could download.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..base import BadFrame
from ..records import TextLine
from ..runtime import Compiled, DeviceError, Runtime
from . import detect, recognise

# detector canvases (h, w), smallest first: a few changed lines (a strip as wide as a 720p screen); a 1280×720
# frame at native scale (larger frames scaled down to fit)
DET_SIZES = ((256, 1280), (736, 1280))
MIN_SIDE = 8  # a frame narrower or lower than this cannot hold a readable line
MIN_SCORE = 0.5  # recogniser confidence below which a line is dropped (rapidocr's text_score)
SEEN = 4096  # recognised line images remembered (a few screens' worth)
FILES = ("meta.json", "det.xml", "det.bin", "rec.xml", "rec.bin")


class OcrModelError(RuntimeError):
    """The OCR model folder is missing a file or a file cannot be read; the message names the file."""


def _meta(model_dir: Path) -> dict:
    for name in FILES:
        if not (model_dir / name).is_file():
            raise OcrModelError(f"OCR model file missing: {model_dir / name} (run `sensorium models build ppocr-v6`)")
    path = model_dir / "meta.json"
    try:
        meta = json.loads(path.read_text())
        if meta.get("kind") != "ocr" or not meta["charset"]:
            raise ValueError("not an OCR model's meta (kind 'ocr' with a charset)")
        return meta
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise OcrModelError(f"OCR model file unreadable: {path}: {e}") from None


def ink_key(crop: np.ndarray) -> bytes:
    """Hash of the crop's ink: the pixels inside the bounding box of those that differ from its border's median
    colour. Two detections of the same text line (boxes a pixel apart, or scrolled) get the same key."""
    border = np.concatenate([crop[0], crop[-1], crop[:, 0], crop[:, -1]])
    ink = np.abs(crop.astype(np.int16) - np.median(border, axis=0).astype(np.int16)).max(axis=2) > 32
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    tight = crop[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1] if len(rows) else crop[:0, :0]
    return hashlib.blake2b(np.ascontiguousarray(tight).tobytes() + repr(tight.shape).encode(), digest_size=16).digest()


def reading_order(lines: Sequence[TextLine]) -> list[TextLine]:
    """Top to bottom; lines whose vertical centres are within half a line height form a row, read left to right."""
    rows: list[list[TextLine]] = []
    for line in sorted(lines, key=lambda t: t.box[1] + t.box[3] / 2):
        cy, h = line.box[1] + line.box[3] / 2, line.box[3]
        if rows:
            first = rows[-1][0]
            if abs(cy - (first.box[1] + first.box[3] / 2)) <= 0.5 * min(h, first.box[3]):
                rows[-1].append(line)
                continue
        rows.append([line])
    return [t for row in rows for t in sorted(row, key=lambda t: t.box[0])]


def check_frame(rgb: np.ndarray) -> None:
    if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        got = f"{getattr(rgb, 'dtype', type(rgb))} {getattr(rgb, 'shape', '')}"
        raise BadFrame(f"OCR expects HxWx3 uint8 RGB, got {got}")
    if rgb.shape[0] < MIN_SIDE or rgb.shape[1] < MIN_SIDE:
        raise BadFrame(f"frame {rgb.shape[1]}×{rgb.shape[0]} is too small to hold text (min {MIN_SIDE} px a side)")


class OcrEngine:
    """`read(rgb, regions)` → TextLines in reading order; one frame at a time (a lock), stats like an encoder's."""

    def __init__(
        self,
        runtime: Runtime,
        model_dir: Path,
        static: bool | None = None,
        det_sizes: Sequence[tuple[int, int]] = DET_SIZES,
    ) -> None:
        model_dir = Path(model_dir)
        meta = _meta(model_dir)
        self.name: str = meta.get("name", "ppocr-v6")
        self.static = runtime.needs_static_shapes() if static is None else static
        self.det_sizes = tuple(det_sizes)
        d = meta.get("det", {})
        self.params = detect.DetParams(
            d.get("thresh", 0.3), d.get("box_thresh", 0.5), d.get("unclip_ratio", 1.6), d.get("max_candidates", 1000)
        )
        self.decode = recognise.CtcDecoder(meta["charset"])
        det = model_dir / "det.xml"
        self.det = {size: self._compile(runtime, det, {"x": [1, 3, *size]}) for size in self.det_sizes}
        if self.static:
            self.rec = {
                b: self._compile(runtime, model_dir / "rec.xml", {"x": [recognise.batch(b), 3, recognise.HEIGHT, b]})
                for b in recognise.BUCKETS
            }
        else:
            self.rec = {0: self._compile(runtime, model_dir / "rec.xml", None)}
        self.device = self.det[self.det_sizes[-1]].device
        self._det_req = {size: c.model.create_infer_request() for size, c in self.det.items()}
        self._rec_req = {b: c.model.create_infer_request() for b, c in self.rec.items()}
        self._lock = threading.Lock()
        self.stats = {"frames": 0, "lines": 0, "bad_frames": 0, "errors": 0, "boxes": 0, "boxes_cached": 0}
        self._seen: OrderedDict[bytes, tuple[str, float]] = OrderedDict()  # ink_key -> (text, score)
        self.latency_ms: deque[float] = deque(maxlen=256)  # whole read() per frame: det + rec + post-processing

    @staticmethod
    def _compile(runtime: Runtime, xml: Path, shapes: dict[str, list[int]] | None) -> Compiled:
        try:
            return runtime.compile(xml, shapes)
        except DeviceError:  # no device could take it, or strict and missing: not the file's fault
            raise
        except RuntimeError as e:  # OpenVINO's read errors: a corrupt or truncated file
            why = [line for line in str(e).splitlines() if line.strip()] or [type(e).__name__]
            raise OcrModelError(f"OCR model file unreadable: {xml} (or its .bin): {why[-1].strip()}") from None

    def _rec_infer(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        req = self._rec_req[x.shape[3] if self.static else 0]
        req.infer({0: x})
        return req.get_tensor("index").data.copy(), req.get_tensor("prob").data.copy()

    def read(self, rgb: np.ndarray, regions: Sequence[tuple[int, int, int, int]] | None = None) -> list[TextLine]:
        """Text lines of `rgb` (H×W×3 uint8), in reading order, boxes in frame pixels.

        `regions` (x, y, w, h) limit detection to those parts of the frame (e.g. what changed since the last
        read); None reads the whole frame. BadFrame (counted) for an image it cannot read.
        """
        try:
            check_frame(rgb)
        except BadFrame:
            self._count("bad_frames")
            raise
        with self._lock:
            t0 = time.perf_counter()
            try:
                lines = self._read(rgb, regions)
            except Exception:
                self.stats["errors"] += 1
                raise
            self.stats["frames"] += 1
            self.stats["lines"] += len(lines)
            self.latency_ms.append((time.perf_counter() - t0) * 1000.0)
            return lines

    def _read(self, rgb: np.ndarray, regions: Sequence[tuple[int, int, int, int]] | None) -> list[TextLine]:
        h, w = rgb.shape[:2]
        size, places = detect.layout(w, h, regions, self.det_sizes)
        if not places:
            return []
        prob = self._det_req[size].infer({0: detect.canvas(rgb, places, size)})[0][0, 0]
        found = detect.boxes(prob, places, self.params)
        rects = []
        for pts, _ in found:
            x0, y0 = np.floor(pts.min(axis=0)).astype(int)
            x1, y1 = np.ceil(pts.max(axis=0)).astype(int)
            x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
            if x1 - x0 >= 2 and y1 - y0 >= 2:
                rects.append((int(x0), int(y0), int(x1 - x0), int(y1 - y0)))
        lines = []
        for rect, (text, score) in zip(rects, self._recognise(rgb, rects), strict=True):
            if text and score >= MIN_SCORE:
                lines.append(TextLine(text, rect, round(score, 4)))
        return reading_order(lines)

    def _recognise(self, rgb: np.ndarray, rects: Sequence[tuple[int, int, int, int]]) -> list[tuple[str, float]]:
        """(text, score) per box. A line seen in a recent read (the same ink, wherever it is now: unchanged or
        scrolled text) is not inferred again: the recogniser, ~0.12 ms per input column at one CPU thread, is
        most of a read."""
        keys = [ink_key(rgb[y : y + h, x : x + w]) for x, y, w, h in rects]
        todo = [i for i, k in enumerate(keys) if k not in self._seen]
        items = recognise.pieces(rgb[..., ::-1], [rects[i] for i in todo])
        results = recognise.recognise(items, self._rec_infer, self.decode, self.static)
        parts: dict[int, list[str]] = {}
        scores: dict[int, list[float]] = {}
        for piece, (text, score) in zip(items, results, strict=True):
            parts.setdefault(piece.line, []).append((" " if piece.space_before else "") + text)
            scores.setdefault(piece.line, []).append(score)
        for n, i in enumerate(todo):
            text = " ".join("".join(parts.get(n, [])).split())
            self._seen[keys[i]] = (text, float(np.mean(scores[n])) if n in scores else 0.0)
        out = []
        for k in keys:
            self._seen.move_to_end(k)
            out.append(self._seen[k])
        while len(self._seen) > SEEN:
            self._seen.popitem(last=False)
        self.stats["boxes"] += len(rects)
        self.stats["boxes_cached"] += len(rects) - len(todo)
        return out

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1

    def latencies(self) -> list[float]:
        with self._lock:
            return list(self.latency_ms)
