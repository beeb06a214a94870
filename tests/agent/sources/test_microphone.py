"""MicrophoneSource on a real PulseAudio null sink through sounddevice/PortAudio."""

from __future__ import annotations

import time

import numpy as np

from agent.sources.microphone import MicrophoneSource
from demo.standins import noise, write_wav
from encoders.records import Frame

RATE, WINDOW = 16000, 15360  # the audio model's rate and 0.96 s window
HOP = 0.48


def mic(frames: list[Frame], silence_dbfs: float = -50.0) -> MicrophoneSource:
    return MicrophoneSource("mic0", None, RATE, WINDOW, HOP, silence_dbfs, frames.append)


def wait_until(pred, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_windows_are_contiguous_resampled_and_nothing_is_dropped(pulse, tmp_path):
    frames: list[Frame] = []
    src = mic(frames)
    assert src.probe() is None
    src.start()
    assert wait_until(lambda: src.state == "running", 10)
    pulse.play(write_wav(tmp_path / "noise.wav", noise(4.0), 48000))
    src.stop()
    s = src.stats()
    assert s["kept"] >= 5, s
    assert s["samples_dropped"] == 0 and s["overflows"] == 0 and s["bad"] == 0, s
    assert all(f.data.shape == (WINDOW,) and f.data.dtype == np.float32 for f in frames)
    diffs_ms = np.diff([f.ts_ns for f in frames]) / 1e6
    assert np.all(np.abs(diffs_ms - HOP * 1000) <= 5), diffs_ms  # hop ± 5 ms, no sample lost
    assert abs(frames[0].ts_ns / 1e9 - time.time()) < 30


def test_silence_is_gated_before_inference(pulse):
    frames: list[Frame] = []
    src = mic(frames)
    src.start()
    assert wait_until(lambda: src.stats()["windows"] >= 4, 15)
    src.stop()
    s = src.stats()
    assert s["kept"] == 0 and s["gated"] == s["windows"] >= 4 and frames == []


def test_sound_server_restart_is_survived(pulse, tmp_path):
    frames: list[Frame] = []
    src = mic(frames)
    src.start()
    assert wait_until(lambda: src.state == "running", 10)
    pulse.stop()
    assert wait_until(lambda: src.state == "reconnecting", 10), src.stats()
    pulse.start()
    assert wait_until(lambda: src.state == "running", 15), src.stats()
    pulse.play(write_wav(tmp_path / "noise.wav", noise(2.0), 48000))
    src.stop()
    assert src.stats()["reconnects"] >= 1 and src.stats()["kept"] >= 1, src.stats()


def test_missing_device_is_reported_by_probe(pulse):
    src = MicrophoneSource("mic0", "no-such-device", RATE, WINDOW, HOP, -50.0, lambda f: None)
    reason = src.probe()
    assert reason is not None and "no-such-device" in reason
