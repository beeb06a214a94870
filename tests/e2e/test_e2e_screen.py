"""The spine end to end: Xvfb screen → daemon (OpenVINO) → ZMQ bus + Chroma → `sensorium query`.

The daemon runs as its own process with the real CLI; this test process subscribes and queries
like any other client would.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest
import skimage.data

from agent import config
from sinks.client import Rejected, Subscriber, embed
from tests.agent.query.world import png_bomb
from tests.support.daemon import ONLY_SCREEN, start_daemon, status, stop_daemon, wait_for, wait_stored
from tests.support.env import ROOT, sensorium

BASE = "[device]\nname = 'CPU'\n[screen]\nfps = 4.0\nforce_keep_s = 3.0\n[store]\nflush_s = 0.2\n"
CATS = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat", "lynx"}


def start(tmp_path):
    return start_daemon(tmp_path, BASE + ONLY_SCREEN)


def test_cat_on_screen_is_published_stored_and_found(xvfb, home, tmp_path):
    xvfb.show(skimage.data.chelsea())
    proc, cfg = start(tmp_path)
    sub = Subscriber(config.bus_endpoint(cfg), "emb.image.screen0")
    tail: subprocess.Popen | None = None
    try:
        frames: dict[str, dict] = {}  # id -> space -> message; a frame's vectors arrive back to back

        def cat_complete(m) -> bool:
            frames.setdefault(m.header["id"], {})[m.header["space"]] = m
            got = frames[m.header["id"]]
            return len(got) == 2 and bool(CATS & set(m.header["labels"]))

        msg = wait_for(sub, cat_complete)
        cat, feature = frames[msg.header["id"]]["minilm-l6/384"], frames[msg.header["id"]]["effnet-lite0/1280"]
        assert cat.topic == feature.topic == "emb.image.screen0"
        for m, dim in ((cat, 384), (feature, 1280)):
            assert m.vector.dtype == np.float32 and m.vector.shape == (dim,) and m.header["dim"] == dim
            assert abs(float(np.linalg.norm(m.vector)) - 1.0) < 1e-4
        assert os.path.isfile(cat.header["thumb"]) or wait_file(cat.header["thumb"])

        cfg_arg = ["--config", str(tmp_path / "cfg.toml")]
        tail = subprocess.Popen(
            [sys.executable, "-m", "agent", *cfg_arg, "tail", "emb.image", "--json", "--timeout", "60"],
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in tail.stdout], daemon=True).start()
        tailed = [next_line(lines, 30)]  # a forced keep of the cat: tail is subscribed
        shown = {}
        for name in ("coffee", "rocket"):
            xvfb.show(getattr(skimage.data, name)())
            msg = wait_for(sub, lambda m: m.header["space"] == "minilm-l6/384" and not CATS & set(m.header["labels"]))
            shown[name] = msg
        ids = {m.header["id"] for m in shown.values()}
        deadline = time.monotonic() + 30
        while not ids <= {t["id"] for t in tailed}:  # tail streams them too
            tailed.append(next_line(lines, deadline - time.monotonic()))
        tail.send_signal(signal.SIGINT)  # Ctrl-C ends a tail cleanly
        assert tail.wait(timeout=10) == 0
        assert all(t["topic"] == "emb.image.screen0" and abs(t["norm"] - 1) < 1e-4 for t in tailed)
        wait_stored(cfg, [cat, feature, *shown.values()])

        out = sensorium(*cfg_arg, "query", "a cat", "--json", "-k", "10", "--all")  # the others too, however unlike
        hits = json.loads(out.stdout)
        assert hits, "query returned nothing"
        assert CATS & set(hits[0]["labels"]), hits[0]
        ids = [h["id"] for h in hits]
        coffee, rocket = (ids.index(shown[name].header["id"]) for name in ("coffee", "rocket"))
        assert coffee > 0 and rocket > 0
        first_other = min(coffee, rocket)
        assert all(CATS & set(h["labels"]) for h in hits[:first_other])  # every cat frame ranks above them

        text = sensorium(*cfg_arg, "query", "a cat", "--since", "10m").stdout
        assert "screen0" in text and ".jpg" in text

        # by an image: the CLI (in another cwd than the daemon's) reads the file and sends its bytes
        cv2.imwrite(str(tmp_path / "cup.png"), cv2.cvtColor(skimage.data.coffee(), cv2.COLOR_RGB2BGR))
        out = sensorium(*cfg_arg, "query", "--image", "cup.png", "--json", "-k", "1", cwd=tmp_path)
        assert [h["id"] for h in json.loads(out.stdout)] == [shown["coffee"].header["id"]]
        out = sensorium(*cfg_arg, "embed", "--image", "cup.png", "--json", cwd=tmp_path)
        vectors = {space: np.asarray(v, np.float32) for space, v in json.loads(out.stdout).items()}
        assert sorted(vectors) == ["effnet-lite0/1280", "minilm-l6/384"]
        near = {name: float(vectors["minilm-l6/384"] @ m.vector) for name, m in shown.items()}
        assert near["coffee"] > 0.95 and near["rocket"] < 0.8, near  # the same picture on screen (0.998 here)
        # a 10001×10001 PNG in ~300 KB: refused from its header (OPENCV_IO_MAX_IMAGE_PIXELS), before decoding
        with pytest.raises(Rejected, match="declares more than 100000000 pixels"):
            embed(config.query_endpoint(cfg), image=png_bomb(10_001))
        assert status(cfg)["service"]["bad_requests"] >= 1
    finally:
        if tail is not None and tail.poll() is None:
            tail.kill()
        sub.close()
        took = stop_daemon(proc, tmp_path)
    log = (tmp_path / "daemon.log").read_text()
    assert "stopped in" in log and took < 15


def next_line(lines: queue.Queue[str], timeout: float) -> dict:
    try:
        return json.loads(lines.get(timeout=max(0.0, timeout)))
    except queue.Empty:
        raise AssertionError(f"sensorium tail printed nothing within {timeout:.0f}s") from None


def wait_file(path: str, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.isfile(path):
            return True
        time.sleep(0.1)
    return False


def test_static_screen_is_one_memory_plus_forced_keeps(xvfb, home, tmp_path):
    xvfb.show(skimage.data.astronaut())
    proc, cfg = start(tmp_path)
    try:
        time.sleep(7.0)
        st = status(cfg)
    finally:
        stop_daemon(proc, tmp_path)
    src = st["sources"]["screen0"]
    # 7 s at 4 fps with a forced keep every 3 s: ~28 captures, 1 kept for the change + 1-2 forced.
    assert src["captured"] >= 15, src
    assert src["kept"] == 1 + src["forced"] and 1 <= src["forced"] <= 3, src
    from sinks.memory import Memory

    mem = Memory(cfg.daemon.data_dir, 1, 0.1, False, 8, 1)
    moments = len(mem.range(None, None, "moment", None, 100))  # the text space also holds the 10 s moments
    assert 1 <= moments <= 2 and all(h.source == "all" for h, _ in mem.range(None, None, "moment", None, 100))
    assert mem.count("minilm-l6/384") - moments == src["kept"] == mem.count("effnet-lite0/1280")


def test_no_display_exits_2_with_a_table_and_a_hint(home, tmp_path, monkeypatch):
    """Every sensor known to be absent, so the machine's own camera or microphone cannot make it run."""
    monkeypatch.setenv("DISPLAY", ":9999")
    monkeypatch.setenv("PULSE_SERVER", f"unix:{tmp_path / 'no-pulse'}")  # no sound server either
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(
        f"[camera]\ndevice = '{tmp_path / 'no-camera.avi'}'\n"
        "[microphone]\ndevice = 'sensorium-test-no-such-microphone'\n[metrics]\nport = 0\n"
    )
    out = sensorium("--config", str(cfg), "run", check=False, timeout=60)
    assert out.returncode == 2
    assert "make demo" in out.stderr
    for name in ("screen0", "cam0", "mic0"):  # one table: every configured source and why it was skipped
        assert any(line.startswith(name) and "skipped" in line for line in out.stderr.splitlines()), out.stderr
