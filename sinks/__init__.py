"""Where vectors go: the ZMQ publisher, the Chroma memory, and the client other processes import."""

from __future__ import annotations

from typing import Protocol

from encoders.records import Encoded


class Sink(Protocol):
    def put(self, item: Encoded, thumb: str | None = None) -> None:
        """Hand over one result and its thumbnail (a file already on disk, or None); must never block."""

    def close(self) -> None:
        """Flush what is pending and release resources."""

    def stats(self) -> dict[str, int]: ...
