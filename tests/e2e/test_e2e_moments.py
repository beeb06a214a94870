"""Moments end to end: a page on Xvfb → the real daemon keeps screen frames → one fused vector per 1 s slice on
emb.moment.all and in Chroma → `sensorium query --modality moment` finds the slice in its window; a forget
drops the open slices, so no moment of the forgotten range comes back after it.

Screen text is off here (the OCR model's first compile costs ~30 s on 2 cores): the fusion of several senses
is shown with real vectors in tests/agent/test_moments.py; this checks the daemon's wiring.
"""

from __future__ import annotations

import datetime as dt
import json
import time

import numpy as np

from agent import config
from demo.textpages import page
from sinks.client import Subscriber, backfill
from tests.support.daemon import ONLY_SCREEN, start_daemon, status, stop_daemon, wait_for, wait_stored
from tests.support.env import sensorium

GRACE_S = 3.0
CONFIG = (
    "[device]\nname = 'CPU'\n[screen]\nfps = 2.0\ngate_threshold = 0.0\n[ocr]\nscreen = false\n"
    f"[store]\nflush_s = 0.2\n[moments]\ninterval_s = 1.0\ngrace_s = {GRACE_S}\n"
)


def iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).isoformat()


def test_moments_are_published_stored_found_and_forgotten(xvfb, home, tmp_path):
    xvfb.show(page("document", (1024, 768)).rgb)
    proc, cfg = start_daemon(tmp_path, CONFIG + ONLY_SCREEN)
    cfg_arg = ["--config", str(tmp_path / "cfg.toml")]
    endpoint = config.query_endpoint(cfg)
    sub = Subscriber(config.bus_endpoint(cfg), "emb.moment")
    try:
        m = wait_for(sub, lambda m: m.topic == "emb.moment.all", timeout=60)
        h = m.header
        assert (h["modality"], h["source"], h["space"], h["thumb"]) == ("moment", "all", "minilm-l6/384", None)
        start_ns = int(h["id"].removeprefix("all-"))
        assert h["id"] == f"all-{start_ns}" and start_ns % 1_000_000_000 == 0  # slices on whole seconds
        assert m.extra == {"end": f"{start_ns / 1e9 + 1:.3f}", "senses": "screen0"}, m.header
        assert abs(float(np.linalg.norm(m.vector)) - 1) < 1e-5
        wait_stored(cfg, [m])

        out = sensorium(
            *cfg_arg, "query", "a page of text", "--modality", "moment",
            "--since", iso(m.ts - 0.5), "--until", iso(m.ts + 0.5), "--json",
        )  # fmt: skip
        hits = json.loads(out.stdout)
        assert [(x["id"], x["modality"], x["extra"]) for x in hits] == [(m.id, "moment", m.extra)], hits

        out = sensorium(*cfg_arg, "query", "a page of text", "--modality", "moment", "--since", iso(m.ts - 0.5),
                        "--until", iso(m.ts + 0.5))  # fmt: skip
        assert "all" in out.stdout and "senses: screen0" in out.stdout, out.stdout
        out = sensorium(*cfg_arg, "tail", "emb.moment", "-n", "1", "--timeout", "10")
        assert "emb.moment.all" in out.stdout and "senses: screen0" in out.stdout, out.stdout

        st = status(cfg)["moments"]
        assert st["state"] == "on" and st["interval_s"] == 1.0 and st["emitted"] >= 1 and st["pending"] >= 1, st

        forget_at = time.time()
        out = sensorium(*cfg_arg, "forget", "--last", "5m")
        assert "forgot" in out.stdout.lower(), out.stdout
        assert status(cfg)["moments"]["forgotten"] >= 1  # frames come at 2/s: slices were open
        time.sleep(GRACE_S + 2)  # every slice open at the forget would have closed by now
        back = [x for x in backfill(endpoint, forget_at - 300, prefix="emb.moment.") if x.modality == "moment"]
        assert back, "no moment after the forget"  # the screen goes on: new slices
        # a frame in flight at the forget (captured just before it) may start a slice of its second again
        assert min(x.ts for x in back) >= forget_at - 2, [(x.id, forget_at) for x in back]
    finally:
        sub.close()
        stop_daemon(proc, tmp_path)
