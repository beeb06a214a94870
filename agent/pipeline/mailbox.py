"""Per-source mailboxes between capture threads and a model's dispatcher.

A video source gets depth 1 (the latest frame wins; the one it replaces is dropped and counted); an
audio source gets a deeper queue (the oldest window is dropped and counted). `put` never blocks, so a
capture thread never waits on inference. `take` serves sources round-robin so one fast source cannot
starve another.

A pause `cut`s a source: what waits in its mailbox is discarded (counted), and a result of a frame
captured before the cut that was already being encoded is `stale`, so the sinks drop it (counted too).
Nothing captured before a pause reply reaches the bus or memory after it.

A source's frames can also be `tap`ped: a derived sense (screen text) is offered every frame that reached
the mailbox, i.e. that passed exclusions and the change gate.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from encoders.records import Frame


class Mailboxes:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._boxes: dict[str, deque[Frame]] = {}
        self._order: list[str] = []
        self._next = 0
        self._cut_ns: dict[str, int] = {}
        self.dropped: dict[str, int] = {}
        self.delivered: dict[str, int] = {}
        self.discarded: dict[str, int] = {}  # waiting or in flight when the source was paused
        self._taps: dict[str, list[Callable[[Frame], None]]] = {}

    def add(self, source: str, depth: int = 1) -> None:
        with self._cond:
            self._boxes[source] = deque(maxlen=depth)
            self._order.append(source)
            self.dropped[source] = 0
            self.delivered[source] = 0
            self.discarded[source] = 0
            self._cut_ns[source] = 0

    def put(self, frame: Frame) -> None:
        with self._cond:
            box = self._boxes[frame.source]
            if len(box) == box.maxlen:
                self.dropped[frame.source] += 1  # deque(maxlen) discards the oldest on append
            box.append(frame)
            self._cond.notify()
        for tap in self._taps.get(frame.source, ()):
            tap(frame)  # must not block: it runs on the capture thread

    def tap(self, source: str, fn: Callable[[Frame], None]) -> None:
        """Also hand every frame `source` puts to `fn` (on the capture thread; `fn` must not block)."""
        self._taps.setdefault(source, []).append(fn)

    def take(self, timeout: float) -> Frame | None:
        """Next frame, fairly across sources; None after `timeout` seconds with nothing ready."""
        with self._cond:
            if not self._cond.wait_for(self._ready, timeout):
                return None
            n = len(self._order)
            for i in range(n):
                source = self._order[(self._next + i) % n]
                if self._boxes[source]:
                    self._next = (self._next + i + 1) % n
                    self.delivered[source] += 1
                    return self._boxes[source].popleft()
        return None

    def _ready(self) -> bool:
        return any(self._boxes.values())

    def cut(self, source: str) -> int:
        """Call once `source` has stopped capturing: discard what it left waiting; returns how many."""
        with self._cond:
            box = self._boxes[source]
            n = len(box)
            box.clear()
            self.discarded[source] += n
            self._cut_ns[source] = time.monotonic_ns()
            return n

    def stale(self, frame: Frame) -> bool:
        """True (and counted) for a frame captured before its source's last cut: drop its result."""
        with self._cond:
            if frame.source in self._cut_ns and frame.mono_ns <= self._cut_ns[frame.source]:
                self.discarded[frame.source] += 1
                return True
            return False

    def depth(self) -> dict[str, int]:
        with self._cond:
            return {s: len(b) for s, b in self._boxes.items()}
