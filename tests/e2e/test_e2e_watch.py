"""Watches on a real daemon: `sensorium watch add cat "a cat"`, the cat photo on the (Xvfb) screen → one
match.cat message on the bus with the frame's id and thumbnail; a coffee cup does not fire; the cat staying
on screen (forced keeps) is suppressed by the cooldown; the watch survives a restart (and `sensorium tail
match.` prints its match); with cooldown 0 every frame fires; removed, it stops; a watch given a photo
(`--image`) fires when that photo is on screen. Also: the daemon's status
reports its encoders' health as ok on real frames."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import cv2
import skimage.data

from agent import config
from sinks.client import Subscriber
from tests.support.daemon import ONLY_SCREEN, start_daemon, status, stop_daemon, wait_for
from tests.support.env import ROOT, sensorium

BASE = "[device]\nname = 'CPU'\n[screen]\nfps = 4.0\nforce_keep_s = 2.0\n[store]\nflush_s = 0.2\n"
FEATURES = "effnet-lite0/1280"


def drain(sub: Subscriber) -> int:
    n = 0
    while sub.recv(timeout=0.05) is not None:
        n += 1
    return n


def frames_of(sub: Subscriber, n: int, timeout: float = 30.0) -> list[str]:
    """Ids of the next `n` image frames published (their feature vectors)."""
    return [wait_for(sub, lambda m: m.header["space"] == FEATURES, timeout).id for _ in range(n)]


def no_match(matches: Subscriber) -> None:
    """A frame's match is queued right after its vectors: none within 0.5 s of them is none at all."""
    msg = matches.recv(timeout=0.5)
    assert msg is None, f"unexpected {msg.topic}: {msg.header}"


def test_a_watch_fires_once_per_event_survives_a_restart_and_stops_when_removed(xvfb, home, tmp_path) -> None:
    xvfb.show(skimage.data.coffee())
    proc, cfg = start_daemon(tmp_path, BASE + ONLY_SCREEN)
    cli = ("--config", str(tmp_path / "cfg.toml"))
    frames = Subscriber(config.bus_endpoint(cfg), "emb.image.screen0")
    matches = Subscriber(config.bus_endpoint(cfg), "match.")
    try:
        out = sensorium(*cli, "watch", "add", "cat", "a cat", "--modality", "image", "--cooldown", "60").stdout
        assert out.startswith("added cat") and "match.cat" in out
        bad = sensorium(*cli, "watch", "add", "no spaces", "a cat", check=False)
        assert bad.returncode == 1 and "name must be" in bad.stderr

        drain(frames)
        frames_of(frames, 2)  # the coffee cup, kept twice while the watch is in place: no match
        no_match(matches)

        xvfb.show(skimage.data.chelsea())
        msg = wait_for(matches, lambda m: True, timeout=30)
        assert msg.topic == "match.cat" and msg.vector is None  # two frames: topic, header
        h = msg.header
        assert h["watch"] == "cat" and h["score"] >= 0.55 and h["source"] == "screen0" and h["modality"] == "image"
        assert h["id"].startswith("screen0-") and h["thumb"] and os.path.isfile(h["thumb"])
        assert h["space"] == "minilm-l6/384" and "cat" in " ".join(h["labels"]) and h["seq"] == 0

        drain(frames)
        later = frames_of(frames, 3)  # forced keeps of the same cat: one long event
        assert h["id"] not in later
        no_match(matches)
        st = status(cfg)
        assert st["watch"]["fired"] == 1 and st["watch"]["suppressed"] >= 2 and st["watch"]["watches"] == 1
        assert {v["state"] for v in st["health"].values()} == {"ok"}, st["health"]
        assert st["health"]["image:effnet-lite0/1280"]["vectors"] >= 5
        listed = json.loads(sensorium(*cli, "watch", "list", "--json").stdout)
        assert [(w["name"], w["fired"], w["cooldown"]) for w in listed] == [("cat", 1, 60)]
        metrics = urllib.request.urlopen(st["metrics"], timeout=5).read().decode()
        assert "sensorium_watch_matches_total 1.0" in metrics and "sensorium_watches 1.0" in metrics
        ok = 'sensorium_encoder_health{modality="image",space="effnet-lite0/1280",state="ok"} 1.0'
        assert ok in metrics and "sensorium_watch_suppressed_total" in metrics
        table = sensorium(*cli, "status").stdout
        assert "watches 1: fired 1" in table and "encoder health: image:effnet-lite0/1280 ok" in table
        xvfb.show(skimage.data.coffee())
        frames_of(frames, 1)
    finally:
        frames.close()
        matches.close()
        stop_daemon(proc, tmp_path)

    # a tail started before the daemon: ZMQ connects once the bus is bound, so it cannot miss the match
    tail = subprocess.Popen(
        [sys.executable, "-m", "agent", *cli, "tail", "match.", "-n", "1", "--timeout", "90"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    proc, cfg = start_daemon(tmp_path, BASE + ONLY_SCREEN)  # the same data dir: the watch is back
    frames = Subscriber(config.bus_endpoint(cfg), "emb.image.screen0")
    matches = Subscriber(config.bus_endpoint(cfg), "match.")
    try:
        assert "cat" in sensorium(*cli, "watch", "list").stdout
        frames_of(frames, 1)  # subscribed
        no_match(matches)
        xvfb.show(skimage.data.chelsea())
        printed, err = tail.communicate(timeout=60)
        assert tail.returncode == 0, err
        assert "match.cat" in printed and "score=" in printed and "screen0-" in printed, printed
        assert wait_for(matches, lambda m: True).topic == "match.cat"

        out = sensorium(*cli, "watch", "add", "cat", "a cat", "--modality", "image", "--cooldown", "0").stdout
        assert out.startswith("replaced cat")
        drain(matches)
        fired = [wait_for(matches, lambda m: True, timeout=15).id for _ in range(2)]  # every kept frame now
        assert fired[0] != fired[1]

        assert sensorium(*cli, "watch", "remove", "cat").stdout.strip() == "removed cat"
        frames_of(frames, 1)  # a frame in flight during the remove may still have matched
        drain(matches)
        frames_of(frames, 2)
        no_match(matches)
        assert sensorium(*cli, "watch", "list").stdout.startswith("no watches")
        gone = sensorium(*cli, "watch", "remove", "cat", check=False)
        assert gone.returncode == 1 and "no watch named 'cat'" in gone.stderr

        # an image watch: the photo's bytes, matched by the image model's own vector (not the cat on screen)
        cup = tmp_path / "cup.png"
        cv2.imwrite(str(cup), cv2.cvtColor(skimage.data.coffee(), cv2.COLOR_RGB2BGR))
        out = sensorium(*cli, "watch", "add", "cup", "--image", str(cup)).stdout
        assert out.startswith("added cup") and "<image>" in out, out
        frames_of(frames, 2)  # the cat, still on screen
        no_match(matches)
        xvfb.show(skimage.data.coffee())
        msg = wait_for(matches, lambda m: True, timeout=30)
        assert msg.topic == "match.cup" and msg.header["space"] == FEATURES and msg.header["score"] >= 0.65
    finally:
        if tail.poll() is None:
            tail.kill()
        frames.close()
        matches.close()
        stop_daemon(proc, tmp_path)
