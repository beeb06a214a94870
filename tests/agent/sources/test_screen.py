"""ScreenSource against a real X server (Xvfb) through mss."""

import os
import time

import numpy as np

from agent.pipeline.gate import ChangeGate
from agent.sources.exclude import exclusions
from agent.sources.screen import ScreenSource
from tests.support.xwin import x_clients


def solid(rgb: tuple[int, int, int]) -> np.ndarray:
    return np.tile(np.array(rgb, np.uint8), (300, 400, 1))


def test_probe_reports_missing_display(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":9999")
    src = ScreenSource("screen0", 1, 1.0, ChangeGate(2, 60), lambda f: None)
    reason = src.probe()
    assert reason is not None and "display" in reason.lower()


def test_static_screen_is_kept_once_and_frames_are_rgb(xvfb):
    xvfb.show(solid((250, 20, 10)))  # red in RGB
    frames = []
    src = ScreenSource("screen0", 1, 20.0, ChangeGate(2.0, 60.0), frames.append)
    assert src.probe() is None
    src.start()
    time.sleep(2.0)
    src.stop()
    stats = src.stats()
    assert stats["captured"] >= 10, stats
    assert len(frames) == stats["kept"] == 1, stats  # a static screen is one memory
    assert stats["gated"] == stats["captured"] - 1
    f = frames[0]
    assert f.data.shape == (768, 1024, 3) and f.data.dtype == np.uint8
    r, g, b = f.data[384, 512]
    assert r > 200 and g < 60 and b < 60, (r, g, b)  # BGRA→RGB conversion is right
    assert abs(f.ts_ns / 1e9 - time.time()) < 5


def test_change_is_captured_with_increasing_timestamps(xvfb):
    xvfb.show(solid((0, 0, 250)))
    frames = []
    src = ScreenSource("screen0", 1, 10.0, ChangeGate(2.0, 60.0), frames.append)
    src.start()
    time.sleep(0.8)
    xvfb.show(solid((0, 250, 0)))
    time.sleep(0.8)
    src.stop()
    assert len(frames) >= 2
    assert frames[0].data[384, 512, 2] > 200 and frames[-1].data[384, 512, 1] > 200
    monos = [f.mono_ns for f in frames]
    assert monos == sorted(monos)


def test_pause_closes_the_x_connections_and_resume_reopens_them(xvfb):
    """Seen from the X server: while paused, this process holds no connection to it (the grabber's, and the
    window list's when windows are excluded), so nothing can be read from the screen."""
    xvfb.show(solid((90, 90, 90)))
    ex = exclusions([], ["secret"], "mask")
    src = ScreenSource("screen0", 1, 20.0, ChangeGate(2.0, 60.0), lambda f: None, ex)
    src.start()
    try:
        wait_for(lambda: src.captured >= 2, 5)
        running = len(x_clients(xvfb.name, os.getpid()))
        src.pause()
        paused = wait_for_value(lambda: len(x_clients(xvfb.name, os.getpid())), 0, 2)
        captured = src.captured
        src.resume()
        wait_for(lambda: src.captured > captured, 2)
        back = len(x_clients(xvfb.name, os.getpid()))
    finally:
        src.stop()
    assert running == 2 and back == 2, (running, back)  # mss and the window list
    assert paused == 0


def wait_for(cond, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"not within {timeout}s"
        time.sleep(0.02)


def wait_for_value(get, want, timeout: float):
    """`get()` once it equals `want`, else its last value after `timeout` (for the assertion to show)."""
    deadline = time.monotonic() + timeout
    while (got := get()) != want and time.monotonic() < deadline:
        time.sleep(0.02)
    return got
