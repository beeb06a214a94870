"""Where vectors go: the ZMQ publisher, the Chroma memory, and the client other processes import."""

from __future__ import annotations

from typing import Protocol

from encoders.records import Encoded


class Sink(Protocol):
    def put(self, item: Encoded) -> None:
        """Hand over one result; must never block (called from inference callbacks)."""

    def close(self) -> None:
        """Flush what is pending and release resources."""

    def stats(self) -> dict[str, int]: ...
