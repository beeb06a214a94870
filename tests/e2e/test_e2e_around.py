"""`sensorium around` against the real daemon: pages of text on Xvfb → screen frames and screen text in memory (the
store in its own process) → the frames and words near one frame, and the other times like it."""

from __future__ import annotations

import json

from agent import config
from demo.textpages import page
from sinks.client import Subscriber, backfill
from tests.support.daemon import ONLY_SCREEN, start_daemon, stop_daemon, wait_for, wait_stored
from tests.support.env import sensorium

SIZE = (1024, 768)  # the xvfb fixture's screen
CONFIG = "[device]\nname = 'CPU'\n[screen]\nfps = 2.0\n[store]\nflush_s = 0.2\n[ocr]\nmin_interval_s = 0.5\n"


def test_around_a_screen_frame_lists_the_frames_and_words_near_it(xvfb, home, tmp_path):
    proc, cfg = start_daemon(tmp_path, CONFIG + ONLY_SCREEN)
    cfg_arg = ["--config", str(tmp_path / "cfg.toml")]
    sub = Subscriber(config.bus_endpoint(cfg), "emb.")
    try:
        seen = []

        def reads(word: str):
            def pred(m) -> bool:
                seen.append(m)
                return word in (m.header.get("text") or "")

            return pred

        xvfb.show(page("invoice", SIZE).rgb)
        invoice = wait_for(sub, reads("4711"), timeout=90)  # the first read compiles the models
        xvfb.show(page("terminal", SIZE).rgb)
        wait_for(sub, reads("expired"), timeout=60)
        while (m := sub.recv(timeout=1.0)) is not None:
            seen.append(m)
        wait_stored(cfg, seen)
        frames = sorted({m.header["id"] for m in seen if m.header["modality"] == "image"})
        assert len(frames) >= 2, frames
        anchor = invoice.header["frame"]  # the frame the invoice's words were read from
        assert anchor in frames

        reply = json.loads(sensorium(*cfg_arg, "around", anchor, "--window", "60s", "--json").stdout)
        at = reply["at"]
        assert at == invoice.header["ts"]  # the capture time of the frame the words were read from
        stored = {m.id for m in backfill(config.query_endpoint(cfg), at - 60, at + 60, prefix="emb.image.screen0")}
        senses = {g["sense"]: g["hits"] for g in reply["senses"]}
        screen = senses["image:screen0"]
        assert anchor not in [h["id"] for h in screen] and {h["id"] for h in screen} == stored - {anchor}
        assert [abs(h["dt"]) for h in screen] == sorted(abs(h["dt"]) for h in screen)
        words = senses["text:screen0"]
        assert any("4711" in h["text"] and h["frame"] == anchor and abs(h["dt"]) < 0.001 for h in words), words
        assert any("expired" in h["text"] for h in words), words

        out = sensorium(*cfg_arg, "around", anchor, "--window", "1s", "--elsewhere")
        lines = out.stdout.splitlines()
        assert lines[0].startswith("around ") and anchor in lines[0] and "elsewhere" in lines, out.stdout
        bad = sensorium(*cfg_arg, "around", "2001-01-01T00:00", check=False)
        assert bad.returncode == 2 and "no memories within 30 s of 2001-01-01 00:00:00; memory holds" in bad.stderr
    finally:
        sub.close()
        stop_daemon(proc, tmp_path)
