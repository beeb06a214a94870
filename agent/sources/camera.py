"""Camera capture with OpenCV on its own thread: grab, stamp, gate, convert BGR→RGB, post.

A live device or stream is grabbed continuously (every frame it produces) and decoded to pixels only
when a frame is due at the configured rate, so the driver/stream buffer never holds stale frames and a
kept frame is at most one device frame old. A video file has no "latest" frame, so it is read at the
configured rate instead, looping or ending at its end.

Losing the camera is not fatal: the thread counts it, reports "reconnecting" and reopens with a short
capped backoff (0.1 s → 1 s), so it resumes within about a second of the camera coming back. Network
open/read are bounded by FFmpeg timeouts so neither a dead server nor stop() waits on OpenCV's 30 s default.

Paused, the device is released (a webcam's LED goes off, a stream's connection closes) and reopened on
resume; a file resumes at the frame it was paused on.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from agent.pipeline.gate import ChangeGate
from encoders.records import Frame

from .base import CaptureThread

log = logging.getLogger(__name__)

TIMEOUT_MS = 1000  # FFmpeg open/read timeout: a hung stream is noticed within a second
BACKOFF_START, BACKOFF_CAP = 0.1, 1.0
MAX_ODD = 10  # consecutive undecodable frames before the device is treated as lost


class CameraSource(CaptureThread):
    modality = "image"

    def __init__(
        self,
        name: str,
        device: str | int,
        fps: float,
        gate: ChangeGate,
        post: Callable[[Frame], None],
        width: int = 0,
        height: int = 0,
        loop: bool = True,
    ) -> None:
        super().__init__()
        self.name = name
        self.device: str | int = int(device) if isinstance(device, str) and device.isdigit() else device
        self.period = 1.0 / fps
        self.gate = gate
        self._post = post
        self.width, self.height = width, height
        self.loop = loop
        self.is_url = isinstance(self.device, str) and "://" in self.device
        self.is_file = isinstance(self.device, str) and not self.is_url and Path(self.device).is_file()
        self._resume_at = 0  # file: frame index to seek to after a pause
        self.size: tuple[int, int] | None = None  # (w, h) of the last opened stream
        self.state = "stopped"
        self.grabbed = 0
        self.captured = 0
        self.errors = 0
        self.reconnects = 0
        self.last_error = ""
        self.reopened_ns: deque[int] = deque(maxlen=100)  # monotonic ns of each resume after a loss

    @property
    def label(self) -> str:
        return f"/dev/video{self.device}" if isinstance(self.device, int) else self.device

    def _open(self) -> cv2.VideoCapture:
        """Open with bounded network timeouts; the caller checks isOpened()."""
        if self.is_url or self.is_file:
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, TIMEOUT_MS]
            cap = cv2.VideoCapture(self.device, cv2.CAP_FFMPEG, params)
        else:  # local device: FFmpeg-only params would make other backends refuse the open
            cap = cv2.VideoCapture(self.device)
        if cap.isOpened():
            if self.width and self.height:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # not every backend honours it; the grab loop drains anyway
            self.size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        return cap

    def probe(self) -> str | None:
        cap = self._open()
        try:
            if not cap.isOpened():
                return f"cannot open {self.label}"
            ok, frame = cap.read()
            if not ok or frame is None or frame.size == 0:
                return f"no frames from {self.label}"
            self.size = (frame.shape[1], frame.shape[0])
            return None
        finally:
            cap.release()

    def describe(self) -> str:
        w, h = self.size or (self.width, self.height)
        res = f"{w}x{h}" if w and h else "default size"
        kind = " (file, looping)" if self.is_file and self.loop else " (file)" if self.is_file else ""
        return f"{self.label} {res} at {1 / self.period:g} fps{kind}"

    def stop(self) -> None:
        """Prompt even mid-reconnect: an open/read blocks at most TIMEOUT_MS, and we wait no longer."""
        self._signal_stop()
        if self._thread:
            self._thread.join(timeout=TIMEOUT_MS / 1000 + 0.2)
            if self._thread.is_alive():
                log.warning("camera %s: capture thread still busy in OpenCV; it exits on its own", self.name)
        if self.state != "ended":
            self._set_state("stopped")

    def _hold(self) -> None:
        """Device already released: wait out the pause; the caller reopens."""
        self._set_state("paused")
        self._pause.hold(self._stop)
        self._set_state("resuming")

    def _set_state(self, state: str, why: str = "") -> None:
        """One log line per change, so a camera that stays unplugged does not flood the log."""
        if state == self.state or (self._stop.is_set() and state not in ("stopped", "ended")):
            return
        self.state = state
        level = logging.WARNING if state == "reconnecting" else logging.INFO
        log.log(level, "camera %s (%s): %s%s", self.name, self.label, state, f" ({why})" if why else "")

    def _fail(self, why: str) -> None:
        self.errors += 1
        self.last_error = why

    def _run(self) -> None:
        backoff = BACKOFF_START
        while not self._stop.is_set():
            if self._pause.active:
                self._hold()
                backoff = BACKOFF_START
                continue
            result = self._session()
            if result == "ended":
                self._set_state("ended")
                return
            if result == "stopped":
                continue  # stop() or pause(): the loop head handles both
            if self.state == "running":  # it delivered frames before it was lost: retry fast
                backoff = BACKOFF_START
            self._set_state("reconnecting", self.last_error)
            self._pause.sleep(backoff, self._stop)
            backoff = min(backoff * 2, BACKOFF_CAP)
        self._set_state("stopped")

    def _session(self) -> str:
        """Open, read until lost/ended/stopped, release. Returns "ended", "lost" or "stopped"."""
        cap = self._open()
        try:
            if not cap.isOpened():
                self._fail(f"cannot open {self.label}")
                return "lost"
            return self._read_file(cap) if self.is_file else self._read_live(cap)
        finally:
            cap.release()

    def _capturing(self) -> bool:
        return not self._stop.is_set() and not self._pause.active

    def _running(self) -> None:
        """First good frame after an open: count a resume if we were reconnecting."""
        if self.state == "reconnecting":
            self.reconnects += 1
            self.reopened_ns.append(time.monotonic_ns())
        self._set_state("running", f"{self.size[0]}x{self.size[1]}" if self.size else "")

    def _use(self, cap: cv2.VideoCapture, mono_ns: int, ts_ns: int) -> bool:
        """Decode, gate, convert and post the grabbed frame; False for an odd (empty) frame."""
        ok, bgr = cap.retrieve()
        if not ok or bgr is None or bgr.size == 0 or bgr.ndim != 3:
            self._fail("empty frame")
            return False
        self.captured += 1
        if self.gate.keep(bgr, mono_ns):
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            self._post(Frame(self.name, self.modality, np.ascontiguousarray(rgb), ts_ns, mono_ns))
        return True

    def _read_live(self, cap: cv2.VideoCapture) -> str:
        """Grab every frame the device produces; decode only those due. Returns "lost" or "stopped"."""
        due = time.monotonic()
        odd = 0
        first = True
        while self._capturing():
            if not cap.grab():
                self._fail(f"no frames from {self.label}")
                return "lost"
            mono_ns, ts_ns = time.monotonic_ns(), time.time_ns()
            self.grabbed += 1
            if first:
                self._running()
                first = False
            if mono_ns / 1e9 < due:
                continue  # drained, not decoded: keeps the buffer empty at no conversion cost
            odd = 0 if self._use(cap, mono_ns, ts_ns) else odd + 1
            if odd >= MAX_ODD:
                return "lost"
            due += self.period
            if due < time.monotonic():  # device slower than fps or a stall: do not burst to catch up
                due = time.monotonic() + self.period
        return "stopped"

    def _read_file(self, cap: cv2.VideoCapture) -> str:
        """Read at the configured rate; at the end rewind (loop) or end. Returns "ended", "lost" or "stopped"."""
        next_t = time.monotonic()
        since_rewind = self._seek(cap)
        odd = 0
        while self._capturing():
            if not cap.grab():
                if since_rewind == 0:  # nothing readable even from the start: broken file
                    self._fail(f"no frames from {self.label}")
                    return "lost"
                if not self.loop:
                    return "ended"
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                since_rewind = 0
                continue
            mono_ns, ts_ns = time.monotonic_ns(), time.time_ns()
            self.grabbed += 1
            if self.state != "running":
                self._running()
            since_rewind += 1
            odd = 0 if self._use(cap, mono_ns, ts_ns) else odd + 1
            if odd >= MAX_ODD:
                return "lost"
            next_t += self.period
            delay = next_t - time.monotonic()
            if delay < 0:
                next_t, delay = time.monotonic(), 0
            self._pause.sleep(delay, self._stop)
        if self._pause.active:
            self._resume_at = int(cap.get(cv2.CAP_PROP_POS_FRAMES))
        return "stopped"

    def _seek(self, cap: cv2.VideoCapture) -> int:
        """After a pause, continue the file where it stopped; returns frames already read (0 or 1)."""
        at, self._resume_at = self._resume_at, 0
        if at and cap.set(cv2.CAP_PROP_POS_FRAMES, at):
            return 1  # not at the start: a failed grab is the end of the file, not a broken file
        return 0

    def stats(self) -> dict[str, float | int | str]:
        g = self.gate
        return {
            "state": self.state,
            "grabbed": self.grabbed,
            "captured": self.captured,
            "kept": g.kept,
            "gated": g.skipped,
            "forced": g.forced,
            "errors": self.errors,
            "reconnects": self.reconnects,
            "last_error": self.last_error,
            **self._pause.stats(),
        }
