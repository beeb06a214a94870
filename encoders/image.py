"""Image frames to vectors through an OpenVINO AsyncInferQueue.

Two kinds of image IR share this encoder (meta.json `kind`):
- `classifier` (EfficientNet-Lite0): outputs `feature`, `conse`, `top_prob`, `top_index`; labels are
  the classifier's top-5;
- `clip` (CLIP/SigLIP image tower): output `embedding`; labels are zero-shot, from a `Labeler` that
  scores the vector against the text tower's embeddings of a label list.
Mean/scale and layout live inside the IR (PrePostProcessor), so the input is plain RGB uint8. Resizing
is done where it measured faster (see README, Models): in Python with cv2 (static 1×S×S×3 input) or
inside the graph (the IR takes any H×W); a static-shape device (NPU) always gets the cv2 path.
OpenVINO's callback copies the outputs into `Embedding`s and hands them to `on_result` at once.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
import openvino as ov

from .records import Embedding, Encoded, Frame
from .resize import shrink
from .runtime import Runtime

# (unit vector) -> (labels, scores), best first
Labeler = Callable[[np.ndarray], tuple[tuple[str, ...], tuple[float, ...]]]


class BadFrame(ValueError):
    """A frame the encoder cannot use (wrong shape, dtype or empty)."""


def check_image(data: np.ndarray) -> None:
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 3 or data.shape[2] != 3:
        raise BadFrame(
            f"expected HxWx3 uint8 RGB, got {getattr(data, 'dtype', type(data))} {getattr(data, 'shape', '')}"
        )
    if data.shape[0] < 2 or data.shape[1] < 2:
        raise BadFrame(f"image too small: {data.shape}")


def unit(v: np.ndarray) -> np.ndarray:
    """A float32 copy scaled to norm 1: the graphs normalise already, but an INT8 or imported IR may be
    off by ~1e-3 (quantized division) or not normalise at all, and every space promises unit vectors."""
    out = np.array(v, dtype=np.float32, copy=True)
    norm = float(np.linalg.norm(out))
    if not np.isfinite(norm) or norm == 0.0:
        raise ValueError(f"model output has norm {norm}")
    return out / np.float32(norm)


class ImageEncoder:
    """Classifier or CLIP image IR behind an AsyncInferQueue; both give unit float32 vectors per space."""

    modality = "image"

    def __init__(
        self,
        runtime: Runtime,
        model_dir: Path,
        on_result: Callable[[Encoded], None],
        labeler: Labeler | None = None,
        resize: str | None = None,  # "cv2" | "graph"; None = what the model's meta prefers
    ) -> None:
        meta = json.loads((model_dir / "meta.json").read_text())
        self.name: str = meta["name"]
        self.kind: str = meta.get("kind", "classifier")
        if self.kind == "clip":
            img = meta["image"]
            xml, self.input, self.size = model_dir / img["xml"], img["input"], int(img["input_size"])
            self.spaces: dict[str, str] = {"embedding": meta["space"]}  # output name -> space
            self.labels: list[str] = []
            prefer = img.get("resize", "cv2")
        else:
            xml, self.input, self.size = model_dir / "model.xml", meta["input"], int(meta["input_size"])
            self.spaces = meta["spaces"]
            self.labels = json.loads((model_dir / meta["labels"]).read_text())
            prefer = meta.get("resize", "cv2")
        self.labeler = labeler
        dynamic = runtime.core.read_model(xml).input(self.input).get_partial_shape().is_dynamic
        self.graph_resize = dynamic and (resize or prefer) == "graph" and not runtime.needs_static_shapes()
        shapes = None if self.graph_resize or not dynamic else {self.input: [1, self.size, self.size, 3]}
        self.compiled = runtime.compile(xml, shapes)
        self.device = self.compiled.device
        self.requests = self.compiled.optimal_requests + 1  # one extra keeps the device fed while a callback runs
        self.queue = ov.AsyncInferQueue(self.compiled.model, self.requests)
        self.queue.set_callback(self._done)
        self._on_result = on_result
        self._lock = threading.Lock()
        self.stats = {"submitted": 0, "completed": 0, "bad_frames": 0, "errors": 0}
        self.latency_ms: deque[float] = deque(maxlen=256)  # recent inference latencies

    def preprocess(self, frame: Frame) -> np.ndarray:
        check_image(frame.data)
        if self.graph_resize:
            return np.ascontiguousarray(frame.data)[np.newaxis]
        return shrink(frame.data, self.size, self.size)[np.newaxis]

    def submit(self, frame: Frame) -> None:
        """Start inference for `frame`; blocks only while every request is busy (dispatcher thread)."""
        try:
            tensor = self.preprocess(frame)
        except BadFrame:
            self.stats["bad_frames"] += 1
            raise
        self.stats["submitted"] += 1
        self.queue.start_async({self.input: tensor}, (frame, time.perf_counter()))

    def encode_now(self, rgb: np.ndarray) -> list[Embedding]:
        """Vectors of one RGB image, synchronously, on an infer request of its own (query images).

        A fresh request per call: queries are rare, and the capture path's queue is never borrowed.
        """
        frame = Frame("query", "image", rgb, time.time_ns(), time.monotonic_ns())
        tensor = self.preprocess(frame)  # BadFrame for an unusable image
        request = self.compiled.model.create_infer_request()
        request.infer({self.input: tensor})
        return list(self.embeddings(frame, lambda name: request.get_tensor(name).data[0]))

    def label(self, get: Callable[[str], np.ndarray]) -> tuple[tuple[str, ...], tuple[float, ...]]:
        """Labels and scores of one result; `get(output_name)` returns that output's first row."""
        if self.kind == "clip":
            return self.labeler(get("embedding")) if self.labeler else ((), ())
        idx, probs = get("top_index"), get("top_prob")
        return tuple(self.labels[int(i)] for i in idx), tuple(round(float(p), 4) for p in probs)

    def embeddings(self, frame: Frame, get: Callable[[str], np.ndarray]) -> tuple[Embedding, ...]:
        """One Embedding per space from one inference's outputs (copied: requests are reused)."""
        labels, scores = self.label(get)
        return tuple(Embedding.of(frame, space, unit(get(out)), labels, scores) for out, space in self.spaces.items())

    def _done(self, request: ov.InferRequest, userdata: tuple[Frame, float]) -> None:
        frame, t0 = userdata
        ms = (time.perf_counter() - t0) * 1000.0
        try:
            embs = self.embeddings(frame, lambda name: request.get_tensor(name).data[0])
        except Exception:  # a callback must never raise into OpenVINO's thread
            with self._lock:
                self.stats["errors"] += 1
            return
        with self._lock:
            self.stats["completed"] += 1
            self.latency_ms.append(ms)
        self._on_result(Encoded(frame, embs, ms))

    def latencies(self) -> list[float]:
        """Recent inference latencies in ms (start_async → callback)."""
        with self._lock:
            return list(self.latency_ms)

    def drain(self) -> None:
        """Wait for every started request to finish and its callback to run."""
        self.queue.wait_all()
