"""What every capture source shares: one thread, a stop event and a pause switch.

Subclasses write `_run` (and `stop`, whose wait differs per device). A source that must let go of its
device from the control thread, not only from its capture thread, overrides `_engage`.
"""

from __future__ import annotations

import threading

from .pause import Pause


class CaptureThread:
    name: str

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._pause = Pause()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._stop.clear()  # a stopped source can be started again
        self._thread = threading.Thread(target=self._run, name=f"src-{self.name}", daemon=True)
        self._thread.start()

    def _signal_stop(self) -> None:
        """Stop, and wake a thread held by a pause or sleeping in a back-off."""
        self._stop.set()
        self._pause.wake()

    def _engage(self, seconds: float | None) -> None:
        self._pause.set(seconds)

    def pause(self, seconds: float | None = None) -> None:
        """Returns once the capture thread has released its device (or is not running)."""
        self._engage(seconds)
        if self._thread and self._thread.is_alive():
            self._pause.wait_held()

    def resume(self) -> None:
        self._pause.clear()
