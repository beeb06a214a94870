"""CameraSource against real OpenCV: a video file written here, and a real MJPEG server on 127.0.0.1."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage import data

from agent.pipeline.gate import ChangeGate
from agent.sources.camera import CameraSource
from demo.standins import MjpegServer
from encoders.records import Frame

SIZE = (320, 240)
NAMES = ("chelsea", "coffee", "rocket")
PER_PHOTO = 6


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    return {n: cv2.resize(getattr(data, n)(), SIZE, interpolation=cv2.INTER_AREA) for n in NAMES}


@pytest.fixture(scope="module")
def video(photos: dict[str, np.ndarray], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """18 frames: each photo for PER_PHOTO frames, MJPG in AVI (the fourcc this OpenCV build writes and reads)."""
    path = tmp_path_factory.mktemp("video") / "photos.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, SIZE)
    assert writer.isOpened()
    for name in NAMES:
        for _ in range(PER_PHOTO):
            writer.write(cv2.cvtColor(photos[name], cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def which(rgb: np.ndarray, photos: dict[str, np.ndarray]) -> str:
    """The photo a frame shows; asserts it is a close match in RGB order, not just the nearest."""
    diffs = {n: float(np.mean(np.abs(rgb.astype(np.int16) - p))) for n, p in photos.items()}
    best = min(diffs, key=lambda n: diffs[n])
    swapped = float(np.mean(np.abs(rgb[..., ::-1].astype(np.int16) - photos[best])))
    assert diffs[best] < 8 and swapped > 3 * diffs[best], (diffs, swapped)
    return best


def wait_for(cond: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_file_frames_are_rgb_gated_per_photo_and_end(video, photos):
    frames: list[Frame] = []
    src = CameraSource("cam0", str(video), 60.0, ChangeGate(2.0, 60.0), frames.append, loop=False)
    assert src.probe() is None
    assert src.describe() == f"{video} 320x240 at 60 fps (file)"
    src.start()
    assert wait_for(lambda: src.state == "ended", 5), src.stats()
    src.stop()
    stats = src.stats()
    assert stats["state"] == "ended" and stats["errors"] == 0, stats
    assert stats["captured"] == 3 * PER_PHOTO and stats["gated"] == 3 * PER_PHOTO - 3, stats
    assert [which(f.data, photos) for f in frames] == list(NAMES)  # one memory per distinct photo, in order
    f = frames[0]
    assert f.source == "cam0" and f.modality == "image"
    assert f.data.shape == (240, 320, 3) and f.data.dtype == np.uint8
    assert abs(f.ts_ns / 1e9 - time.time()) < 5
    assert [g.mono_ns for g in frames] == sorted(g.mono_ns for g in frames)


def test_file_is_paced_and_loops(video, photos):
    frames: list[Frame] = []
    src = CameraSource("cam0", str(video), 30.0, ChangeGate(2.0, 60.0), frames.append, loop=True)
    src.start()
    time.sleep(1.5)
    assert src.state == "running"
    src.stop()
    stats = src.stats()
    assert stats["state"] == "stopped", stats
    assert 3 * PER_PHOTO < stats["captured"] <= 50, stats  # looped past the end, but paced near 30 fps
    assert [which(f.data, photos) for f in frames][:4] == [*NAMES, "chelsea"]


def test_mjpeg_stream_is_fresh_and_follows_content(photos):
    before = set(threading.enumerate())
    frames: list[Frame] = []
    with MjpegServer([photos["chelsea"]], fps=25) as server:
        src = CameraSource("cam1", server.url, 5.0, ChangeGate(2.0, 60.0), frames.append)
        assert src.probe() is None
        assert src.describe() == f"{server.url} 320x240 at 5 fps"
        src.start()
        assert wait_for(lambda: len(frames) == 1, 3), src.stats()
        assert which(frames[0].data, photos) == "chelsea"
        server.set_frames([photos["coffee"]])
        switched = time.monotonic_ns()
        assert wait_for(lambda: len(frames) >= 2, 3), src.stats()
        assert which(frames[1].data, photos) == "coffee"  # the very next kept frame is the new picture
        time.sleep(0.6)
        src.stop()
    lag = (frames[1].mono_ns - switched) / 1e9
    assert lag < 1.0, lag  # one source period plus a server period, not seconds of queued frames
    stats = src.stats()
    assert stats["grabbed"] > 2 * stats["captured"], stats  # every stream frame drained, few decoded
    assert stats["errors"] == 0 and stats["state"] == "stopped", stats
    assert wait_for(lambda: set(threading.enumerate()) <= before, 2), set(threading.enumerate()) - before


def test_server_crash_reconnects_and_resumes(photos, video, caplog):
    caplog.set_level(logging.INFO, logger="agent.sources.camera")
    frames: list[Frame] = []
    other: list[Frame] = []
    server = MjpegServer([photos["chelsea"]], fps=20)
    server.start()
    src = CameraSource("cam1", server.url, 10.0, ChangeGate(2.0, 60.0), frames.append)
    bystander = CameraSource("cam2", str(video), 30.0, ChangeGate(2.0, 60.0), other.append, loop=True)
    try:
        src.start()
        bystander.start()
        assert wait_for(lambda: src.state == "running" and frames, 3), src.stats()
        server.stop()
        assert wait_for(lambda: src.state == "reconnecting", 3), src.stats()
        others_before = bystander.captured
        time.sleep(2.6)  # long enough for the backoff to reach its 1 s cap: the slow case
        assert src.stats()["errors"] >= 3, src.stats()
        assert "cannot open" in src.last_error
        assert bystander.captured > others_before + 30 and bystander.state == "running"  # unaffected

        server.set_frames([photos["coffee"]])
        server.start()  # same port
        restarted = time.monotonic_ns()
        assert wait_for(lambda: frames[-1].mono_ns > restarted, 5), src.stats()
        new = next(f for f in frames if f.mono_ns > restarted)
        resume_s = (new.mono_ns - restarted) / 1e9
        print(f"camera resume time after server restart: {resume_s:.3f} s")
        assert resume_s < 5.0
        assert which(new.data, photos) == "coffee"
        assert src.state == "running" and src.reconnects == 1
        assert src.reopened_ns[-1] >= restarted
    finally:
        src.stop()
        bystander.stop()
        server.stop()
    changes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("camera cam1")]
    states = [m.split(": ")[-1].split(" (")[0] for m in changes]
    assert states == ["running", "reconnecting", "running", "stopped"], changes  # one line per change, no spam


def test_probe_gives_clear_reasons(tmp_path):
    gate = ChangeGate(2.0, 60.0)
    url = f"http://127.0.0.1:{free_port()}/stream"
    assert CameraSource("c", 99, 5.0, gate, lambda f: None).probe() == "cannot open /dev/video99"
    assert CameraSource("c", url, 5.0, gate, lambda f: None).probe() == f"cannot open {url}"
    missing = str(tmp_path / "missing.avi")
    assert CameraSource("c", missing, 5.0, gate, lambda f: None).probe() == f"cannot open {missing}"
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"not a video" * 100)
    reason = CameraSource("c", str(junk), 5.0, gate, lambda f: None).probe()
    assert reason in (f"cannot open {junk}", f"no frames from {junk}")


def test_stop_is_prompt_while_reconnecting():
    # A listener that never accepts: the HTTP open hangs until the FFmpeg open timeout (1 s), not 30 s.
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(8)
        url = f"http://127.0.0.1:{hole.getsockname()[1]}/stream"
        src = CameraSource("cam3", url, 5.0, ChangeGate(2.0, 60.0), lambda f: None)
        src.start()
        assert wait_for(lambda: src.state == "reconnecting", 3), src.stats()
        time.sleep(0.3)  # now inside the next blocking open
        t = time.monotonic()
        src.stop()
        took = time.monotonic() - t
    assert took < 1.5, took
    assert src.state == "stopped" and src._thread is not None and not src._thread.is_alive()
