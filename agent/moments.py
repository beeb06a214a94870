"""Moments: every `interval_s` seconds, one late-fusion vector of what all senses produced in that slice of time.

A sink of the result stage (sinks.Sink: put, close, stats) that emits a derived sense, as screen text does: it
keeps the vectors in the text space (the image model's ConSE vector, the audio model's label vector, screen
text and speech in MiniLM: one space, so they can be averaged) by slice of capture time, and when a slice is
done puts one `Encoded` (modality "moment", source "all", empty data) back into the result stage, which
publishes (emb.moment.all) and stores it like any row. So "a video call about the budget" can match a slice
where the screen showed a call while someone spoke about the budget, though no single memory holds both.

Fusion: the vectors of one stream ("screen0", "screen0#text", "mic0#text", ...) are averaged and renormalised,
then the streams are summed with their kind's weight and the sum renormalised. Averaging per stream first
means a screen kept 10 times in a slice does not outweigh one sentence said in it: the weights say how much a
sense counts, not how often it fired.

Slices are aligned to wall-clock multiples of `interval_s` (ids stay stable across restarts and agents, and
`around` can compute a slice from a time). Derived senses arrive late — speech by its utterance's start, after
the utterance ended and was transcribed — so a slice closes only once `grace_s` has passed after its end: when
an item captured that much later arrives, or the timer sees the wall clock there. What arrives for a closed
slice is counted (`late`) and left out. `close()` emits what is pending, so a stop does not lose the last
slice; `forget()` drops pending slices that overlap a forgotten range, so a forget never comes back as a moment
(and the daemon deletes the stored moment of the slice a range starts inside: `straddled`). A slice whose senses
all weigh 0 (or cancel out) emits nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

from encoders.records import Embedding, Encoded, Frame

log = logging.getLogger(__name__)

MODALITY = "moment"
SOURCE = "all"  # the moments' stream; "<agent>.all" when [store] agent is set
KINDS = ("image", "audio", "text", "speech")  # the weight keys of [moments.weights]
TICK_S = 0.5  # how often the timer looks for slices past their grace
EMPTY = np.zeros(0, np.float32)
NS = 1_000_000_000


def kind_of(frame: Frame, e: Embedding) -> str:
    """The weight key of a vector: what it is, not which sensor made it (a camera and a screen are both images).
    Text read from an audio frame is speech; any other text is screen (or camera) text."""
    if e.modality == "text":
        return "speech" if frame.modality == "audio" else "text"
    return e.modality


def stream_of(e: Embedding) -> str:
    """The memory's stream, as the store's row index names it: "screen0", "screen0#text", "mic0#text"."""
    return e.id.rpartition("-")[0] or e.source


@dataclass
class Slice:
    start_ns: int
    streams: dict[str, list[np.ndarray]] = field(default_factory=dict)  # stream → its vectors in the slice
    kinds: dict[str, str] = field(default_factory=dict)  # stream → its weight key


def fuse(s: Slice, weights: Mapping[str, float]) -> np.ndarray | None:
    """Weighted mean of the per-stream means, unit length; None when nothing weighs (or it cancels out)."""
    total = None
    for stream, vectors in s.streams.items():
        w = weights.get(s.kinds[stream], 0.0)
        if w <= 0:
            continue
        mean = np.mean(np.stack(vectors), axis=0, dtype=np.float64)
        norm = np.linalg.norm(mean)
        if not np.isfinite(norm) or norm < 1e-6:
            continue
        part = w * mean / norm
        total = part if total is None else total + part
    if total is None:
        return None
    norm = np.linalg.norm(total)
    return (total / norm).astype(np.float32) if np.isfinite(norm) and norm >= 1e-6 else None


class Moments:
    def __init__(
        self,
        space: str,
        interval_s: float,
        grace_s: float,
        weights: Mapping[str, float],
        emit: Callable[[Encoded], None],
        source: str = SOURCE,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        """`space`: the text space (vectors in others are ignored); `emit`: where a moment goes (the result
        stage's put); `clock`: wall time in ns (tests step it)."""
        self.space, self.source, self.emit, self.clock = space, source, emit, clock
        self.interval_ns, self.grace_ns = int(interval_s * NS), int(grace_s * NS)
        self.weights = dict(weights)
        self._lock = threading.Lock()
        self._pending: dict[int, Slice] = {}  # slice start ns → what it holds so far
        self._closed_ns = 0  # every slice that ends at or before this is closed
        self._latest_ns = 0  # the latest capture time seen
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="moments", daemon=True)
        self.counts = {"vectors": 0, "emitted": 0, "late": 0, "empty": 0, "forgotten": 0}

    # -- the Sink side (the result stage's thread) ------------------------------------------------------------

    def put(self, item: Encoded, thumb: str | None = None) -> None:
        """Take the item's text-space vectors into their slices; never blocks on anything but this object."""
        if item.frame.modality == MODALITY:  # our own moments come back through the result stage
            return
        with self._lock:
            for e in item.embeddings:
                if e.space != self.space:
                    continue
                start = e.ts_ns // self.interval_ns * self.interval_ns
                if start + self.interval_ns <= self._closed_ns:
                    self.counts["late"] += 1
                    continue
                s = self._pending.setdefault(start, Slice(start))
                stream = stream_of(e)
                s.streams.setdefault(stream, []).append(np.asarray(e.vector, np.float32))
                s.kinds[stream] = kind_of(item.frame, e)
                self.counts["vectors"] += 1
                self._latest_ns = max(self._latest_ns, e.ts_ns)
            self._close_before(self._latest_ns - self.grace_ns)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        """Stop the timer and emit every pending slice (call while the result stage still runs)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        with self._lock:
            self._close_before(None)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {**self.counts, "pending": len(self._pending)}

    # -- the timer and forget ------------------------------------------------------------------------------

    def tick(self) -> None:
        """Close the slices whose grace has passed by the wall clock (nothing arrived to close them)."""
        with self._lock:
            self._close_before(self.clock() - self.grace_ns)

    def forget(self, since: float | None, until: float | None) -> int:
        """Drop the pending slices that overlap [since, until] (unix s, None = open); how many."""
        lo = -1 if since is None else int(since * NS)
        hi = None if until is None else int(until * NS)
        with self._lock:
            gone = [
                s for s in self._pending if s + self.interval_ns > lo and (hi is None or s <= hi)
            ]  # [s, s + interval) meets [since, until]
            for s in gone:
                del self._pending[s]
            self.counts["forgotten"] += len(gone)
        if gone:
            log.info("moments: %d pending slice(s) dropped by a forget", len(gone))
        return len(gone)

    def _run(self) -> None:
        while not self._stop.wait(TICK_S):
            try:
                self.tick()
            except Exception:  # a bug here must not end the timer: the next tick tries again
                log.exception("moments: closing slices failed")

    def _close_before(self, until_ns: int | None) -> None:
        """Emit, oldest first, the pending slices that end at or before `until_ns` (None: all). Holds the lock."""
        for start in sorted(self._pending):
            end = start + self.interval_ns
            if until_ns is not None and end > until_ns:
                break
            s = self._pending.pop(start)
            self._closed_ns = max(self._closed_ns, end)
            self._emit(s)

    def _emit(self, s: Slice) -> None:
        vector = fuse(s, self.weights)
        if vector is None:
            self.counts["empty"] += 1
            return
        senses = sorted(st for st in s.streams if self.weights.get(s.kinds[st], 0.0) > 0)
        frame = Frame(self.source, MODALITY, EMPTY, s.start_ns, time.monotonic_ns())
        extra = {"end": f"{(s.start_ns + self.interval_ns) / NS:.3f}", "senses": ",".join(senses)}
        self.emit(Encoded(frame, (Embedding.of(frame, self.space, vector, extra=extra),)))
        self.counts["emitted"] += 1


def straddled(since: float | None, interval_s: float) -> float | None:
    """The start of the slice that `since` falls inside (not on its start), else None: that slice's moment,
    stored before a forget from `since`, holds some of what is forgotten, though it begins before the range."""
    if since is None:
        return None
    interval_ns, since_ns = int(interval_s * NS), round(since * NS)
    start = since_ns // interval_ns * interval_ns
    return start / NS if start < since_ns else None


def moment_source(agent: str) -> str:
    """The moments' source name: "all", or "<agent>.all" like every source of an agent sharing a store."""
    return f"{agent}.{SOURCE}" if agent else SOURCE
