"""The two schedules a capture thread keeps: a backoff between reopen attempts and a fixed frame rate."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Doubling waits from `first` up to `cap`; reset once the device delivered again, so a blip retries fast."""

    first: float
    cap: float
    delay: float = field(init=False)

    def __post_init__(self) -> None:
        self.delay = self.first

    def reset(self) -> None:
        self.delay = self.first

    def next(self) -> float:
        """The wait before this attempt; the one after is twice as long (capped)."""
        delay, self.delay = self.delay, min(self.delay * 2, self.cap)
        return delay


class Pacer:
    """A fixed frame rate: each frame is due one period after the last.

    After a stall (a slow grab, a busy device) the schedule restarts from now instead of catching up, so a
    late frame is taken at once and is never followed by a burst.
    """

    def __init__(self, period: float) -> None:
        self.period = period
        self.due = time.monotonic()

    def ready(self) -> bool:
        """For a loop that drains a device continuously: is a frame due now?"""
        return time.monotonic() >= self.due

    def next(self) -> float:
        """A frame was taken: schedule the next one; returns the seconds until it is due (0 when late)."""
        self.due += self.period
        now = time.monotonic()
        if self.due < now:
            self.due = now
        return self.due - now
