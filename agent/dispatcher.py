"""One dispatcher thread per model: takes ready frames fairly across sources, starts async inference.

It is the only thread that may block on the device (when every infer request is busy), which is
exactly the backpressure we want: the mailboxes then keep only the latest frame per source.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from encoders.records import Frame

from .mailbox import Mailboxes

log = logging.getLogger(__name__)


class Encoder(Protocol):
    modality: str
    device: str
    stats: dict[str, int]

    def submit(self, frame: Frame) -> None:
        """Start inference; results arrive through the encoder's callback. Raises ValueError on a bad frame."""

    def drain(self) -> None:
        """Block until every started inference has finished and been handed off."""

    def latencies(self) -> list[float]:
        """Recent inference times in ms."""


class Dispatcher:
    def __init__(self, mailboxes: Mailboxes, encoder: Encoder, name: str) -> None:
        self.mailboxes = mailboxes
        self.encoder = encoder
        self.name = name
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"dispatch-{name}", daemon=True)
        self.rejected = 0

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while True:
            frame = self.mailboxes.take(timeout=0.05)
            if frame is None:
                if self._stop.is_set():  # stop only once the mailboxes are empty: drain, don't drop
                    return
                continue
            try:
                self.encoder.submit(frame)
            except ValueError as e:  # bad frame: counted by the encoder, logged at debug, skipped
                self.rejected += 1
                log.debug("frame %s rejected: %s", frame.id, e)

    def stop(self) -> None:
        """Finish what is in the mailboxes, then wait for in-flight inference."""
        self._stop.set()
        self._thread.join(timeout=2)
        self.encoder.drain()
