"""`sys.status` on the bus every second: the same counters as `sensorium status`, for subscribers.

A subscriber learns the daemon is alive, and sees drops and errors as they happen, without a request;
the heartbeat's own `seq` gaps show lost heartbeats like any other topic.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from agent.status import Status

log = logging.getLogger(__name__)

TOPIC = "sys.status"


class Heartbeat:
    def __init__(
        self, publish: Callable[[str, dict], None], status: Callable[[], Status], every_s: float = 1.0
    ) -> None:
        self._publish = publish
        self._status = status
        self.every_s = every_s
        self.sent = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def beat(self) -> None:
        try:
            self._publish(TOPIC, {"ts": round(time.time(), 3), "status": self._status().to_dict()})
            self.sent += 1
        except Exception as e:  # a status that cannot be read or sent must not stop the next beat
            self.errors += 1
            log.log(logging.WARNING if self.errors == 1 else logging.DEBUG, "heartbeat failed: %s", e)

    def _run(self) -> None:
        next_t = time.monotonic()
        while True:
            next_t += self.every_s
            if self._stop.wait(max(0.0, next_t - time.monotonic())):
                return
            self.beat()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
