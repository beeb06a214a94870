"""Screen capture with mss on its own thread: grab, stamp, gate, convert BGRA→RGB, post.

The gate runs on the raw BGRA grab so a skipped frame costs neither colour conversion nor inference.
Exclusions (exclude.py) are planned before the grab and blacked out in the raw grab, before the gate,
so an excluded pixel reaches no mailbox, model, bus message or thumbnail; in skip mode nothing is grabbed.
Capture errors (display gone) are counted and retried with backoff; the thread never dies on them.
Paused, the thread closes its display connection and grabs nothing until resumed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import cv2
import mss
import numpy as np

from agent.pipeline.gate import ChangeGate
from encoders.records import Frame

from .base import CaptureThread
from .exclude import Exclusions, black_out

log = logging.getLogger(__name__)


class ScreenSource(CaptureThread):
    modality = "image"

    def __init__(
        self,
        name: str,
        monitor: int,
        fps: float,
        gate: ChangeGate,
        post: Callable[[Frame], None],
        exclude: Exclusions | None = None,
    ) -> None:
        super().__init__()
        self.exclude = exclude
        self.name = name
        self.monitor = monitor
        self.period = 1.0 / fps
        self.gate = gate
        self._post = post
        self.state = "stopped"  # running | reconnecting | paused | resuming | stopped
        self.captured = 0
        self.errors = 0
        self.last_error = ""
        self.excluded = 0  # frames not grabbed because an excluded window was visible (skip mode)
        self.masked = 0  # frames grabbed with some rectangle blacked out
        self._failing = False  # in an outage: its retries are logged at debug only

    def probe(self) -> str | None:
        try:
            with mss.MSS() as sct:
                monitors = sct.monitors
        except Exception as e:  # mss raises ScreenShotError or OS errors when there is no display
            return f"no display: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
        if self.monitor >= len(monitors):
            return f"monitor {self.monitor} not found ({len(monitors) - 1} monitor(s))"
        m = monitors[self.monitor]
        if m["width"] <= 0:
            return "monitor has zero size"
        return self.exclude.probe() if self.exclude else None

    def describe(self) -> str:
        with mss.MSS() as sct:
            m = sct.monitors[self.monitor]
        line = f"monitor {self.monitor}: {m['width']}x{m['height']} at {1 / self.period:g} fps"
        if self.exclude:
            ex = self.exclude
            line += f"; excluding {len(ex.rects)} rect(s), {len(ex.patterns)} window pattern(s) ({ex.mode})"
        return line

    def stop(self) -> None:
        self._signal_stop()
        if self._thread:
            self._thread.join(timeout=2)
        self.state = "stopped"

    def _hold(self) -> None:
        """Display connection already closed: wait out the pause."""
        if self.exclude:
            self.exclude.close()  # the window-list connection too; reopened on the first frame after
        self.state = "paused"
        log.info("screen %s: paused", self.name)
        self._pause.hold(self._stop)
        if not self._stop.is_set():
            self.state = "resuming"
            log.info("screen %s: resuming", self.name)

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            if self._pause.active:
                self._hold()
                continue
            try:
                with mss.MSS() as sct:
                    region = sct.monitors[self.monitor]
                    backoff = 0.5
                    self.state = "running"
                    self._loop(sct, region)
            except Exception as e:  # display lost: count, log once per failure, retry
                if self.exclude:
                    self.exclude.close()
                self.errors += 1
                self.last_error = str(e).splitlines()[0] if str(e) else type(e).__name__
                self.state = "reconnecting"
                # the first failure is a warning; the retries of one outage are debug, so a dead display is one line
                level = logging.DEBUG if self._failing else logging.WARNING
                self._failing = True
                log.log(level, "screen %s capture failed (%s); retrying", self.name, self.last_error)
                self._pause.sleep(backoff, self._stop)
                backoff = min(backoff * 2, 10.0)

    def _loop(self, sct: mss.MSS, region: dict) -> None:
        next_t = time.monotonic()
        box = (region["left"], region["top"], region["width"], region["height"])
        while not self._stop.is_set() and not self._pause.active:
            plan = self.exclude.plan(*box) if self.exclude else None  # raises if windows cannot be read
            if plan is not None and plan.skip:
                self.excluded += 1
            else:
                self._grab(sct, region, plan.rects if plan else [])
            if self._failing:
                self._failing = False
                log.info("screen %s: capturing again after %d error(s)", self.name, self.errors)
            next_t += self.period
            delay = next_t - time.monotonic()
            if delay < 0:  # fell behind (slow grab): do not try to catch up with a burst
                next_t, delay = time.monotonic(), 0
            self._pause.sleep(delay, self._stop)  # a pause takes effect now, not after the period

    def _grab(self, sct: mss.MSS, region: dict, rects: list) -> None:
        shot = sct.grab(region)
        mono_ns, ts_ns = time.monotonic_ns(), time.time_ns()
        self.captured += 1
        bgra = np.frombuffer(shot.raw, dtype=np.uint8).reshape(shot.height, shot.width, 4)  # raw: bytearray
        if rects:
            black_out(bgra, rects)
            self.masked += 1
        if self.gate.keep(bgra, mono_ns):
            rgb = cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGB)
            self._post(Frame(self.name, self.modality, rgb, ts_ns, mono_ns))

    def stats(self) -> dict[str, float | int | str]:
        g = self.gate
        return {
            "state": self.state,
            "captured": self.captured,
            "kept": g.kept,
            "gated": g.skipped,
            "forced": g.forced,
            "errors": self.errors,
            "last_error": self.last_error,
            "excluded": self.excluded,
            "masked": self.masked,
            **self._pause.stats(),
        }
