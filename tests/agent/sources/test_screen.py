"""ScreenSource against a real X server (Xvfb) through mss."""

import time

import numpy as np

from agent.pipeline.gate import ChangeGate
from agent.sources.screen import ScreenSource


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
