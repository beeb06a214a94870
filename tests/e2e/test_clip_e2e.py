"""A CLIP-family model end to end: `models import` → `models build` → daemon on Xvfb → bus + query in its space.

The checkpoint is a tiny random CLIP written offline (tests/support/tiny_clip.py); its vectors mean
nothing, so the test checks the wiring: frames get the CLIP vector with zero-shot labels from the
configured list, and a text query goes through the CLIP text tower and finds them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import skimage.data

from agent import config
from encoders.modelstore import ModelStore
from sinks.client import Subscriber
from tests.support import tiny_clip
from tests.support.daemon import ONLY_SCREEN, start_daemon, status, stop_daemon, wait_for, wait_stored
from tests.support.env import sensorium

LABELS = ["a cat", "a rocket", "a cup of coffee"]


def test_tiny_clip_import_build_run_query(xvfb, home, model_cache, tmp_path):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    cache = tmp_path / "cache"
    (cache / "models").mkdir(parents=True)
    minilm = ModelStore(model_cache).require("minilm-l6")  # the text model, shared with the other tests
    (cache / "models" / minilm.name).symlink_to(minilm)
    cfg_text = (
        f"[daemon]\ncache_dir = '{cache}'\n[device]\nname = 'CPU'\n"
        f"[models]\nimage = 'tiny-clip'\nlabels = {json.dumps(LABELS)}\n"
        "[screen]\nfps = 4.0\nforce_keep_s = 2.0\n[store]\nflush_s = 0.2\n" + ONLY_SCREEN
    )
    (tmp_path / "cfg.toml").write_text(cfg_text)
    arg = ["--config", str(tmp_path / "cfg.toml")]
    src = tiny_clip.make(tmp_path / "tiny-clip")
    sensorium(*arg, "models", "import", str(src))
    built = sensorium(*arg, "models", "build", "tiny-clip", timeout=180)
    assert "tiny-clip: built" in built.stdout
    space = ModelStore(cache).meta("tiny-clip")["space"]
    assert space == "clip-tiny-clip/16"

    xvfb.show(skimage.data.chelsea())
    proc, cfg = start_daemon(tmp_path, cfg_text)
    sub = Subscriber(config.bus_endpoint(cfg), "emb.image.screen0")
    try:
        msg = wait_for(sub, lambda m: m.header["space"] == space)
        assert msg.vector.shape == (16,) and abs(float(np.linalg.norm(msg.vector)) - 1) < 1e-4
        assert msg.header["labels"] and set(msg.header["labels"]) <= set(LABELS)
        assert status(cfg)["encoders"]["image"]["completed"] >= 1
        wait_stored(cfg, [msg])
        out = sensorium(*arg, "query", "a photo of a cat", "--json", "-k", "3")
        hits = json.loads(out.stdout)
        assert hits, "the CLIP text tower found nothing"
        assert all(space in h.get("spaces", [h.get("space")]) for h in hits), hits
        assert set(hits[0]["labels"]) <= set(LABELS)
        # embed: a text in both text spaces (MiniLM, CLIP's text tower), an image in CLIP's image space
        text = json.loads(sensorium(*arg, "embed", "a photo of a cat", "--json").stdout)
        assert sorted(text) == sorted([space, "minilm-l6/384"]) and len(text[space]) == 16
        cv2.imwrite(str(tmp_path / "cat.png"), cv2.cvtColor(skimage.data.chelsea(), cv2.COLOR_RGB2BGR))
        image = json.loads(sensorium(*arg, "embed", "--image", str(tmp_path / "cat.png"), "--json").stdout)
        assert list(image) == [space] and abs(float(np.linalg.norm(image[space])) - 1) < 1e-4
    finally:
        sub.close()
        stop_daemon(proc, tmp_path)
    assert Path(tmp_path / "daemon.log").read_text().count("Traceback") == 0
