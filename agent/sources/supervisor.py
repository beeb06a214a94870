"""What every capture source shares: the thread that keeps its device open, and pause, stop and reconnect.

The run loop is the same for every sensor: while paused, hold with the device released; otherwise open a
session and capture until it is lost, stopped or paused, or the source ends. A lost device is counted,
logged once per outage (a warning when it starts, debug while it lasts, one line when it is back) and
reopened after a backoff that resets once the device delivered again. A source writes only what differs:
`probe`, `describe`, `_session`, its counters, and `_release` when its device must be let go of from the
control thread rather than by its capture thread.
"""

from __future__ import annotations

import logging
import threading
from enum import StrEnum

from .pacing import Backoff
from .pause import Pause


class State(StrEnum):
    """What status shows per source; str values, so they read and compare as the plain strings they were."""

    STOPPED = "stopped"
    RUNNING = "running"  # frames (or samples) arrive
    RECONNECTING = "reconnecting"  # lost, or never opened: retrying with a backoff
    PAUSED = "paused"  # device released, nothing captured
    RESUMING = "resuming"  # pause over, reopening
    ENDED = "ended"  # a video file that does not loop reached its end


class Lost(RuntimeError):
    """The device is gone or gives nothing; the message is the source's `last_error`."""


class Supervisor:
    name: str
    modality: str
    kind = "source"  # the log's word for it: screen, camera, microphone
    backoff = (0.5, 10.0)  # first and longest wait before reopening a lost device, seconds
    join_s = 2.0  # how long stop() waits for the capture thread

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._pause = Pause()
        self._thread: threading.Thread | None = None
        self._log = logging.getLogger(type(self).__module__)
        self.state = State.STOPPED
        self.errors = 0
        self.last_error = ""

    # -- what a source writes ----------------------------------------------------------------------
    def _session(self) -> bool:
        """Open the device and capture while `_capturing()`, releasing it on the way out. Raise when the
        device is lost; return True when the source has nothing more to give (it ends), else False."""
        raise NotImplementedError

    def _release(self) -> None:
        """Control thread, on pause or stop: let go of the device now (default: the capture thread does)."""

    def _recovered(self) -> None:
        """The device delivers again after an outage."""

    def _counters(self) -> dict[str, float | int]:
        """This source's own counters, for stats()."""
        return {}

    @property
    def _who(self) -> str:
        return f"{self.kind} {self.name}"

    # -- control thread ----------------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()  # a stopped source can be started again
        self._thread = threading.Thread(target=self._run, name=f"src-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Prompt even mid-reconnect: a blocked open or read is waited for at most `join_s`."""
        self._stop.set()
        self._pause.wake()  # a thread held by a pause or sleeping in a backoff sees it now
        self._release()
        if self._thread:
            self._thread.join(timeout=self.join_s)
            if self._thread.is_alive():
                self._log.warning("%s: capture thread still busy in its device; it exits on its own", self._who)
        if self.state is not State.ENDED:
            self._set_state(State.STOPPED)

    def pause(self, seconds: float | None = None) -> None:
        """Returns once the capture thread has released its device (or is not running)."""
        self._pause.set(seconds)
        self._release()
        if self._thread and self._thread.is_alive():
            self._pause.wait_held()

    def resume(self) -> None:
        self._pause.clear()

    def stats(self) -> dict[str, float | int | str]:
        return {
            "state": str(self.state),
            **self._counters(),
            "errors": self.errors,
            "last_error": self.last_error,
            **self._pause.stats(),
        }

    # -- capture thread ----------------------------------------------------------------------------
    def _run(self) -> None:
        backoff = Backoff(*self.backoff)
        while not self._stop.is_set():
            if self._pause.active:
                self._hold()
                backoff.reset()
                continue
            try:
                if self._session():
                    self._set_state(State.ENDED)
                    return
            except Exception as e:  # the device is lost: count, retry; the thread never dies of it
                if not self._capturing():
                    continue  # stop() or pause() cut the session short: the loop head handles both
                if self.state is State.RUNNING:
                    backoff.reset()  # it delivered before it was lost: retry fast
                self._lost(first_line(e))
                self._sleep(backoff.next())
        self._set_state(State.STOPPED)

    def _hold(self) -> None:
        """Device already released: wait out the pause; the loop reopens it."""
        self._set_state(State.PAUSED)
        self._pause.hold(self._stop)
        self._set_state(State.RESUMING)

    def _capturing(self) -> bool:
        return not self._stop.is_set() and not self._pause.active

    def _sleep(self, seconds: float) -> None:
        """A pacing or backoff wait that ends early on stop or pause, so a pause is obeyed at once."""
        self._pause.sleep(seconds, self._stop)

    def _error(self, why: str) -> None:
        self.errors += 1
        self.last_error = why

    def _lost(self, why: str) -> None:
        """Count a lost session; the outage's first loss is the warning, its retries are debug."""
        self._error(why)
        if self.state is State.RECONNECTING:
            self._log.debug("%s: still failing (%s)", self._who, why)
        else:
            self._set_state(State.RECONNECTING, why)

    def _running(self, detail: str = "") -> None:
        """A session delivers; call on every frame (cheap once running)."""
        if self.state is not State.RUNNING:
            if self.state is State.RECONNECTING:
                self._recovered()
            self._set_state(State.RUNNING, detail)

    def _set_state(self, state: State, why: str = "") -> None:
        """One log line per change, so a device that stays away does not flood the log."""
        if state is self.state or (self._stop.is_set() and state not in (State.STOPPED, State.ENDED)):
            return
        self.state = state
        level = logging.WARNING if state is State.RECONNECTING else logging.INFO
        self._log.log(level, "%s: %s%s", self._who, state, f" ({why})" if why else "")


def first_line(e: BaseException) -> str:
    """An error as one line for status and logs; its type when it says nothing."""
    return (str(e).strip().splitlines() or [type(e).__name__])[0]
