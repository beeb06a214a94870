"""Faults with real components: the X display and the sound server die under a running daemon and come back;
corrupt or odd frames reach a real dispatcher and real encoders. Each test checks that nothing is lost
silently: every frame is accounted for, or the loss is counted.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from agent import config
from agent.pipeline.dispatcher import Dispatcher
from agent.pipeline.mailbox import Mailboxes
from demo.standins import Display, noise, stop_process, which, write_wav
from encoders.audio import AudioEncoder
from encoders.image import ImageEncoder
from encoders.modelstore import ModelStore
from encoders.records import Encoded, Frame
from encoders.runtime import Runtime, RuntimeConfig
from sinks.client import request
from tests.support.daemon import start_daemon, status, stop_daemon


def wait_for(cond: Callable[[], bool], timeout: float, what: str = "") -> float:
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout, f"not within {timeout}s: {what}"
        time.sleep(0.1)
    return time.monotonic() - t0


def xvfb_on(name: str) -> subprocess.Popen:
    """Xvfb again on a display name that was in use (its lock and socket are left over from a kill)."""
    proc = subprocess.Popen(
        [which("Xvfb"), name, "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    sock = Path(f"/tmp/.X11-unix/X{name.lstrip(':')}")
    wait_for(lambda: sock.exists() and proc.poll() is None, 10, "Xvfb listening again")
    return proc


def accounted(st: dict, modality: str, names: list[str]) -> tuple[int, int]:
    """(frames kept by the sources, frames the pipeline accounts for) for one model."""
    kept = sum(st["sources"][n]["kept"] for n in names)
    enc = st["encoders"][modality]
    boxes = sum(st["sources"][n]["dropped"] + st["sources"][n]["queue"] + st["sources"][n]["rejected"] for n in names)
    return kept, enc["completed"] + enc["errors"] + boxes


def test_display_and_sound_server_die_and_come_back_under_a_running_daemon(xvfb: Display, pulse, home, tmp_path):
    which("Xvfb")
    xvfb.show(np.full((60, 80, 3), 180, np.uint8))
    text = (
        '[daemon]\nlog_level = "INFO"\n[screen]\nfps = 5.0\nforce_keep_s = 2.0\n'
        "[camera]\nenabled = false\n[microphone]\nhop_s = 0.48\n"
    )
    proc, cfg = start_daemon(tmp_path, text)
    endpoint = config.query_endpoint(cfg)
    again: subprocess.Popen | None = None
    try:
        wait_for(lambda: status(cfg)["sources"]["mic0"]["state"] == "running", 15, "mic running")
        before = status(cfg)["sources"]["screen0"]
        # --- the X server dies (SIGKILL: no goodbye to clients)
        stop_process(xvfb._viewer)
        stop_process(xvfb.proc, sig=9)
        down = wait_for(lambda: status(cfg)["sources"]["screen0"]["state"] == "reconnecting", 10, "screen reconnecting")
        st = status(cfg)
        assert st["sources"]["screen0"]["errors"] > before["errors"] and st["sources"]["screen0"]["last_error"]
        assert st["sources"]["mic0"]["state"] == "running", st["sources"]["mic0"]  # the others carry on
        assert request(endpoint, {"op": "ping"}, timeout=5)["ok"]
        captured_down = st["sources"]["screen0"]["captured"]
        time.sleep(1.0)
        assert status(cfg)["sources"]["screen0"]["captured"] == captured_down  # nothing to capture, nothing made up
        # --- a display comes back on the same name
        again = xvfb_on(xvfb.name)
        back = wait_for(
            lambda: status(cfg)["sources"]["screen0"]["captured"] > captured_down + 2, 20, "capture resumes"
        )
        assert status(cfg)["sources"]["screen0"]["state"] == "running"
        # --- the sound server dies and comes back
        pulse.stop()
        wait_for(lambda: status(cfg)["sources"]["mic0"]["state"] == "reconnecting", 10, "mic reconnecting")
        assert request(endpoint, {"op": "ping"}, timeout=5)["ok"]
        pulse.start()
        wait_for(lambda: status(cfg)["sources"]["mic0"]["state"] == "running", 20, "mic running again")
        kept_mic = status(cfg)["sources"]["mic0"]["kept"]
        pulse.play(write_wav(tmp_path / "noise.wav", noise(2.0), 48000))
        wait_for(lambda: status(cfg)["sources"]["mic0"]["kept"] > kept_mic, 10, "mic windows kept after restart")
        # --- every kept frame is accounted for once the pipeline is idle (static screen, silence)
        for modality, names in (("image", ["screen0"]), ("audio", ["mic0"])):
            wait_for(lambda m=modality, n=names: len(set(accounted(status(cfg), m, n))) == 1, 10, f"{modality} books")
        st = status(cfg)
        assert st["sources"]["mic0"]["reconnects"] >= 1 and st["sources"]["screen0"]["errors"] >= 1
        assert st["memory"].get("lost", 0) == 0 and st["encoders"]["image"]["errors"] == 0
    finally:
        stop_daemon(proc, tmp_path)
        stop_process(again)
    log = (tmp_path / "daemon.log").read_text()
    screen_warnings = [ln for ln in log.splitlines() if "level=warning" in ln and "screen screen0" in ln]
    print(f"display down → reconnecting in {down:.2f}s, capture back {back:.2f}s after Xvfb restart")
    assert len(screen_warnings) == 1, screen_warnings  # one outage, one warning (retries are debug)


@pytest.fixture(scope="module")
def encoders(model_cache: Path):
    runtime = Runtime(RuntimeConfig("CPU", "LATENCY", 1, False, model_cache / "ov-cache"))
    store = ModelStore(model_cache)
    results: list[Encoded] = []
    image = ImageEncoder(runtime, store.require("effnet-lite0"), results.append)
    audio = AudioEncoder(runtime, store.require("silero-vad"), results.append)
    return image, audio, results


def test_odd_frames_are_counted_per_source_and_never_reach_inference(encoders):
    image, audio, results = encoders
    n = audio.window_samples
    bad_images = [
        np.zeros((0, 0, 3), np.uint8),  # zero-size
        np.zeros((1, 640, 3), np.uint8),  # a one-pixel strip
        np.zeros((48, 64, 3), np.float32),  # wrong dtype
        np.zeros((48, 64, 4), np.uint8),  # wrong channels (BGRA)
        np.zeros((48, 64), np.uint8),  # grey
        np.zeros((48, 64, 3), np.uint8)[:, :, :, None],  # 4-D
    ]
    nan = np.zeros(n, np.float32)
    nan[100] = np.nan
    inf = np.zeros(n, np.float32)
    inf[5] = np.inf
    bad_audio = [nan, inf, np.zeros(n, np.float64), np.zeros(n - 1, np.float32), np.zeros((n, 2), np.float32)]
    good_image = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    good_audio = (0.1 * np.random.default_rng(1).standard_normal(n)).astype(np.float32)

    def frame(source: str, modality: str, data: np.ndarray, i: int) -> Frame:
        return Frame(source, modality, data, 1_000 + i, 1_000 + i)

    results.clear()
    img_before, aud_before = dict(image.stats), dict(audio.stats)
    runs = []
    for enc, good, bad, sources in (
        (image, good_image, bad_images, ("cam0", "screen0")),
        (audio, good_audio, bad_audio, ("mic0",)),
    ):
        boxes = Mailboxes()
        for s in sources:
            boxes.add(s, depth=64)
        disp = Dispatcher(boxes, enc, enc.modality)
        i = 0
        for s in sources:
            for data in [good, *bad, good]:
                boxes.put(frame(s, enc.modality, data, i))
                i += 1
        disp.start()
        disp.stop()  # drains the mailboxes, then in-flight inference
        runs.append((disp, sources, len(bad)))
    for disp, sources, n_bad in runs:
        assert disp.rejected_by == dict.fromkeys(sources, n_bad), disp.stats()
        assert disp.errors == 0, disp.stats()
    assert image.stats["submitted"] - img_before["submitted"] == 4  # two good frames per image source
    assert image.stats["bad_frames"] - img_before["bad_frames"] == 2 * len(bad_images)
    assert audio.stats["submitted"] - aud_before["submitted"] == 2
    assert audio.stats["bad_frames"] - aud_before["bad_frames"] == len(bad_audio)
    assert len(results) == 6 and all(np.isfinite(e.vector).all() for r in results for e in r.embeddings)


class Exploding:
    """Stands in for a device that fails mid-run (a real CPU device will not): counted, and the thread lives on."""

    modality, device, stats = "image", "CPU", {}

    def __init__(self) -> None:
        self.seen = 0

    def submit(self, frame: Frame) -> None:
        self.seen += 1
        if frame.ts_ns % 2:
            raise RuntimeError("device lost")

    def drain(self) -> None:
        pass

    def latencies(self) -> list[float]:
        return []


def test_an_encoder_failure_does_not_end_the_dispatcher():
    boxes = Mailboxes()
    boxes.add("cam0", depth=16)
    enc = Exploding()
    disp = Dispatcher(boxes, enc, "image")
    for i in range(10):
        boxes.put(Frame("cam0", "image", np.zeros((4, 4, 3), np.uint8), i, i))
    disp.start()
    disp.stop()
    assert enc.seen == 10 and disp.errors_by == {"cam0": 5} and disp.rejected == 0
