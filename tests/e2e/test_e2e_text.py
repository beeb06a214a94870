"""Screen text end to end: pages of text on Xvfb → the daemon reads them (PP-OCRv6 on OpenVINO) → text
memories on the bus and in Chroma → `sensorium query` finds them by their words and by their meaning; an
excluded window's text never arrives; `forget` removes text from the keyword index too.
"""

from __future__ import annotations

import json
import time

from agent import config
from demo.textpages import page
from sinks.client import Subscriber
from tests.support.daemon import ONLY_SCREEN, start_daemon, status, stop_daemon, wait_for, wait_stored
from tests.support.env import sensorium

SIZE = (1024, 768)  # the xvfb fixture's screen: pages are drawn 1:1
CONFIG = (
    "[device]\nname = 'CPU'\n[screen]\nfps = 2.0\nforce_keep_s = 30.0\n"
    "exclude_windows = ['^secret-notes$']\n[store]\nflush_s = 0.2\n[ocr]\nmin_interval_s = 0.5\n"
)


def query(cfg_arg: list[str], *args: str) -> list[dict]:
    return json.loads(sensorium(*cfg_arg, "query", *args, "--json").stdout)


def test_screen_text_is_found_by_its_words_and_meaning_and_forgotten(xvfb, home, tmp_path):
    shown = {}
    xvfb.show(page("invoice", SIZE).rgb)
    proc, cfg = start_daemon(tmp_path, CONFIG + ONLY_SCREEN)
    cfg_arg = ["--config", str(tmp_path / "cfg.toml")]
    sub = Subscriber(config.bus_endpoint(cfg), "emb.text.screen0")
    try:
        texts = []

        def read(word: str):
            def pred(m) -> bool:
                texts.append(m)
                return word in (m.header.get("text") or "")

            return pred

        shown["invoice"] = wait_for(sub, read("4711"), timeout=90)  # the first read compiles the models
        for name, word in (("terminal", "expired"), ("document", "Dolomites")):
            xvfb.show(page(name, SIZE).rgb)
            shown[name] = wait_for(sub, read(word), timeout=60)
        m = shown["invoice"]
        assert m.topic == "emb.text.screen0" and m.header["modality"] == "text"
        assert m.header["frame"].startswith("screen0-") and m.header["id"].startswith("screen0#text-")
        assert m.vector.shape == (384,) and m.header["space"] == "minilm-l6/384"

        # a window the config excludes: masked before anything reads it, so none of its words arrive
        before = status(cfg)
        xvfb.show(page("email", SIZE).rgb, title="secret-notes")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # until the masked frame was kept and the text worker is done with it
            st = status(cfg)
            src, text = st["sources"]["screen0"], st["text"]
            done = sum(text[k] for k in ("read", "unchanged", "errors", "skipped", "discarded"))
            kept = (
                src["kept"] > before["sources"]["screen0"]["kept"]
                and src["masked"] > before["sources"]["screen0"]["masked"]
            )
            if kept and text["offered"] > before["text"]["offered"] and done == text["offered"]:
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"the masked window's frame was not read: {st}")
        while (m := sub.recv(timeout=0.5)) is not None:
            texts.append(m)
        assert not [t for t in texts if "radiators" in (t.header.get("text") or "").lower()]
        wait_stored(cfg, texts)

        hits = query(cfg_arg, "invoice 4711", "--modality", "text", "-k", "5")
        assert hits and "4711" in hits[0]["text"], hits
        assert hits[0]["frame"] == shown["invoice"].header["frame"] and hits[0]["snippet"]
        hits = query(cfg_arg, "invoice 4711", "-k", "5")  # every sense: the text memory still comes first
        assert "4711" in (hits[0].get("text") or ""), hits
        # a paraphrase, no word in common with the line: found by meaning
        hits = query(cfg_arg, "the TLS cert ran out of validity", "--modality", "text", "-k", "3")
        assert any("expired" in h["text"] for h in hits), hits
        hits = query(cfg_arg, "radiators heating maintenance", "--modality", "text", "-k", "20")
        assert not any("radiators" in h["text"].lower() for h in hits), hits

        out = sensorium(*cfg_arg, "forget", "--last", "5m")
        assert "forgot" in out.stdout.lower(), out.stdout
        hits = query(cfg_arg, "invoice 4711", "--modality", "text", "-k", "5")
        assert not any("4711" in h["text"] for h in hits), hits
    finally:
        sub.close()
        stop_daemon(proc, tmp_path)
