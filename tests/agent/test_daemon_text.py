"""Screen text in the daemon: camera OCR by config, and a broken OCR model that costs the text, not the start."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from agent import config
from agent.daemon import Daemon
from agent.pipeline.mailbox import Mailboxes
from demo.textpages import page
from sinks.client import Subscriber
from tests.agent.test_daemon import HandSource, until


def start(tmp_path: Path, cache: Path, extra: str) -> tuple[Daemon, HandSource]:
    path = tmp_path / "cfg.toml"
    path.write_text(
        f'[daemon]\ndata_dir = "{tmp_path / "data"}"\ncache_dir = "{cache}"\nruntime_dir = "{tmp_path / "run"}"\n'
        '[device]\nname = "CPU"\n[store]\nflush_s = 0.2\n[metrics]\nenabled = false\n' + extra
    )
    cams: list[HandSource] = []

    def sources(boxes: dict[str, Mailboxes]) -> list[HandSource]:
        cams.append(HandSource("cam0", boxes["image"].put))
        return cams

    daemon = Daemon(config.load(path), sources=sources)  # type: ignore[arg-type]
    daemon.start()
    return daemon, cams[0]


def test_camera_text_is_read_when_the_config_asks(tmp_path: Path, model_cache: Path) -> None:
    daemon, cam = start(tmp_path, model_cache, "[ocr]\ncamera = true\nmin_interval_s = 0.0\n")
    sub = Subscriber(config.bus_endpoint(daemon.cfg), "emb.text.cam0")
    try:
        assert daemon.status().text.state == "on"
        deadline = time.monotonic() + 60
        words = ""
        while "4711" not in words and time.monotonic() < deadline:
            cam.emit(page("invoice", (1280, 720)).rgb)  # again until the subscription is through
            msg = sub.recv(timeout=3.0)
            words += (msg.text or "") if msg is not None else ""
        assert "4711" in words
        assert msg is not None and msg.frame and msg.frame.startswith("cam0-")
    finally:
        sub.close()
        daemon.stop()


def test_screen_text_is_off_by_default_for_a_camera(tmp_path: Path, model_cache: Path) -> None:
    daemon, _ = start(tmp_path, model_cache, "")
    try:
        assert daemon.image_text is None and daemon.status().text.state == "off: no source to read"
    finally:
        daemon.stop()


def test_a_corrupt_ocr_model_turns_text_off_and_the_daemon_runs(tmp_path: Path, model_cache: Path) -> None:
    cache = tmp_path / "cache"
    (cache / "models").mkdir(parents=True)
    for built in (model_cache / "models").iterdir():
        if built.name.startswith("ppocr-v6"):
            shutil.copytree(built, cache / "models" / built.name)
            (cache / "models" / built.name / "det.bin").write_bytes(b"\0" * 100)  # truncated weights
        else:
            (cache / "models" / built.name).symlink_to(built)
    daemon, cam = start(tmp_path, cache, "[ocr]\ncamera = true\n")
    try:
        st = daemon.status()
        assert st.text.state.startswith("off: ") and "det" in st.text.state, st.text.state
        cam.emit(page("invoice", (1280, 720)).rgb)
        until(lambda: daemon.status().memory.stored >= 2, 30, "the frame's vectors stored")
    finally:
        daemon.stop()
