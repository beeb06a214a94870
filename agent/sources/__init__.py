"""Capture sources: one thread each, stamping, gating and posting frames to a mailbox."""

from __future__ import annotations

from typing import Protocol


class Source(Protocol):
    name: str
    modality: str
    state: str  # running | reconnecting | stopped

    def probe(self) -> str | None:
        """None when the sensor can be opened, else a one-line reason it cannot."""

    def describe(self) -> str:
        """One line for the start-up table, e.g. resolution and rate."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def stats(self) -> dict[str, float | int | str]: ...
