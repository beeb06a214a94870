"""Camera capture with OpenCV on its own thread: grab, stamp, gate, convert BGR→RGB, post.

A live device or stream is grabbed continuously (every frame it produces) and decoded to pixels only
when a frame is due at the configured rate, so the driver/stream buffer never holds stale frames and a
kept frame is at most one device frame old. A video file has no "latest" frame, so it is read at the
configured rate instead, looping or ending at its end.

Losing the camera is not fatal (supervisor.py): the thread counts it, reports "reconnecting" and reopens
with a short capped backoff (0.1 s → 1 s), so it resumes within about a second of the camera coming back. Network
open/read are bounded by FFmpeg timeouts so neither a dead server nor stop() waits on OpenCV's 30 s default.

Paused, the device is released (a webcam's LED goes off, a stream's connection closes) and reopened on
resume; a file resumes at the frame it was paused on.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from agent.pipeline.gate import ChangeGate
from encoders.records import Frame

from .pacing import Pacer
from .supervisor import Lost, Supervisor

TIMEOUT_MS = 1000  # FFmpeg open/read timeout: a hung stream is noticed within a second
MAX_ODD = 10  # consecutive undecodable frames before the device is treated as lost


class CameraSource(Supervisor):
    modality = "image"
    kind = "camera"
    backoff = (0.1, 1.0)
    join_s = TIMEOUT_MS / 1000 + 0.2  # an open/read blocks at most TIMEOUT_MS, and stop() waits no longer

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
        self.grabbed = 0
        self.captured = 0
        self.reconnects = 0
        self._odd = 0  # undecodable frames in a row
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

    @property
    def _who(self) -> str:
        return f"camera {self.name} ({self.label})"

    def _recovered(self) -> None:
        self.reconnects += 1
        self.reopened_ns.append(time.monotonic_ns())

    def _session(self) -> bool:
        """Open, read until lost/ended/stopped, release; True at the end of a file that does not loop."""
        cap = self._open()
        try:
            if not cap.isOpened():
                raise Lost(f"cannot open {self.label}")
            self._odd = 0
            return self._read_file(cap) if self.is_file else self._read_live(cap)
        finally:
            cap.release()

    def _grabbed(self) -> tuple[int, int]:
        """A frame was grabbed: count it, mark the session running; its (mono_ns, ts_ns) stamps."""
        stamps = time.monotonic_ns(), time.time_ns()
        self.grabbed += 1
        self._running(f"{self.size[0]}x{self.size[1]}" if self.size else "")
        return stamps

    def _use(self, cap: cv2.VideoCapture, mono_ns: int, ts_ns: int) -> None:
        """Decode, gate, convert and post the grabbed frame; MAX_ODD odd (empty) frames in a row lose the device."""
        ok, bgr = cap.retrieve()
        if not ok or bgr is None or bgr.size == 0 or bgr.ndim != 3:
            self._odd += 1
            if self._odd >= MAX_ODD:
                raise Lost("empty frame")
            self._error("empty frame")
            return
        self._odd = 0
        self.captured += 1
        if self.gate.keep(bgr, mono_ns):
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            self._post(Frame(self.name, self.modality, np.ascontiguousarray(rgb), ts_ns, mono_ns))

    def _read_live(self, cap: cv2.VideoCapture) -> bool:
        """Grab every frame the device produces; decode only those due."""
        pacer = Pacer(self.period)
        while self._capturing():
            if not cap.grab():
                raise Lost(f"no frames from {self.label}")
            mono_ns, ts_ns = self._grabbed()
            if pacer.ready():  # the others are drained, not decoded: the buffer stays empty at no cost
                self._use(cap, mono_ns, ts_ns)
                pacer.next()
        return False

    def _read_file(self, cap: cv2.VideoCapture) -> bool:
        """Read at the configured rate; at the end rewind (loop) or end."""
        pacer = Pacer(self.period)
        since_rewind = self._seek(cap)
        while self._capturing():
            if not cap.grab():
                if since_rewind == 0:  # nothing readable even from the start: broken file
                    raise Lost(f"no frames from {self.label}")
                if not self.loop:
                    return True
                cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                since_rewind = 0
                continue
            mono_ns, ts_ns = self._grabbed()
            since_rewind += 1
            self._use(cap, mono_ns, ts_ns)
            self._sleep(pacer.next())
        if self._pause.active:
            self._resume_at = int(cap.get(cv2.CAP_PROP_POS_FRAMES))
        return False

    def _seek(self, cap: cv2.VideoCapture) -> int:
        """After a pause, continue the file where it stopped; returns frames already read (0 or 1)."""
        at, self._resume_at = self._resume_at, 0
        if at and cap.set(cv2.CAP_PROP_POS_FRAMES, at):
            return 1  # not at the start: a failed grab is the end of the file, not a broken file
        return 0

    def _counters(self) -> dict[str, int]:
        g = self.gate
        counts = {"captured": self.captured, "kept": g.kept, "gated": g.skipped, "forced": g.forced}
        return {"grabbed": self.grabbed, **counts, "reconnects": self.reconnects}
