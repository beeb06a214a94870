"""Screen text: a worker that reads text from kept image frames and hands it on as text memories.

A derived sense (DESIGN): it takes frames that already passed exclusions and the change gate, on its own
thread, and never holds up capture or the image pipeline. Per source it keeps only the latest frame offered
(an older one still waiting is skipped and counted) and reads at most one frame every `min_interval_s`.
It reads only the bands that changed since the last frame it read (agent/text/changes.py), groups the
lines into blocks, keeps only lines it has not stored before (a static page is stored once; a scroll
stores the lines that scrolled in), redacts, embeds, and puts the result to the result stage like any
encoder's, so thumbnails, the bus and memory treat it the same way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from agent.telemetry.metrics import percentile
from encoders.records import Encoded, Frame, TextLine

from .blocks import Novelty, blocks
from .changes import Box, changed_bands, grey
from .memories import Embedder, memories
from .redact import Redactor

log = logging.getLogger(__name__)

RECENT = 64  # read times kept for status p50/p95


class Reader(Protocol):
    """An image's text lines in reading order (encoders.ocr.OcrEngine)."""

    def read(self, rgb: np.ndarray, regions: Sequence[Box] | None = None) -> list[TextLine]: ...


class ImageText:
    def __init__(
        self,
        reader: Reader,
        embedder: Embedder,
        redactor: Redactor | None,
        put: Callable[[Encoded], None],
        min_interval_s: float,
        min_score: float = 0.5,
    ) -> None:
        self.reader, self.embedder, self.redactor, self.put = reader, embedder, redactor, put
        self.min_interval_s = min_interval_s
        self.min_score = min_score
        self._cond = threading.Condition()
        self._waiting: dict[str, Frame] = {}  # source → latest frame offered and not yet read
        self._due: dict[str, float] = {}  # source → monotonic time its next read may start
        self._prev: dict[str, np.ndarray] = {}  # source → grey copy of the last frame read
        self._novelty: dict[str, Novelty] = {}
        self._busy: Frame | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="image-text", daemon=True)
        self._recent_ms: list[float] = []
        self.counts = dict.fromkeys(
            ("offered", "skipped", "read", "unchanged", "lines", "memories", "redacted", "errors", "discarded"), 0
        )

    def start(self) -> None:
        self._thread.start()

    def offer(self, frame: Frame) -> None:
        """A kept frame (capture thread): replaces the source's waiting one, which is skipped; never blocks."""
        with self._cond:
            self.counts["offered"] += 1
            if frame.source in self._waiting:
                self.counts["skipped"] += 1
            self._waiting[frame.source] = frame
            self._cond.notify()

    def flush(self, timeout: float = 10.0) -> bool:
        """Before a forget: drop frames waiting, wait for the one being read to reach the result stage, and
        forget which lines were stored (they may be deleted now; if still on screen they are stored again)."""
        with self._cond:
            self.counts["discarded"] += len(self._waiting)
            self._waiting.clear()
            ok = self._cond.wait_for(lambda: self._busy is None, timeout)
            for n in self._novelty.values():
                n.clear()
            self._prev.clear()
            return ok

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def _next(self) -> Frame | None:
        """The waiting frame whose source is due soonest, once due; None when stopping."""
        with self._cond:
            while not self._stop.is_set():
                now = time.monotonic()
                ready = sorted(self._waiting, key=lambda s: self._due.get(s, 0.0))
                if ready and self._due.get(ready[0], 0.0) <= now:
                    frame = self._busy = self._waiting.pop(ready[0])
                    self._due[frame.source] = now + self.min_interval_s
                    return frame
                wait = (self._due.get(ready[0], 0.0) - now) if ready else None
                self._cond.wait(timeout=0.5 if wait is None else min(wait, 0.5))
            return None

    def _run(self) -> None:
        while (frame := self._next()) is not None:
            try:
                self.read(frame)
            except Exception as e:  # a bad frame or a model error must not end the worker
                self._count(errors=1)
                log.error("text of %s not read: %s", frame.id, e)
            finally:
                with self._cond:
                    self._busy = None
                    self._cond.notify_all()

    def read(self, frame: Frame) -> Encoded | None:
        """Read `frame` (its changed bands), and put its new text memories to the result stage."""
        t0 = time.perf_counter()
        g = grey(frame.data)
        regions = changed_bands(self._prev.get(frame.source), g)
        self._prev[frame.source] = g
        if regions == []:
            self._count(unchanged=1)
            return None
        lines = [ln for ln in self.reader.read(frame.data, regions) if ln.score >= self.min_score and ln.text.strip()]
        self._count(read=1, lines=len(lines))
        novelty = self._novelty.setdefault(frame.source, Novelty(min_score=self.min_score))
        fresh = novelty.new(blocks(lines))
        embs, redacted = memories(frame, [b.text for b in fresh], self.embedder, self.redactor)
        ms = (time.perf_counter() - t0) * 1000
        self._count(redacted=redacted, memories=len(embs))
        with self._cond:
            self._recent_ms = [*self._recent_ms[-RECENT + 1 :], ms]
        if not embs:
            return None
        item = Encoded(frame, tuple(embs), infer_ms=ms)
        self.put(item)
        return item

    def _count(self, **n: int) -> None:
        with self._cond:
            for key, v in n.items():
                self.counts[key] += v

    def stats(self) -> dict[str, Any]:
        with self._cond:
            recent = list(self._recent_ms)
            counts = {**self.counts, "waiting": len(self._waiting)}
        return counts | {"p50_ms": percentile(recent, 50), "p95_ms": percentile(recent, 95)}
