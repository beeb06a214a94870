"""Encoder health: real encoders' outputs stay "ok" (static screens, a noisy static camera, steady noise
included); a broken model (the same vector for different frames, or barely moving ones, or NaN) is reported
in status, in the status table, in Prometheus and once in the log."""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from agent.cli.control import format_status
from agent.status import Status
from agent.telemetry.health import RUN, WINDOW, Health
from agent.telemetry.metrics import Latencies
from agent.telemetry.prom import DaemonCollector
from encoders.audio import AudioEncoder
from encoders.image import ImageEncoder
from encoders.modelstore import ModelStore
from encoders.records import Embedding, Encoded, Frame
from encoders.runtime import Runtime, RuntimeConfig
from encoders.text import TextEncoder
from tests.support.photos import rgb as photo

TEXT_SPACE = "minilm-l6/384"
DOCS = (
    "Invoice 4711: total due 120 EUR by Friday", "Meeting notes: quarterly roadmap review",
    "The rocket launch was postponed because of weather", "Recipe: espresso with steamed milk",
    "def main(argv): return parser().parse_args(argv)", "Dear Anna, thanks for the photos from the trip",
    "ERROR connection refused on port 5432", "Chapter 3: The long walk home",
)  # fmt: skip
PHOTOS = (
    "astronaut", "brick", "camera", "cat", "coffee", "coins", "colorwheel", "grass", "gravel", "horse",
    "hubble_deep_field", "immunohistochemistry", "moon", "page", "retina", "rocket", "text",
)  # fmt: skip


@pytest.fixture(scope="module")
def runtime() -> Runtime:
    return Runtime(RuntimeConfig("CPU", "LATENCY", 0, False, Path(tempfile.mkdtemp())))


def frame(source: str, data: np.ndarray, modality: str = "image") -> Frame:
    return Frame(source, modality, data, time.time_ns(), time.monotonic_ns())


def image_result(enc: ImageEncoder, source: str, rgb: np.ndarray) -> Encoded:
    f = frame(source, rgb)
    return Encoded(f, tuple(Embedding.of(f, e.space, e.vector, e.labels, e.scores) for e in enc.encode_now(rgb)))


def health_status(h: Health) -> Status:
    """The status a daemon would report with this monitor (the same from_dict the CLI reads)."""
    return Status.from_dict({"uptime_s": 1.0, "health": h.stats()})


def scrape(st: Status) -> dict[tuple[str, tuple], float]:
    out = {}
    for fam in DaemonCollector(lambda: st, Latencies()).collect():
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_real_encoders_are_healthy(runtime, model_cache, caplog) -> None:
    store = ModelStore(model_cache)
    image = ImageEncoder(runtime, store.require("effnet-lite0"), lambda r: None)
    text = TextEncoder(runtime, store.require("minilm-l6"))
    h = Health(derived_spaces={TEXT_SPACE})
    rng = np.random.default_rng(0)
    with caplog.at_level(logging.INFO, logger="agent.telemetry.health"):
        for name in PHOTOS:  # a slideshow; each slide kept three times (a static screen's forced keeps)
            kept = image_result(image, "screen0", photo(name))  # the same pixels give the same vectors (measured)
            for _ in range(3):
                f = frame("screen0", kept.frame.data)
                h.observe(
                    Encoded(f, tuple(Embedding.of(f, e.space, e.vector, e.labels, e.scores) for e in kept.embeddings))
                )
        cat = photo("chelsea")
        for _ in range(12):  # a static camera: the same scene under sensor noise
            noisy = np.clip(cat + rng.normal(0, 2, cat.shape), 0, 255).astype(np.uint8)
            h.observe(image_result(image, "cam0", noisy))

        windows: list[Encoded] = []
        audio = AudioEncoder(runtime, store.require("silero-vad"), windows.append)
        t = np.arange(15360) / 16000
        for _ in range(24):  # steady noise (a fan), then tones
            audio.submit(frame("mic0", rng.normal(0, 0.1, 15360).astype(np.float32), "audio"))
        for f0 in (220, 330, 440, 660, 880, 1320, 1760, 2640):
            audio.submit(frame("mic0", (0.2 * np.sin(2 * np.pi * f0 * t)).astype(np.float32), "audio"))
        for w in windows:
            h.observe(w)
        for i in range(40):  # screen text memories
            f = frame("screen0", photo("page"))
            words = DOCS[i % len(DOCS)] + f" (page {i})"
            e = Embedding.of(f, TEXT_SPACE, text.encode(words))
            h.observe(Encoded(f, (Embedding(**{**e.__dict__, "modality": "text", "text": words, "key": f"k{i}"}),)))
    stats = h.stats()
    print("\n".join(f"{k}: {v}" for k, v in stats.items()))  # -s: the measured healthy spreads
    streams = ("image:effnet-lite0/1280", "image:", "audio:logmel/128", "audio:", "text:")
    assert set(stats) == {k + TEXT_SPACE if k.endswith(":") else k for k in streams}
    assert all(s["state"] == "ok" and s["nan"] == 0 and s["identical"] == 0 for s in stats.values()), stats
    assert stats["image:effnet-lite0/1280"]["spread"] < 0.5 and stats[f"text:{TEXT_SPACE}"]["spread"] < 0.9
    assert stats["audio:logmel/128"]["spread"] < 0.9  # noise vs tones (noise vs noise is not "clearly different")
    assert "WARNING" not in caplog.text
    assert "image:effnet-lite0/1280 ok; image:minilm-l6/384 ok" in format_status(health_status(h))


