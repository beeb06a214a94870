"""The screen-text worker with the real OCR engine and MiniLM: what it stores, once, and what it skips."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from agent.text.imagetext import ImageText
from agent.text.redact import Redactor
from demo.textpages import page
from encoders.modelstore import ModelStore
from encoders.ocr import OcrEngine
from encoders.records import Encoded, Frame
from encoders.runtime import Runtime, RuntimeConfig
from encoders.text import TextEncoder


@pytest.fixture(scope="module")
def parts(model_cache):
    store = ModelStore(model_cache)
    runtime = Runtime(RuntimeConfig("CPU", "LATENCY", 1, False, model_cache / "ov-cache"))
    return OcrEngine(runtime, store.require("ppocr-v6")), TextEncoder(runtime, store.require("minilm-l6"))


def frame(rgb: np.ndarray) -> Frame:
    return Frame("screen0", "image", rgb, time.time_ns(), time.monotonic_ns())


def worker(parts, out: list[Encoded], min_interval_s: float = 0.0) -> ImageText:
    engine, text = parts
    return ImageText(engine, text, Redactor(), out.append, min_interval_s)


def test_a_page_is_stored_once_and_a_new_line_alone(parts):
    out: list[Encoded] = []
    w = worker(parts, out)
    rgb = page("terminal", (1280, 720)).rgb
    first = w.read(frame(rgb))
    assert first is not None and out == [first]
    words = " ".join(e.text for e in first.embeddings)
    assert "certificate has expired" in words and "CERTIFICATE_VERIFY_FAILED" in words
    for e in first.embeddings:
        assert e.modality == "text" and e.space == "minilm-l6/384" and e.frame_id == first.frame.id
        assert e.id.startswith("screen0#text-") and abs(float(np.linalg.norm(e.vector)) - 1) < 1e-4
    assert len({e.id for e in first.embeddings}) == len(first.embeddings)

    assert w.read(frame(rgb.copy())) is None  # the same screen again: nothing changed, nothing read
    assert w.counts["unchanged"] == 1

    grown = rgb.copy()
    cv2.putText(grown, "backup finished without errors", (12, 520), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (215,) * 3, 2)
    item = w.read(frame(grown))
    assert item is not None
    assert [e.text for e in item.embeddings] == ["backup finished without errors"]


def test_secrets_are_redacted_before_they_are_embedded(parts):
    out: list[Encoded] = []
    w = worker(parts, out)
    rgb = np.full((200, 1000, 3), 255, np.uint8)
    cv2.putText(rgb, "card 4111 1111 1111 1111 exp 12/29", (10, 100), cv2.FONT_HERSHEY_SIMPLEX, 1.0, (0,) * 3, 2)
    item = w.read(frame(rgb))
    assert item is not None
    (e,) = item.embeddings
    assert "4111" not in e.text and "[redacted:card]" in e.text, e.text
    assert w.counts["redacted"] == 1


def test_frames_offered_faster_than_the_interval_are_skipped_and_flush_forgets(parts):
    out: list[Encoded] = []
    w = worker(parts, out, min_interval_s=60.0)
    w.start()
    try:
        rgb = page("invoice", (1280, 720)).rgb
        w.offer(frame(rgb))
        deadline = time.monotonic() + 60
        while not out and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(out) == 1
        w.offer(frame(rgb))
        w.offer(frame(rgb))  # replaces the one waiting for the interval
        st = w.stats()
        assert st["skipped"] == 1 and st["waiting"] == 1
        assert w.flush()  # a forget: what waits is dropped, and the lines stored before may be stored again
        st = w.stats()
        assert st["discarded"] == 1 and st["waiting"] == 0
    finally:
        w.close()
    w.min_interval_s = 0.0
    again = w.read(frame(rgb))
    assert again is not None and "4711" in " ".join(e.text for e in again.embeddings)
