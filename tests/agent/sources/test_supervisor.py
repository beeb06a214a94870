"""The supervisor every source runs on: reconnect with backoff, one warning per outage, pause, pacing.

The real sources are tested against real sensors (test_screen, test_camera, test_microphone); here a small
source whose device fails on cue shows the shared rules without waiting on a display or sound server.
"""

from __future__ import annotations

import logging
import threading
import time

import pytest

from agent.sources.pacing import Backoff, Pacer
from agent.sources.supervisor import Lost, State, Supervisor


class Flaky(Supervisor):
    """A device that is gone for its first `failures` opens, then delivers until the session is cut."""

    modality = "image"
    kind = "flaky"
    backoff = (0.02, 0.08)

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.name = "f0"
        self.failures = failures
        self.opens = 0
        self.open_now = threading.Event()  # set while a session holds the device

    def _session(self) -> bool:
        self.opens += 1
        if self.opens <= self.failures:
            raise Lost("device gone")
        self.open_now.set()
        try:
            while self._capturing():
                self._running("ok")
                self._sleep(0.01)
        finally:
            self.open_now.clear()
        return False

    def _counters(self) -> dict[str, int]:
        return {"opens": self.opens}


def wait_for(cond, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"not within {timeout}s"
        time.sleep(0.005)


def test_an_outage_is_one_warning_and_one_line_when_it_ends(caplog):
    caplog.set_level(logging.DEBUG, logger=__name__)
    src = Flaky(failures=4)
    src.start()
    try:
        wait_for(lambda: src.state == State.RUNNING, 3)
        stats = src.stats()
    finally:
        src.stop()
    assert stats["state"] == "running" and stats["errors"] == 4 and stats["last_error"] == "device gone", stats
    assert stats["opens"] == 5, stats
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == __name__]
    assert lines == [
        ("WARNING", "flaky f0: reconnecting (device gone)"),
        *[("DEBUG", "flaky f0: still failing (device gone)")] * 3,
        ("INFO", "flaky f0: running (ok)"),
        ("INFO", "flaky f0: stopped"),
    ]


def test_pause_returns_with_the_device_released_and_resume_reopens():
    src = Flaky(failures=0)
    src.start()
    try:
        wait_for(lambda: src.state == "running", 3)
        src.pause()
        assert not src.open_now.is_set() and src.state == "paused", src.stats()
        opens = src.opens
        time.sleep(0.2)
        assert src.opens == opens and src.stats()["errors"] == 0  # a pause is no outage
        src.resume()
        wait_for(lambda: src.state == "running" and src.open_now.is_set(), 3)
        src.pause(0.1)  # a timed pause ends by itself
        assert src.stats()["paused_until"] > time.time()
        wait_for(lambda: src.state == "running", 3)
    finally:
        src.stop()
    assert src.state == "stopped" and "paused_until" not in src.stats()


def test_backoff_doubles_to_its_cap_and_resets():
    b = Backoff(0.1, 1.0)
    assert [b.next() for _ in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    b.reset()
    assert b.next() == 0.1


def test_pacer_keeps_the_rate_and_does_not_burst_after_a_stall():
    pacer = Pacer(0.05)
    assert pacer.ready()
    assert 0.03 < pacer.next() <= 0.05 and not pacer.ready()
    time.sleep(0.3)  # a stall of six periods
    assert pacer.next() == 0  # the late frame is taken at once ...
    assert 0.03 < pacer.next() <= 0.05  # ... and the next one is a period later, not right behind it
