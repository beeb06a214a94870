"""Moments (agent/moments.py): one fused vector per slice of time from every sense.

The ranking test uses real vectors (the built MiniLM for screen text and speech, EfficientNet-Lite0's ConSE
vector for the screen image), fuses them with the real Moments, stores everything in a real Chroma and asks it
as `query --modality moment` does. The edge cases step a fake wall clock with random unit vectors.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pytest

from agent.config import ConfigError, load
from agent.moments import KINDS, MODALITY, Moments, moment_source, straddled
from agent.pipeline.fanout import FanOut
from agent.pipeline.mailbox import Mailboxes
from agent.query.search import Searcher
from agent.query.service import Service
from agent.telemetry.metrics import Histogram, Latencies
from demo.textpages import page
from encoders.image import ImageEncoder
from encoders.modelstore import ModelStore
from encoders.records import Embedding, Encoded, Frame, text_id
from encoders.runtime import Runtime, RuntimeConfig
from encoders.text import TextEncoder
from sinks.memory import Memory
from sinks.memory.thumbs import Thumbnails

T0 = 1_763_900_000  # a multiple of the 10 s interval
NS = 1_000_000_000
SPACE = "minilm-l6/384"
WEIGHTS = {"image": 1.0, "audio": 0.5, "text": 1.0, "speech": 1.5}
CALL = "Video call - Anna Berg, Chris Doe - 3 participants - Mute - Camera off - Leave call"
BUDGET = "we have to cut the marketing budget by ten percent next quarter"
HIKE = "the trail up the mountain was beautiful this weekend"
TERMINAL = "pytest: 212 passed in 14.2 seconds"
QUESTION = "a video call about the budget"


def screen_frame(ts: float, rgb: np.ndarray | None = None) -> Frame:
    data = rgb if rgb is not None else np.zeros((8, 8, 3), np.uint8)
    return Frame("screen0", "image", data, int(ts * NS), int(ts * NS))


def text_item(frame: Frame, words: str, vec: np.ndarray, space: str = SPACE) -> Encoded:
    """A text memory read from `frame` (screen text), or heard (speech: `frame` is an audio frame)."""
    e = Embedding(frame.id, frame.source, "text", space, vec, frame.ts_ns, frame.mono_ns, text=words,
                  key=text_id(frame.source, frame.ts_ns, 0))  # fmt: skip
    return Encoded(frame, (e,))


def speech_item(ts: float, words: str, vec: np.ndarray) -> Encoded:
    return text_item(Frame("mic0", "audio", np.zeros(0, np.float32), int(ts * NS), int(ts * NS)), words, vec)


def unit(rng: np.random.Generator, dim: int = 8) -> np.ndarray:
    v = rng.standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def image_item(ts: float, vec: np.ndarray, source: str = "screen0") -> Encoded:
    frame = Frame(source, "image", np.zeros((8, 8, 3), np.uint8), int(ts * NS), int(ts * NS))
    return Encoded(frame, (Embedding.of(frame, SPACE, vec),))


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> int:
        return int(self.t * NS)


def wait_for(cond, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.05)


def sink(interval: float = 10.0, grace: float = 5.0, weights=None, clock=None) -> tuple[Moments, list[Encoded]]:
    out: list[Encoded] = []
    return Moments(SPACE, interval, grace, weights or WEIGHTS, out.append, clock=clock or Clock(T0)), out


# -- with real vectors, in a real store ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def encoders(model_cache):
    store = ModelStore(model_cache)
    runtime = Runtime(RuntimeConfig("CPU", "LATENCY", 1, False, model_cache / "ov-cache"))
    return TextEncoder(runtime, store.require("minilm-l6")), ImageEncoder(
        runtime, store.require("effnet-lite0"), lambda item: None
    )


def test_a_call_on_screen_while_the_budget_is_discussed_ranks_first_as_a_moment(encoders, tmp_path):
    text, image = encoders
    rgb = page("document", (1024, 768)).rgb
    shown = [e for e in image.encode_now(rgb) if e.space == text.space]  # the screen's ConSE vector
    assert len(shown) == 1 and text.space == SPACE
    slices = {  # slice start → (screen text, speech); every slice also has the same screen image
        T0: (CALL, BUDGET),  # the one: a call on screen while the budget is discussed
        T0 + 10: (CALL, HIKE),
        T0 + 20: (TERMINAL, BUDGET),
        T0 + 30: (CALL, None),
        T0 + 40: (None, BUDGET),
    }
    moments, out = sink(grace=5.0)
    items = []
    for start, (screen, said) in slices.items():
        for dt in (1.0, 4.0, 7.0):  # the screen kept three times: it must not outweigh one sentence
            frame = screen_frame(start + dt, rgb)
            items.append(Encoded(frame, tuple(replace(e, frame_id=frame.id, ts_ns=frame.ts_ns) for e in shown)))
        if screen:
            items.append(text_item(screen_frame(start + 1.0), screen, text.encode(screen)))
        if said:
            items.append(speech_item(start + 3.0, said, text.encode(said)))
    for item in items:
        moments.put(item)
    assert len(out) == 4  # closed as later captures came in (the last one, T0+47, is past T0+40 + 5 s)
    moments.close()
    assert [m.frame.ts_ns for m in out] == [s * NS for s in slices]
    first = out[0].embeddings[0]
    assert first.id == f"all-{T0 * NS}" and first.modality == MODALITY and first.source == "all"
    assert first.extra == {"end": f"{T0 + 10:.3f}", "senses": "mic0#text,screen0,screen0#text"}

    memory = Memory(tmp_path / "data", 8, 0.1, False, 64, 100, retention_days=14)
    memory.write([*items, *out])
    search = Searcher(memory, [text], None)
    hits = search.query({"text": QUESTION, "modality": "moment", "k": 5})
    assert hits[0]["id"] == f"all-{T0 * NS}" and hits[0]["modality"] == "moment", hits
    assert hits[0]["extra"]["senses"] == "mic0#text,screen0,screen0#text"
    assert hits[0]["score"] > max(h["score"] for h in hits[1:]), hits
    # a plain query answers with what was captured: moments only when asked for
    plain = search.query({"text": QUESTION, "k": 50})
    assert plain and not [h for h in plain if h["modality"] == "moment"], plain
    # "other times like this moment" (what `around --elsewhere` can ask): like a moment, among moments
    alike = search.query({"like": out[0].frame.id, "modality": "moment", "k": 5})
    assert out[0].frame.id not in [h["id"] for h in alike] and len(alike) == 4, alike
    # no single memory holds both: the best text memory is one or the other
    best = search.query({"text": QUESTION, "modality": "text", "k": 1})[0]
    assert best["text"] in (CALL, BUDGET), best
    # range (what `around` reads) and backfill give the moment rows of a window with their extra
    rows = memory.range(T0 + 10, T0 + 25, modality="moment")
    assert [(h.id, h.extra) for h, _ in rows] == [
        (f"all-{(T0 + 10) * NS}", {"end": f"{T0 + 20:.3f}", "senses": "mic0#text,screen0,screen0#text"}),
        (f"all-{(T0 + 20) * NS}", {"end": f"{T0 + 30:.3f}", "senses": "mic0#text,screen0,screen0#text"}),
    ]
    reply, vectors = search.backfill({"since": T0 + 30, "modality": "moment"})
    assert [r["extra"]["senses"] for r in reply["rows"]] == ["screen0,screen0#text", "mic0#text,screen0"]
    assert all(abs(np.linalg.norm(v) - 1) < 1e-5 for v in vectors)
    # forget and retention treat moment rows as any row
    assert memory.forget(T0 + 35, None)["count"] >= 2  # the speech-only moment, its speech and screen frames
    assert [h.id for h, _ in memory.range(T0, modality="moment")] == [m.frame.id for m in out[:4]]
    # a forget from inside a slice: the daemon deletes that slice's stored moment by its exact start
    start = straddled(T0 + 15.5, 10.0)
    assert start == T0 + 10 and straddled(T0 + 10, 10.0) is None and straddled(None, 10.0) is None
    assert memory.forget(start, start)["count"] == 1  # the moment alone, not the screen frame at T0+11
    assert [h.id for h, _ in memory.range(T0, modality="moment")] == [out[0].frame.id, out[2].frame.id, out[3].frame.id]
    memory.apply_retention(now=T0 + 30 * 86400)  # 30 days later, with 14 days' retention
    assert memory.range(T0, modality="moment") == []


# -- slicing, grace, close, forget ------------------------------------------------------------------------


def test_a_slice_closes_only_after_its_grace_and_close_emits_the_rest():
    rng = np.random.default_rng(1)
    moments, out = sink(interval=10, grace=5)
    moments.put(image_item(T0 + 2, unit(rng)))
    moments.put(image_item(T0 + 14.9, unit(rng)))  # next slice, but the first one's grace (until T0+15) runs
    assert out == [] and moments.stats()["pending"] == 2
    moments.put(image_item(T0 + 15, unit(rng)))  # T0+10 + 5 s grace: the first slice closes
    assert [m.frame.ts_ns for m in out] == [T0 * NS]
    moments.put(image_item(T0 + 9, unit(rng)))  # too late for its slice: counted, left out
    st = moments.stats()
    assert st["late"] == 1 and st["emitted"] == 1 and st["pending"] == 1
    moments.close()  # a stop does not lose the last slice
    assert [m.frame.ts_ns for m in out] == [T0 * NS, (T0 + 10) * NS]
    assert moments.stats() == {"vectors": 3, "emitted": 2, "late": 1, "empty": 0, "forgotten": 0, "pending": 0}


def test_the_timer_closes_a_slice_when_nothing_else_arrives():
    rng = np.random.default_rng(2)
    clock = Clock(T0 + 3)
    moments, out = sink(interval=1, grace=1, clock=clock)
    moments.put(image_item(T0 + 0.5, unit(rng)))
    moments.start()
    try:
        wait_for(lambda: len(out) >= 1)  # the clock (T0+3) is past the slice's end (T0+1) and its 1 s grace
        assert len(out) == 1 and out[0].frame.ts_ns == T0 * NS
        moments.put(image_item(T0 + 3.2, unit(rng)))
        time.sleep(0.7)
        assert len(out) == 1  # its grace runs until T0+5
        clock.t = T0 + 5
        wait_for(lambda: len(out) >= 2)
        assert [m.frame.ts_ns for m in out] == [T0 * NS, (T0 + 3) * NS]
    finally:
        moments.close()


def test_fusion_averages_each_sense_first_and_weighs_it():
    rng = np.random.default_rng(3)
    a, b, c = unit(rng), unit(rng), unit(rng)
    moments, out = sink()
    for i in range(10):  # ten kept screen frames, all alike
        moments.put(image_item(T0 + 0.5 * i, a))
    moments.put(speech_item(T0 + 2, "hello", b))
    moments.put(image_item(T0 + 3, c, source="cam0"))
    d = unit(rng)
    moments.put(image_item(T0 + 4, d, source="query"))  # another image stream: weighs as much as cam0
    other = Embedding.of(screen_frame(T0 + 5), "effnet-lite0/1280", unit(rng, 16))  # not the text space
    moments.put(Encoded(screen_frame(T0 + 5), (other,)))
    moments.close()
    (m,) = out
    v = m.embeddings[0].vector
    assert moments.stats()["vectors"] == 13  # the other space's vector is not taken
    assert m.embeddings[0].extra["senses"] == "cam0,mic0#text,query,screen0"
    expected = a + 1.5 * b + c + d  # each stream's mean (unit length) times its kind's weight
    assert np.allclose(v, expected / np.linalg.norm(expected), atol=1e-6) and v.dtype == np.float32
    assert float(v @ b) > float(v @ a)  # 1.5 against 1.0, although the screen gave ten vectors


def test_weights_decide_and_a_slice_with_nothing_that_weighs_emits_nothing():
    rng = np.random.default_rng(4)
    a, b = unit(rng), unit(rng)
    moments, out = sink(weights={"image": 1.0, "audio": 0.0, "text": 0.0, "speech": 3.0})
    moments.put(image_item(T0 + 1, a))
    moments.put(speech_item(T0 + 2, "x", b))
    frame = screen_frame(T0 + 12)
    moments.put(text_item(frame, "only screen text, weight 0", unit(rng)))  # the next slice: nothing weighs
    moments.close()
    (m,) = out
    expected = (a + 3 * b) / np.linalg.norm(a + 3 * b)
    assert np.allclose(m.embeddings[0].vector, expected, atol=1e-6)
    assert m.embeddings[0].extra["senses"] == "mic0#text,screen0"
    assert moments.stats()["empty"] == 1


def test_its_own_moments_are_not_taken_back():
    rng = np.random.default_rng(5)
    moments, out = sink()
    moments.put(image_item(T0 + 1, unit(rng)))
    moments.close()
    before = moments.stats()
    moments.put(out[0])  # the result stage hands every sink the moment too
    assert moments.stats() == before and len(out) == 1


def test_forget_drops_the_open_slices_it_overlaps_and_no_others():
    rng = np.random.default_rng(6)
    moments, out = sink(interval=10, grace=100)
    for t in (T0 + 1, T0 + 11, T0 + 21, T0 + 31):
        moments.put(image_item(t, unit(rng)))
    assert moments.forget(T0 + 19.5, T0 + 20.5) == 2  # overlaps [T0+10, T0+20) and [T0+20, T0+30)
    assert moments.forget(T0 + 50, None) == 0
    moments.close()
    assert [m.frame.ts_ns for m in out] == [T0 * NS, (T0 + 30) * NS]
    assert moments.stats()["forgotten"] == 2
    moments, out = sink(grace=100)
    moments.put(image_item(T0 + 1, unit(rng)))
    assert moments.forget(None, T0 + 0.5) == 1 and (moments.close() or out) == []


def test_the_forget_op_drops_open_slices_before_deleting(tmp_path):
    """Service.forget: flush, then on_forget (the daemon drops open moment slices), then the delete."""
    rng = np.random.default_rng(7)
    memory = Memory(tmp_path / "data", 8, 0.1, False, 64, 100)
    moments, out = sink(grace=100)
    moments.put(image_item(time.time() - 1, unit(rng)))
    service = Service(f"ipc://{tmp_path}/q.sock", memory, [], lambda: {}, on_forget=moments.forget)
    try:
        reply = service.forget({"since": time.time() - 60})
        assert reply["count"] == 0 and moments.stats()["forgotten"] == 1
        moments.close()
        assert out == []
    finally:
        service.close()


def test_moments_go_through_the_result_stage_without_a_mailbox_or_a_latency(tmp_path):
    """A moment's source has no mailbox: never stale, no capture latency; every sink gets it once."""
    got: list[Encoded] = []

    class Recorder:
        def put(self, item: Encoded, thumb: str | None = None) -> None:
            got.append(item)

    boxes = Mailboxes()
    boxes.add("screen0")
    lat = Latencies({"image": Histogram()})
    holder: dict[str, FanOut] = {}
    moments = Moments(SPACE, 1.0, 0.0, WEIGHTS, lambda item: holder["f"].put(item), source=moment_source("lap"))
    fanout = holder["f"] = FanOut({"screen0": boxes}, Thumbnails(tmp_path / "t", 32), (Recorder(), moments), lat)
    fanout.start()
    rng = np.random.default_rng(8)
    now = int(time.time()) + 0.1  # the first two in one 1 s slice
    for dt in (0.0, 0.3, 2.5):  # the third closes the first slice (grace 0)
        frame = Frame("screen0", "image", np.zeros((8, 8, 3), np.uint8), int((now + dt) * NS), time.monotonic_ns())
        fanout.put(Encoded(frame, (Embedding.of(frame, SPACE, unit(rng)),)))
    assert fanout.flush(10)
    boxes.cut("screen0")  # a pause of screen0 does not make moments stale
    moments.close()
    assert fanout.flush(10)
    fanout.close()
    kinds = [(i.frame.modality, i.frame.source) for i in got]
    assert kinds.count(("moment", "lap.all")) == 2 and kinds.count(("image", "screen0")) == 3, kinds
    assert fanout.stats()["errors"] == 0 and len(fanout.recent_ms()) == 3  # no latency for the moments
    assert moments.stats()["vectors"] == 3


