"""The result stage: what an encoder produced goes to the bus and to memory.

For each result, on this stage's own thread:
1. a result of a frame captured before its source was paused is dropped (`Mailboxes.stale`, counted
   as discarded); a derived item of no source (a moment: agent/moments.py) is never stale;
2. the thumbnail is written, so the path a header advertises is a file on disk (or None); text read from
   a frame (a derived sense) shares the frame's thumbnail;
3. the item and that path go to every sink (publisher, then memory), and the latency is recorded.

Encoder callbacks only `put` here: they copy outputs and hand off (DESIGN). A JPEG thumbnail costs
2.6 ms p50 for 1280×720 → 192 px and 7 ms for 1920×1080 (2-core machine), and an OpenVINO request is not
given back until its callback returns: with the write on the callback, a daemon saturated by a synthetic
1280×720 source ran 23–30 instead of 35–43 frames/s (A/B, two rounds, loaded machine). So the write
happens here, behind a bounded queue. A full queue drops the result (counted in `dropped`: status
"fanout", metric sensorium_results_dropped_total).

A pause's `cut` and a hand-off exclude each other, so once `cut` returns nothing the source captured
before it is handed to a sink.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Protocol

from agent.pipeline.mailbox import Mailboxes
from agent.telemetry.metrics import Latencies
from encoders.records import Encoded, Frame
from sinks import Sink

log = logging.getLogger(__name__)

QUEUE_SIZE = 256  # results; at 30 frames/s about 8 s of sinks being slower than inference
RECENT = 256  # latencies kept for status p50/p95


class Thumbnailer(Protocol):
    def save(self, frame: Frame) -> str | None:
        """Write the frame's thumbnail; its path, or None (off, not an image, or failed)."""


class FanOut:
    def __init__(
        self,
        boxes_of: Mapping[str, Mailboxes],
        thumbs: Thumbnailer,
        sinks: Sequence[Sink],
        latencies: Latencies,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self._boxes_of = boxes_of  # source name → the mailboxes it posts to
        self.thumbs = thumbs
        self.sinks = tuple(sinks)
        self.latencies = latencies
        self._q: queue.Queue[Encoded] = queue.Queue(maxsize=queue_size)
        self._handoff = threading.Lock()  # one hand-off, or one cut, at a time
        self._idle = threading.Condition()
        self._pending = 0  # results put and not yet handed off (or dropped as stale)
        self._recent_ms: deque[float] = deque(maxlen=RECENT)  # capture → handed to the sinks
        self._recent_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fanout", daemon=True)
        self.dropped = 0  # results refused because the queue was full
        self.errors = 0  # hand-offs that raised (a sink's bug must not end the stage)

    def start(self) -> None:
        self._thread.start()

    def put(self, item: Encoded) -> None:
        """An encoder's result; never blocks (called on inference callback threads)."""
        with self._idle:
            try:
                self._q.put_nowait(item)
            except queue.Full:
                self.dropped += 1
                return
            self._pending += 1

    def cut(self, source: str) -> int:
        """Drop what `source` (now paused) left in its mailbox, and from now on results of frames it
        captured before this call; returns how many were waiting in the mailbox."""
        with self._handoff:
            return self._boxes_of[source].cut(source)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every result put so far has reached the sinks (False after `timeout`)."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self) -> None:
        """Hand off what is queued, then stop (call after the encoders have drained)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not (self._stop.is_set() and self._q.empty()):
            try:
                item = self._q.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                self.handoff(item)
            except Exception:
                self.errors += 1
                log.exception("result of %s not handed to the sinks", item.frame.id)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def handoff(self, item: Encoded) -> bool:
        """Thumbnail, then every sink; False when the frame was captured before its source's last pause."""
        frame = item.frame
        boxes = self._boxes_of.get(frame.source)  # None: a stream no source captures (moments, agent/moments.py)
        with self._handoff:
            if boxes is not None and boxes.stale(frame):
                return False
            thumb = self.thumbs.save(frame)
            for sink in self.sinks:
                sink.put(item, thumb)
        modality = item.embeddings[0].modality if item.embeddings else frame.modality
        hist = self.latencies.inference.get(modality)
        if hist is not None:
            hist.observe(item.infer_ms / 1000)
        # not a derived sense's result (screen text waits by design), nor one made from many captures (a moment)
        if modality == frame.modality and boxes is not None:
            ms = (time.monotonic_ns() - frame.mono_ns) / 1e6
            with self._recent_lock:
                self._recent_ms.append(ms)
            self.latencies.pipeline.observe(ms / 1000)
        return True

    def recent_ms(self) -> list[float]:
        """Recent capture → sinks latencies in ms."""
        with self._recent_lock:
            return list(self._recent_ms)

    def stats(self) -> dict[str, int]:
        return {"queued": self._q.qsize(), "dropped": self.dropped, "errors": self.errors}
