"""Text memories on the bus: emb.text.<source>, their own id, the frame they were read from, and their words
only where the bus stays on this machine or is CURVE-encrypted (real ZMQ over ipc and tcp)."""

from __future__ import annotations

import numpy as np
import pytest
import zmq

from encoders.records import Embedding, Encoded, Frame, text_id
from sinks.bus import wire
from sinks.bus.keys import ClientKeys, CurveServer, generate
from sinks.bus.publisher import Publisher, words_may_travel
from sinks.client import Subscriber
from tests.support.net import free_port

TS_NS = 1_700_000_000_000_000_000


def screen_text(words: str = "Invoice #4711 from Müller") -> Encoded:
    """A screen frame's image vector and one text memory read from it."""
    frame = Frame("screen0", "image", np.zeros((2, 2, 3), np.uint8), TS_NS, 0)
    vec = np.ones(4, np.float32) / 2
    image = Embedding.of(frame, "img/4", vec, labels=("web site",), scores=(0.5,))
    text = Embedding(
        frame.id, "screen0", "text", "minilm/4", vec, TS_NS, 0, text=words, key=text_id("screen0", TS_NS, 0)
    )
    return Encoded(frame, (image, text))


def receive(pub: Publisher, sub: Subscriber, item: Encoded, want: int) -> list[wire.Message]:
    """Publish `item` until `want` of its messages came through (PUB/SUB joins late)."""
    for _ in range(100):
        pub.put(item, "/thumbs/x.jpg")
        got = []
        while (msg := sub.recv(timeout=0.05)) is not None:
            got.append(msg)
        if len(got) >= want:
            return got[:want]
    raise AssertionError("nothing arrived")


def test_a_text_memory_has_its_topic_id_frame_and_words_on_a_local_bus(tmp_path):
    endpoint = f"ipc://{tmp_path}/bus.sock"
    pub = Publisher(endpoint, 1000, 1000)
    pub.start()
    sub = Subscriber(endpoint, "emb.")
    try:
        item = screen_text()
        image, text = sorted(receive(pub, sub, item, 2), key=lambda m: m.modality)
    finally:
        pub.close()
        sub.close()
    assert text.topic == "emb.text.screen0" and text.id == f"screen0#text-{TS_NS + 1}" and text.id != item.frame.id
    assert text.frame == item.frame.id and text.text == "Invoice #4711 from Müller" and text.redacted is None
    assert text.thumb == "/thumbs/x.jpg" and text.space == "minilm/4" and text.vector is not None
    assert image.topic == "emb.image.screen0" and image.id == item.frame.id
    assert "text" not in image.header and "frame" not in image.header  # other memories' headers are unchanged


def test_words_travel_off_host_only_with_curve(tmp_path):
    keys = tmp_path / "keys"
    generate(keys)
    ctx = zmq.Context()
    curve = CurveServer(keys, ctx).start()
    port = free_port()
    pub = Publisher(f"tcp://0.0.0.0:{port}", 1000, 1000, ctx=ctx, curve=curve)  # off-host: allowed with CURVE
    pub.start()
    sub = Subscriber(f"tcp://127.0.0.1:{port}", "emb.text.", ctx=ctx, keys=ClientKeys.load(keys))
    try:
        (msg,) = receive(pub, sub, screen_text(), 1)
    finally:
        pub.close()
        sub.close()
        curve.stop()
        ctx.term()
    assert msg.text == "Invoice #4711 from Müller" and msg.redacted is None


@pytest.mark.parametrize(
    ("endpoint", "curve", "travel"),
    [
        ("ipc:///run/user/1000/sensorium/bus.sock", False, True),
        ("inproc://bus", False, True),
        ("tcp://127.0.0.1:5555", False, True),
        ("tcp://localhost:5555", False, True),
        ("tcp://[::1]:5555", False, True),
        ("tcp://0.0.0.0:5555", True, True),
        ("tcp://0.0.0.0:5555", False, False),  # refused at bind anyway (keys.check_bind)
        ("tipc://{5560,0,0}", False, False),  # binds in the clear and reaches other nodes of the cluster
        ("tipc://{5560,0,0}", True, True),
    ],
)
def test_which_endpoints_carry_the_words(endpoint, curve, travel):
    assert words_may_travel(endpoint, object() if curve else None) is travel
    assert Publisher(endpoint, 10, 10).redact is (not words_may_travel(endpoint, None))


def test_a_transcript_carries_its_extra_metadata_and_other_vectors_do_not(tmp_path):
    endpoint = f"ipc://{tmp_path}/bus.sock"
    pub = Publisher(endpoint, 1000, 1000)
    pub.start()
    sub = Subscriber(endpoint, "emb.")
    frame = Frame("mic0", "audio", np.zeros(0, np.float32), TS_NS, 0)
    vec = np.ones(4, np.float32) / 2
    extra = {"start": "1700000000.000", "end": "1700000002.480", "language": "en", "confidence": "0.912"}
    audio = Embedding.of(frame, "logmel/4", vec, ("Speech",), (0.9,), extra={"speech_prob": "0.9"})
    said = Embedding(frame.id, "mic0", "text", "m/4", vec, TS_NS, 0, extra=extra, text="hello", key="mic0#text-1")
    try:
        got = sorted(receive(pub, sub, Encoded(frame, (audio, said)), 2), key=lambda m: m.modality)
    finally:
        pub.close()
        sub.close()
    heard, text = got
    assert text.topic == "emb.text.mic0" and text.extra == extra and text.header["extra"] == extra
    assert heard.extra == {} and "extra" not in heard.header  # an audio vector's header is unchanged


def test_a_redacted_header_says_why_and_decodes():
    h = wire.header("s#text-2", 1.0, "s", "text", "m/4", 4, [], None, frame="s-1", text="secret", redact=True)
    assert h["text"] is None and h["redacted"] == "transport" and h["frame"] == "s-1"
    msg = wire.decode([bytes(p) for p in wire.encode("emb.text.s", h | {"seq": 0}, np.ones(4, np.float32))])
    assert msg.text is None and msg.redacted == "transport" and msg.frame == "s-1"
    assert "secret" not in bytes(wire.encode("emb.text.s", h, None)[1]).decode()
