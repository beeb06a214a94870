"""What every frame encoder shares: the bad-frame and unit-vector rules, the stats, and a frame's way from
`submit` through inference to `on_result`.

A model family (image, audio) says only how a frame becomes the IR's inputs (`inputs`, BadFrame when it
cannot use the frame) and how one finished infer request becomes raw vectors and labels (`outputs`).
`FrameEncoder` does the rest, the same way for every family:
- stats `submitted`, `completed`, `bad_frames`, `errors`: a frame is either refused (`bad_frames`, raised
  to the caller, never submitted) or submitted, and a submitted frame ends `completed` (handed off) or
  `errors` (logged, never raised: not to the dispatcher, and not into OpenVINO's callback thread, where
  an exception aborts the whole process);
- every vector goes through `unit()`, so a zero or NaN model output is an error, never a vector;
- inference either on an AsyncInferQueue (results arrive on OpenVINO's threads) or, for a family that sets
  `inline`, on one request on the caller's thread, with `on_result` called before `submit` returns. Inline
  suits one small inference per frame (audio: nothing to overlap, and measured faster than a queue of one);
  it also lets the outputs still refuse a frame (BadFrame from `outputs`), which a queue's callback cannot.
Only numpy and OpenVINO are imported here.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import openvino as ov

from .records import Embedding, Encoded, Frame
from .runtime import Compiled

log = logging.getLogger(__name__)


class BadFrame(ValueError):
    """A frame the encoder cannot use (wrong shape, dtype, empty, or nothing in it to describe)."""


def unit(v: np.ndarray) -> np.ndarray:
    """A float32 copy scaled to norm 1; ValueError for a zero or non-finite norm.

    The graphs normalise already, but an INT8 or imported IR may be off by ~1e-3 (quantized division) or
    not normalise at all, and every space promises unit vectors. A norm that is 0, NaN or inf is the
    model's (or device's) failure, not the frame's: the encoder counts it as an error, not a bad frame.
    """
    out = np.array(v, dtype=np.float32, copy=True)
    norm = float(np.linalg.norm(out))
    if not math.isfinite(norm) or norm == 0.0:
        raise ValueError(f"model output has norm {norm}")
    out /= np.float32(norm)  # in place: the copy above is the one allocation
    return out


@dataclass(frozen=True)
class Outputs:
    """What one inference says about one frame, before the vectors are made unit and stamped."""

    vectors: dict[str, np.ndarray]  # space -> raw vector, in the order the embeddings are emitted
    labels: tuple[str, ...] = ()
    scores: tuple[float, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)


class FrameEncoder:
    """Stats, latencies, submit, hand-off and drain for one compiled frame IR; see the module docstring."""

    modality: ClassVar[str]
    name: str  # the model's, from its meta.json
    inline: ClassVar[bool] = False  # True: one static-shape request on the caller's thread, no AsyncInferQueue

    def __init__(self, compiled: Compiled, requests: int, on_result: Callable[[Encoded], None]) -> None:
        self.compiled = compiled
        self.device = compiled.device
        self.requests = requests
        self._on_result = on_result
        self._lock = threading.Lock()  # stats and latencies: callbacks run on OpenVINO's threads
        self.stats = {"submitted": 0, "completed": 0, "bad_frames": 0, "errors": 0}
        self.latency_ms: deque[float] = deque(maxlen=256)  # recent inference latencies
        self._logged_error = False
        self.queue: ov.AsyncInferQueue | None = None
        if self.inline:
            self.request = compiled.model.create_infer_request()
            self._busy = threading.Lock()  # one frame at a time on the one request
        else:
            self.queue = ov.AsyncInferQueue(compiled.model, requests)
            self.queue.set_callback(self._done)

    # -- what a model family says -----------------------------------------------------------------------
    def inputs(self, frame: Frame) -> dict[str, np.ndarray]:
        """The IR's inputs for `frame`; BadFrame when the frame cannot be used."""
        raise NotImplementedError

    def outputs(self, frame: Frame, request: ov.InferRequest) -> Outputs:
        """Vectors and labels from a finished request (its tensors are reused: copy what you keep)."""
        raise NotImplementedError

    # -- the same for every family -----------------------------------------------------------------------
    def embeddings(self, frame: Frame, request: ov.InferRequest) -> tuple[Embedding, ...]:
        """One unit-vector Embedding per space from one finished request (ValueError for a 0/NaN norm)."""
        o = self.outputs(frame, request)
        return tuple(Embedding.of(frame, space, unit(v), o.labels, o.scores, o.extra) for space, v in o.vectors.items())

    def submit(self, frame: Frame) -> None:
        """Start inference for `frame` (BadFrame, counted, for a frame it cannot use).

        On a queue this blocks only while every request is busy (the dispatcher thread's backpressure).
        """
        try:
            inputs = self.inputs(frame)
        except BadFrame:
            self._count("bad_frames")
            raise
        if self.inline:
            self._run_inline(frame, inputs)
            return
        assert self.queue is not None
        self._count("submitted")
        try:
            self.queue.start_async(inputs, (frame, time.perf_counter()))
        except Exception:  # the device refused to start: the frame is lost, counted like any failure
            self._failed(frame)

    def infer_inline(self, inputs: dict[str, np.ndarray]) -> None:
        """Run the one request on `inputs`, copied into its own tensors (static shapes; no wrapping per frame)."""
        for name, data in inputs.items():
            self.request.get_tensor(name).data[...] = data
        self.request.infer()

    def _run_inline(self, frame: Frame, inputs: dict[str, np.ndarray]) -> None:
        with self._busy:
            t0 = time.perf_counter()
            try:
                self.infer_inline(inputs)
                ms = (time.perf_counter() - t0) * 1000.0
                embs = self.embeddings(frame, self.request)
            except BadFrame:  # the outputs refuse the frame: still the caller's to count and skip
                self._count("bad_frames")
                raise
            except Exception:  # a device or model failure must not end the dispatcher thread
                self._count("submitted")
                self._failed(frame)
                return
            self._count("submitted")
            self._hand_off(frame, embs, ms)

    def _done(self, request: ov.InferRequest, userdata: tuple[Frame, float]) -> None:
        """OpenVINO's callback: copy the outputs out and hand them off; never raises into its thread."""
        frame, t0 = userdata
        ms = (time.perf_counter() - t0) * 1000.0
        try:
            embs = self.embeddings(frame, request)
        except Exception:  # BadFrame too: the frame was accepted when its inference started
            self._failed(frame)
            return
        self._hand_off(frame, embs, ms)

    def _hand_off(self, frame: Frame, embs: tuple[Embedding, ...], ms: float) -> None:
        try:
            self._on_result(Encoded(frame, embs, ms))
        except Exception:  # the sinks' failure, but the frame is lost all the same: counted once, here
            self._failed(frame)
            return
        with self._lock:
            self.stats["completed"] += 1
            self.latency_ms.append(ms)

    def _failed(self, frame: Frame) -> None:
        """Count an error; the first one is logged with its traceback, later ones at debug (no flood)."""
        with self._lock:
            self.stats["errors"] += 1
            first, self._logged_error = not self._logged_error, True
        level = logging.ERROR if first else logging.DEBUG
        log.log(level, "%s encoder %s failed on frame %s (counted)", self.modality, self.name, frame.id, exc_info=True)

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1

    def latencies(self) -> list[float]:
        """Recent inference latencies in ms: inference started → finished (input check and outputs excluded)."""
        with self._lock:
            return list(self.latency_ms)

    def drain(self) -> None:
        """Wait until every started inference has finished and been handed off."""
        if self.queue is not None:
            self.queue.wait_all()
        else:
            with self._busy:  # an inline run holds it until its hand-off is done
                pass
