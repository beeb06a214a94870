"""One dispatcher thread per model: takes ready frames fairly across sources, starts async inference.

It is the only thread that may block on the device (when every infer request is busy), which is
exactly the backpressure we want: the mailboxes then keep only the latest frame per source.

A frame the encoder cannot use (empty, wrong dtype or channels, NaN audio) is rejected by the encoder's
input check before any inference starts; it is counted per source and skipped. Any other failure to
submit is counted as an error: neither may end the thread. Each source's first rejection and first error
is a warning, the rest debug, so a source that keeps sending bad frames does not flood the log.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from typing import Protocol

from agent.pipeline.mailbox import Mailboxes
from encoders.records import Frame

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
        self.rejected_by: dict[str, int] = defaultdict(int)  # bad frames per source
        self.errors_by: dict[str, int] = defaultdict(int)  # other submit failures per source

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by.values())

    @property
    def errors(self) -> int:
        return sum(self.errors_by.values())

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while True:
            frame = self.mailboxes.take(timeout=0.05)
            if frame is None:
                if self._stop.is_set():  # stop only once the mailboxes are empty: drain, don't drop
                    return
                continue
            self.dispatch(frame)

    def dispatch(self, frame: Frame) -> bool:
        """Submit one frame; False when it was rejected or failed (counted)."""
        try:
            self.encoder.submit(frame)
            return True
        except ValueError as e:  # the encoder's input check: nothing was started
            counts, what = self.rejected_by, "rejected"
            err: Exception = e
        except Exception as e:  # device or library failure: count it and keep serving
            counts, what = self.errors_by, "failed"
            err = e
        counts[frame.source] += 1
        level = logging.WARNING if counts[frame.source] == 1 else logging.DEBUG
        log.log(
            level, "%s frame from %s %s: %s (counted; later ones logged at debug)", self.name, frame.source, what, err
        )
        return False

    def stats(self) -> dict[str, dict[str, int]]:
        return {"rejected": dict(self.rejected_by), "errors": dict(self.errors_by)}

    def stop(self) -> None:
        """Finish what is in the mailboxes, then wait for in-flight inference."""
        self._stop.set()
        self._thread.join(timeout=2)
        self.encoder.drain()
