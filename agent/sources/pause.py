"""A source's pause switch: flipped by the control endpoint, obeyed by the capture thread.

Pausing is a privacy control, so a paused source must capture nothing, not capture and discard: the
capture thread leaves its device (closes the camera, kills the audio process, stops grabbing) before it
calls `hold`, and `pause` returns only once the thread is held, so after a pause reply no new frame is
taken. A timed pause ends by itself: `hold` wakes at the deadline.
"""

from __future__ import annotations

import threading
import time

HOLD_TIMEOUT_S = 1.5  # a camera open/read is bounded at 1 s, so a capture thread is held within this


class Pause:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._on = False
        self._deadline: float | None = None  # monotonic; None = until resumed
        self._until: float | None = None  # the same deadline in unix seconds, for status
        self._held = False

    def set(self, seconds: float | None) -> None:
        """Pause until clear(), or for `seconds`; pausing again replaces the deadline."""
        with self._cond:
            self._on = True
            self._deadline = None if seconds is None else time.monotonic() + seconds
            self._until = None if seconds is None else time.time() + seconds
            self._cond.notify_all()

    def clear(self) -> None:
        with self._cond:
            self._on = False
            self._cond.notify_all()

    def wake(self) -> None:
        """Call after setting the source's stop event: a held or sleeping capture thread sees it now."""
        with self._cond:
            self._cond.notify_all()

    def _active(self) -> bool:
        if self._on and self._deadline is not None and time.monotonic() >= self._deadline:
            self._on = False  # a timed pause ends by itself
        return self._on

    @property
    def active(self) -> bool:
        with self._cond:
            return self._active()

    @property
    def until(self) -> float | None:
        """Unix time a timed pause ends; None when not paused or paused until resumed."""
        with self._cond:
            return self._until if self._active() else None

    def stats(self) -> dict[str, float]:
        """`paused_until` while a timed pause runs, for a source's stats()."""
        until = self.until
        return {} if until is None else {"paused_until": round(until, 3)}

    def hold(self, stop: threading.Event) -> None:
        """Capture thread, device already released: block while paused or until `stop` (with wake())."""
        with self._cond:
            self._held = True
            self._cond.notify_all()
            try:
                while self._active() and not stop.is_set():
                    left = None if self._deadline is None else max(0.0, self._deadline - time.monotonic())
                    self._cond.wait(left)
            finally:
                self._held = False

    def wait_held(self, timeout: float = HOLD_TIMEOUT_S) -> bool:
        """Control side: True once the capture thread is held (or the pause is already over)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._held or not self._active(), timeout)

    def sleep(self, seconds: float, stop: threading.Event) -> None:
        """A back-off or pacing wait that ends early on stop (with wake()) or a pause, so it is held at once."""
        with self._cond:
            self._cond.wait_for(lambda: stop.is_set() or self._active(), seconds)
