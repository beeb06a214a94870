"""Image frames to vectors through an OpenVINO AsyncInferQueue.

`submit` resizes on the caller's thread (cv2, cheap at 224×224) and starts an async request;
OpenVINO's callback copies the outputs into `Embedding`s and hands them to `on_result` at once.
Mean/scale and layout live inside the IR (PrePostProcessor), so the input is plain RGB uint8.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import openvino as ov

from .records import Embedding, Encoded, Frame
from .runtime import Runtime


class BadFrame(ValueError):
    """A frame the encoder cannot use (wrong shape, dtype or empty)."""


def check_image(data: np.ndarray) -> None:
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 3 or data.shape[2] != 3:
        raise BadFrame(
            f"expected HxWx3 uint8 RGB, got {getattr(data, 'dtype', type(data))} {getattr(data, 'shape', '')}"
        )
    if data.shape[0] < 2 or data.shape[1] < 2:
        raise BadFrame(f"image too small: {data.shape}")


class ImageEncoder:
    """EfficientNet-style classifier IR with `feature`, `conse`, `top_prob`, `top_index` outputs."""

    modality = "image"

    def __init__(self, runtime: Runtime, model_dir: Path, on_result: Callable[[Encoded], None]) -> None:
        meta = json.loads((model_dir / "meta.json").read_text())
        self.name: str = meta["name"]
        self.size: int = int(meta["input_size"])
        self.input: str = meta["input"]
        self.spaces: dict[str, str] = meta["spaces"]  # output name -> space
        self.labels: list[str] = json.loads((model_dir / meta["labels"]).read_text())
        self.compiled = runtime.compile(model_dir / "model.xml")
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
        img = cv2.resize(frame.data, (self.size, self.size), interpolation=cv2.INTER_AREA)
        return img[np.newaxis]

    def submit(self, frame: Frame) -> None:
        """Start inference for `frame`; blocks only while every request is busy (dispatcher thread)."""
        try:
            tensor = self.preprocess(frame)
        except BadFrame:
            self.stats["bad_frames"] += 1
            raise
        self.stats["submitted"] += 1
        self.queue.start_async({self.input: tensor}, (frame, time.perf_counter()))

    def _done(self, request: ov.InferRequest, userdata: tuple[Frame, float]) -> None:
        frame, t0 = userdata
        ms = (time.perf_counter() - t0) * 1000.0
        try:
            probs = request.get_tensor("top_prob").data[0].copy()
            idx = request.get_tensor("top_index").data[0].copy()
            labels = tuple(self.labels[int(i)] for i in idx)
            scores = tuple(round(float(p), 4) for p in probs)
            embs = tuple(
                Embedding(
                    frame_id=frame.id,
                    source=frame.source,
                    modality=frame.modality,
                    space=space,
                    vector=request.get_tensor(out).data[0].astype(np.float32, copy=True),
                    ts_ns=frame.ts_ns,
                    mono_ns=frame.mono_ns,
                    labels=labels,
                    scores=scores,
                )
                for out, space in self.spaces.items()
            )
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
