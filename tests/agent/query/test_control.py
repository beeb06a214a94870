"""Pause and resume: each real source lets go of its sensor, and the daemon's control endpoint and CLI.

A pause is a privacy control, so the tests check that nothing is captured (counters that move right
after each grab/read stay still), not just that nothing is stored.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import skimage.data

from agent import config
from agent.cli.args import parse_duration
from agent.pipeline.gate import ChangeGate
from agent.query.service import BadRequest, _pause_seconds
from agent.sources.camera import CameraSource
from agent.sources.microphone import MicrophoneSource
from agent.sources.screen import ScreenSource
from demo.standins import MjpegServer
from encoders.records import Frame
from sinks.client import Rejected, request
from tests.support.daemon import start_daemon, status, stop_daemon
from tests.support.env import sensorium

STILL_S = 1.0  # how long a paused source is watched for captures


def wait_for(cond: Callable[[], bool], timeout: float) -> float:
    """Seconds until `cond()` holds; fails after `timeout`."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"not within {timeout}s")
        time.sleep(0.01)
    return time.monotonic() - t0


def streams(cam: MjpegServer) -> int:
    """Clients the MJPEG server is streaming to; it notices a closed client at its next write."""
    return len(cam._clients)


def test_pause_durations_are_validated():
    assert [parse_duration(t) for t in ("30s", "15m", "2h", "1d", "90", "0.5s")] == [30, 900, 7200, 86400, 90, 0.5]
    for text in ("0s", "-1m", "soon", "15x", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_duration(text)
    assert _pause_seconds({}) is None and _pause_seconds({"for": None}) is None and _pause_seconds({"for": 2}) == 2.0
    for bad in (0, -1, True, "2s", float("inf"), float("nan"), 1e12):
        with pytest.raises(BadRequest, match="positive number of seconds"):
            _pause_seconds({"for": bad})


def test_screen_pause_grabs_nothing_and_resume_is_prompt(xvfb):
    src = ScreenSource("screen0", 1, 20.0, ChangeGate(2.0, 60.0), lambda f: None)
    src.start()
    try:
        wait_for(lambda: src.captured >= 3, 5)
        src.pause()
        before = src.captured
        time.sleep(STILL_S)
        assert src.captured == before and src.stats()["state"] == "paused", src.stats()
        src.resume()
        back = wait_for(lambda: src.captured > before, 1.0)
        src.pause(0.5)  # a timed pause ends by itself
        assert src.stats()["state"] == "paused" and src.stats()["paused_until"] > time.time(), src.stats()
        timed = wait_for(lambda: src.state == "running", 1.5)
    finally:
        src.stop()
    print(f"screen: first grab {back * 1000:.0f} ms after resume; timed pause over after {timed:.2f}s")
    assert 0.3 <= timed, timed


def test_camera_pause_closes_the_stream_and_resume_reopens_it():
    frames: list[Frame] = []
    with MjpegServer([skimage.data.coffee()], fps=20) as cam:
        src = CameraSource("cam0", cam.url, 10.0, ChangeGate(2.0, 60.0), frames.append)
        src.start()
        try:
            wait_for(lambda: src.state == "running" and streams(cam) == 1, 5)
            src.pause()
            grabbed = src.grabbed
            closed = wait_for(lambda: streams(cam) == 0, 2)  # the server sees its client go: LED off
            time.sleep(STILL_S)
            assert src.grabbed == grabbed and src.state == "paused", src.stats()
            t0 = time.monotonic()
            src.resume()
            wait_for(lambda: src.state == "running" and src.grabbed > grabbed, 3)
            back = time.monotonic() - t0
            assert streams(cam) == 1 and src.stats()["reconnects"] == 0, src.stats()  # a resume is no reconnect
        finally:
            src.stop()
    print(f"camera: server saw the client go {closed * 1000:.0f} ms after pause; running {back:.2f}s after resume")


def test_camera_file_resumes_where_it_paused(tmp_path: Path):
    path = tmp_path / "count.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for i in range(20):
        writer.write(np.full((48, 64, 3), i * 12, np.uint8))
    writer.release()
    src = CameraSource("cam0", str(path), 20.0, ChangeGate(2.0, 60.0), lambda f: None, loop=False)
    src.start()
    try:
        wait_for(lambda: src.captured >= 5, 5)
        src.pause()
        at = src.captured
        src.resume()
        wait_for(lambda: src.state == "ended", 5)
    finally:
        src.stop()
    assert 5 <= at < 20 and src.captured == 20, (at, src.stats())  # neither replayed nor skipped


def recording(pulse) -> int:
    """Streams recording from the PulseAudio server, as the server itself lists them."""
    return len(pulse.pactl("list", "short", "source-outputs").stdout.splitlines())


def test_microphone_pause_closes_the_stream_and_a_timed_pause_ends(pulse):
    src = MicrophoneSource("mic0", None, 16000, 15360, 0.48, -50.0, lambda f: None)
    src.start()
    try:
        wait_for(lambda: src.state == "running" and recording(pulse) == 1, 10)
        src.pause()
        closed = wait_for(lambda: recording(pulse) == 0, 2)  # the sound server sees the stream go
        samples = src.samples_in
        time.sleep(STILL_S)
        assert src.samples_in == samples and src.state == "paused", src.stats()
        src.resume()  # once: a lost resume must fail here, not be retried
        back = wait_for(lambda: src.samples_in > samples, 10)
        assert src.state == "running" and recording(pulse) == 1, src.stats()
        assert src.stats()["reconnects"] == 0 and src.stats()["errors"] == 0, src.stats()
        src.pause(0.5)  # a timed pause ends by itself
        at = src.samples_in
        assert src.stats()["state"] == "paused" and src.stats()["paused_until"] > time.time(), src.stats()
        timed = wait_for(lambda: src.samples_in > at, 10)
        assert src.state == "running" and src.stats()["errors"] == 0, src.stats()
    finally:
        src.stop()
    print(
        f"microphone: stream closed {closed * 1000:.0f} ms after pause; samples {back:.2f}s after resume, "
        f"{timed:.2f}s after a timed pause of 0.5s"
    )
    assert 0.3 <= timed, timed


def counters(st: dict) -> dict[str, int]:
    """The counters that move on every capture: screen grabs, camera grabs, microphone samples."""
    s = st["sources"]
    return {"screen0": s["screen0"]["captured"], "cam0": s["cam0"]["grabbed"], "mic0": s["mic0"]["samples_in"]}


def states(cfg: config.Config) -> dict[str, str]:
    return {n: s["state"] for n, s in status(cfg)["sources"].items()}


def test_daemon_pause_resume_and_timed_pause_through_the_cli(xvfb, pulse, home, tmp_path):
    xvfb.show(skimage.data.chelsea())
    with MjpegServer([skimage.data.coffee()], fps=10) as cam:
        text = f"[device]\nname = 'CPU'\n[screen]\nfps = 5.0\n[camera]\ndevice = '{cam.url}'\n"
        proc, cfg = start_daemon(tmp_path, text)
        cli = ("--config", str(tmp_path / "cfg.toml"))
        try:
            wait_for(lambda: set(states(cfg).values()) == {"running"}, 15)
            time.sleep(1.5)  # some rate history
            shown = sensorium(*cli, "status").stdout
            raw = json.loads(sensorium(*cli, "status", "--json").stdout)

            out = sensorium(*cli, "pause").stdout
            paused = counters(status(cfg))
            time.sleep(2.0)
            still = status(cfg)
            shown_paused = sensorium(*cli, "status").stdout
            sensorium(*cli, "resume")
            t0 = time.monotonic()  # from the daemon's reply: the CLI's own start-up is no part of the resume
            back = {}
            while len(back) < 3 and time.monotonic() - t0 < 10:
                now = counters(status(cfg))
                back.update({n: time.monotonic() - t0 for n in now if now[n] > paused[n] and n not in back})
                time.sleep(0.02)

            timed = sensorium(*cli, "pause", "--for", "2s", "cam0").stdout
            during, during_at = status(cfg)["sources"], time.time()
            ended = wait_for(lambda: states(cfg)["cam0"] == "running", 6)

            unknown = sensorium(*cli, "pause", "nosuch", check=False)
            bad_for = sensorium(*cli, "pause", "--for", "0s", check=False)
            with pytest.raises(Rejected, match="for must be a positive number"):
                request(config.query_endpoint(cfg), {"op": "pause", "for": "soon"})
            final = states(cfg)
        finally:
            stop_daemon(proc, tmp_path)
    print(f"resume reply → first capture (s): {back}; timed 2s pause of cam0 over after {ended:.2f}s")

    assert "screen0" in shown and "p50 ms" in shown and "spool 0 rows" in shown, shown
    assert f"metrics {raw['metrics']}" in shown, shown  # where to scrape, as the daemon bound it
    assert raw["sources"]["screen0"]["fps"]["in"] > 0 and "queue" in raw["sources"]["cam0"], raw["sources"]
    assert out.startswith("paused screen0, cam0, mic0 until resumed"), out
    assert counters(still) == paused, (paused, counters(still))  # nothing captured while paused
    assert {s["state"] for s in still["sources"].values()} == {"paused"}, still["sources"]
    assert shown_paused.count("paused") == 3, shown_paused
    assert set(back) == {"screen0", "cam0", "mic0"} and back["screen0"] < 1.0, back

    assert timed.startswith("paused cam0 for 2s, until "), timed
    assert during["cam0"]["state"] == "paused" and during_at < during["cam0"]["paused_until"] <= during_at + 2, during
    assert during["screen0"]["state"] == "running" and during["mic0"]["state"] == "running", during
    assert 1.0 <= ended <= 4.0, ended
    assert unknown.returncode == 2 and "unknown source 'nosuch'; known: screen0, cam0, mic0" in unknown.stderr
    assert bad_for.returncode == 2 and "positive duration" in bad_for.stderr, bad_for.stderr
    assert set(final.values()) == {"running"}, final
