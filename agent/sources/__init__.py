"""Capture sources: one thread each, stamping, gating and posting frames to a mailbox."""

from __future__ import annotations

from typing import Protocol

from .supervisor import State


class Source(Protocol):
    """What the daemon and the control endpoint use of a source; every source here is a `Supervisor`."""

    name: str
    modality: str
    state: State  # a str: running | reconnecting | paused | resuming | stopped (camera file: ended)

    def probe(self) -> str | None:
        """None when the sensor can be opened, else a one-line reason it cannot."""

    def describe(self) -> str:
        """One line for the start-up table, e.g. resolution and rate."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def pause(self, seconds: float | None = None) -> None:
        """Release the sensor and capture nothing until resume() or for `seconds`; returns once idle."""

    def resume(self) -> None:
        """Reopen the sensor and capture again; a no-op when not paused."""

    def stats(self) -> dict[str, float | int | str]:
        """Counters and state; `paused_until` (unix s) while a timed pause runs."""