def test_a_model_that_maps_every_frame_to_one_vector_is_constant(caplog) -> None:
    """The failure another tool shipped: one vector for every image, stored for weeks."""
    stuck = np.zeros(1280, np.float32)
    stuck[7] = 1.0
    h = Health()
    with caplog.at_level(logging.INFO, logger="agent.telemetry.health"):
        for i in range(3 * RUN):
            f = frame("screen0" if i % 2 else "cam0", photo(PHOTOS[i % len(PHOTOS)]))
            h.observe(Encoded(f, (Embedding.of(f, "broken/1280", stuck.copy()),)))
    s = h.stats()["image:broken/1280"]
    assert s["state"] == "constant" and s["identical"] == 3 * RUN - 1
    assert caplog.text.count("encoder health image:broken/1280: constant") == 1  # per transition, not per frame

    st = health_status(h)
    assert st.health["image:broken/1280"].state == "constant"
    assert "image:broken/1280 CONSTANT (nan 0, identical 23" in format_status(st)
    metrics = scrape(st)
    labels = (("modality", "image"), ("space", "broken/1280"))
    assert metrics[("sensorium_encoder_health", (*labels, ("state", "constant")))] == 1
    assert metrics[("sensorium_encoder_identical_vectors_total", labels)] == 3 * RUN - 1

    rng = np.random.default_rng(1)
    with caplog.at_level(logging.INFO, logger="agent.telemetry.health"):
        for i in range(WINDOW):  # the model is fixed (or replaced): once its stuck vectors are out of the window
            f = frame("screen0", photo(PHOTOS[i % len(PHOTOS)]))
            v = rng.normal(size=1280).astype(np.float32)
            h.observe(Encoded(f, (Embedding.of(f, "broken/1280", v / np.linalg.norm(v)),)))
    assert h.stats()["image:broken/1280"]["state"] == "ok" and "image:broken/1280: ok again" in caplog.text


def test_the_same_vector_for_the_same_input_is_not_a_fault() -> None:
    """Forced keeps of a static screen, and ConSE vectors of equal labels and scores, are rightly identical."""
    h = Health(derived_spaces={TEXT_SPACE})
    conse = np.ones(384, np.float32) / np.sqrt(384)
    still = photo("astronaut")
    for _ in range(4 * RUN):
        f = frame("screen0", still)
        h.observe(Encoded(f, (Embedding.of(f, "effnet-lite0/1280", np.eye(1280, dtype=np.float32)[3]),)))
        g = frame("mic0", np.random.default_rng().normal(0, 0.1, 15360).astype(np.float32), "audio")
        h.observe(Encoded(g, (Embedding.of(g, TEXT_SPACE, conse.copy(), ("Speech",), (0.99,)),)))
    assert {k: (s["state"], s["identical"]) for k, s in h.stats().items()} == {
        "image:effnet-lite0/1280": ("ok", 0),
        f"audio:{TEXT_SPACE}": ("ok", 0),
    }
    for i in range(2 * RUN):  # a saturated speech probability: scores 0.9999 / 1.0 by rounding, one vector
        g = frame("mic0", np.full(15360, i / 100, np.float32), "audio")
        h.observe(Encoded(g, (Embedding.of(g, TEXT_SPACE, conse.copy(), ("Speech",), (0.9999 + i % 2 / 10000,)),)))
    assert h.stats()[f"audio:{TEXT_SPACE}"]["identical"] == 0
    for i in range(2 * RUN):  # ConSE of different labels, one vector: its text tower is broken
        g = frame("mic0", np.zeros(15360, np.float32), "audio")
        h.observe(Encoded(g, (Embedding.of(g, TEXT_SPACE, conse.copy(), ("Speech",), (0.5 + i / 20,)),)))
    assert h.stats()[f"audio:{TEXT_SPACE}"]["state"] == "constant"


def test_vectors_that_barely_move_are_collapsed_and_nan_is_reported() -> None:
    rng = np.random.default_rng(2)
    base = rng.normal(size=512).astype(np.float32)
    h = Health()
    for i in range(WINDOW):
        v = base + 0.05 * rng.normal(size=512).astype(np.float32)  # cosine ≈ 0.997 with each other, never equal
        f = frame("screen0", photo(PHOTOS[i % len(PHOTOS)]))
        h.observe(Encoded(f, (Embedding.of(f, "dull/512", v / np.linalg.norm(v)),)))
    s = h.stats()["image:dull/512"]
    assert s["state"] == "collapsed" and s["identical"] == 0 and s["spread"] > 0.98

    full = Health(queue_size=1)  # not started: nothing takes from its queue
    for _ in range(3):
        full.put(Encoded(frame("screen0", photo("moon")), ()))
    assert full.dropped == 2

    bad = np.full(512, np.nan, np.float32)
    f = frame("screen0", photo("moon"))
    h.put(Encoded(f, (Embedding.of(f, "dull/512", bad),)))  # through the sink's queue and thread
    h.start()
    h.flush()
    h.close()
    st = health_status(h)
    assert st.health["image:dull/512"].state == "nan" and st.health["image:dull/512"].nan == 1
    assert scrape(st)[("sensorium_encoder_bad_vectors_total", (("modality", "image"), ("space", "dull/512")))] == 1
