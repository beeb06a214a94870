"""Screen capture with mss on its own thread: grab, stamp, gate, convert BGRA→RGB, post.

The gate runs on the raw BGRA grab so a skipped frame costs neither colour conversion nor inference.
Exclusions (exclude.py) are planned before the grab and blacked out in the raw grab, before the gate,
so an excluded pixel reaches no mailbox, model, bus message or thumbnail; in skip mode nothing is grabbed.
Losing the display is not fatal (supervisor.py): it is counted and retried with a backoff of 0.5 s → 10 s.
Paused, the thread closes its display connections (grabber and window list) and grabs nothing until resumed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import cv2
import mss
import numpy as np

from agent.pipeline.gate import ChangeGate
from encoders.records import Frame

from .exclude import Exclusions, black_out
from .pacing import Pacer
from .supervisor import Supervisor, first_line


class ScreenSource(Supervisor):
    modality = "image"
    kind = "screen"
    backoff = (0.5, 10.0)

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
        self.captured = 0
        self.excluded = 0  # frames not grabbed because an excluded window was visible (skip mode)
        self.masked = 0  # frames grabbed with some rectangle blacked out

    def probe(self) -> str | None:
        try:
            with mss.MSS() as sct:
                monitors = sct.monitors
        except Exception as e:  # mss raises ScreenShotError or OS errors when there is no display
            return f"no display: {first_line(e)}"
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

    def _session(self) -> bool:
        try:
            with mss.MSS() as sct:
                region = sct.monitors[self.monitor]
                box = (region["left"], region["top"], region["width"], region["height"])
                pacer = Pacer(self.period)
                while self._capturing():
                    plan = self.exclude.plan(*box) if self.exclude else None  # raises if windows cannot be read
                    if plan is not None and plan.skip:
                        self.excluded += 1
                    else:
                        self._grab(sct, region, plan.rects if plan else [])
                    self._running()
                    self._sleep(pacer.next())  # a pause takes effect now, not after the period
        finally:
            if self.exclude:
                self.exclude.close()  # the window-list connection too; reopened on the first frame after
        return False

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

    def _counters(self) -> dict[str, int]:
        g = self.gate
        counts = {"captured": self.captured, "kept": g.kept, "gated": g.skipped, "forced": g.forced}
        return {**counts, "excluded": self.excluded, "masked": self.masked}