# -- config ---------------------------------------------------------------------------------------------------


def test_moments_config_defaults_and_overrides(tmp_path):
    cfg = load()
    assert cfg.moments.enabled and cfg.moments.interval_s == 10.0 and set(cfg.moments.weights) == set(KINDS)
    p = tmp_path / "c.toml"
    p.write_text("[moments]\ninterval_s = 5\n[moments.weights]\naudio = 0\n")
    mo = load(p).moments
    assert mo.interval_s == 5.0 and mo.weights["audio"] == 0.0 and mo.weights["speech"] == 1.5


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        ("[moments]\ninterval_s = 0.5\n", r"'moments\.interval_s' must be from 1 to 3600"),
        ("[moments]\ngrace_s = -1\n", r"'moments\.grace_s' must be >= 0"),
        ("[moments.weights]\nspeech = -1.0\n", r"'moments\.weights\.speech' must be >= 0"),
        ("[moments.weights]\nvideo = 1.0\n", r"unknown key 'moments\.weights\.video'"),
        ("[moments.weights]\nimage = 0\naudio = 0\ntext = 0\nspeech = 0\n", r"at least one weight must be > 0"),
        ("[moments]\nweights = 1.0\n", r"'moments\.weights' must be a table"),
        ("[camera]\nname = 'all'\n", r"source name 'all' is the moments' stream"),
    ],
)
def test_bad_moments_config_names_the_key(tmp_path, text, msg):
    p = tmp_path / "c.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=msg):
        load(p)
    p.write_text(text.replace("[camera]", "[moments]\nenabled = false\n[camera]"))
    if "camera" in text:
        assert not load(p).moments.enabled  # with moments off, "all" is a name like any


def test_agent_prefix_names_the_moments_stream(tmp_path):
    assert moment_source("") == "all" and moment_source("laptop") == "laptop.all"
    p = tmp_path / "c.toml"
    p.write_text("[store]\nagent = 'laptop'\n")
    assert load(p).screen.name == "laptop.screen0"  # the moments' "laptop.all" follows the same rule


def test_status_and_metrics_count_moments():
    from agent.status import Status
    from agent.telemetry.prom import DaemonCollector
    from tests.agent.test_status import SAMPLE

    on = {"state": "on", "interval_s": 10.0, "emitted": 12, "pending": 2, "late": 1, "forgotten": 3}
    st = Status.from_dict(SAMPLE | {"moments": on})
    got = {m.name: m.samples[0].value for m in DaemonCollector(lambda: st, Latencies({})).collect() if m.samples}
    assert (got["sensorium_moments_emitted"], got["sensorium_moments_late"], got["sensorium_moments_forgotten"]) == (
        12,
        1,
        3,
    )
