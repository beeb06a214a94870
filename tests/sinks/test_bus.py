"""Publisher and Subscriber over a real ZMQ ipc socket."""

import threading
import time

import numpy as np
import zmq

from encoders.records import Embedding, Encoded, Frame
from sinks import wire
from sinks.client import Subscriber
from sinks.publisher import Publisher


def encoded(n: int, dim: int = 8) -> Encoded:
    vec = np.random.default_rng(n).standard_normal(dim).astype(np.float32)
    vec /= np.linalg.norm(vec)
    frame = Frame("screen0", "image", np.zeros((2, 2, 3), np.uint8), 1_700_000_000_000_000_000 + n, n)
    emb = Embedding(
        frame.id, "screen0", "image", f"test/{dim}", vec, frame.ts_ns, n, ("tabby", "tiger cat"), (0.5, 0.2)
    )
    return Encoded(frame, (emb,))


def wait_connected(pub: Publisher, sub: Subscriber) -> None:
    """PUB/SUB has a slow-joiner window; publish probes until one arrives."""
    for _ in range(100):
        pub.publish_sys("sys.probe", {})
        if sub.recv(timeout=0.05) is not None:
            return
    raise AssertionError("subscriber never connected")


def test_message_has_the_documented_wire_format(tmp_path):
    endpoint = f"ipc://{tmp_path}/bus.sock"
    pub = Publisher(endpoint, 1000, 100, thumb_for=lambda f: f"/thumbs/{f.id}.jpg")
    pub.start()
    raw = zmq.Context.instance().socket(zmq.SUB)
    raw.setsockopt(zmq.SUBSCRIBE, b"emb.")
    raw.connect(endpoint)
    sub = Subscriber(endpoint, "")
    wait_connected(pub, sub)
    item = encoded(1)
    pub.put(item)
    assert raw.poll(5000)
    topic, header, vec = raw.recv_multipart()
    pub.close()
    raw.close(0)
    sub.close()
    assert topic == b"emb.image.screen0"
    h = __import__("json").loads(header)
    assert h["v"] == 1 and h["id"] == item.frame.id and h["space"] == "test/8" and h["dim"] == 8
    assert h["dtype"] == "float32" and h["labels"] == ["tabby", "tiger cat"] and h["source"] == "screen0"
    assert h["thumb"] == f"/thumbs/{item.frame.id}.jpg" and h["ts"] == item.frame.ts_ns / 1e9
    assert np.array_equal(np.frombuffer(vec, "<f4"), item.embeddings[0].vector)


def test_slow_subscriber_never_stalls_the_publisher_and_sees_gaps(tmp_path):
    endpoint = f"ipc://{tmp_path}/bus.sock"
    n = 20_000
    pub = Publisher(endpoint, send_hwm=50, queue_size=n + 10)
    pub.start()
    sub = Subscriber(endpoint, "", rcvhwm=50)
    wait_connected(pub, sub)
    items = [encoded(i, dim=256) for i in range(n)]
    producer_done = threading.Event()

    def produce():  # stands in for the inference callbacks feeding the publisher
        for it in items:
            pub.put(it)
        producer_done.set()

    t = threading.Thread(target=produce)
    t.start()
    received = []
    while len(received) < 20:  # a subscriber that reads one message every 50 ms
        msg = sub.recv(timeout=5)
        if msg is None:
            break
        received.append(msg)
        time.sleep(0.05)
    assert producer_done.wait(30), "put() blocked behind a slow subscriber"
    t.join()
    deadline = time.monotonic() + 30
    while pub.stats()["queued"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pub.stats()["sent"] >= n, pub.stats()  # the publisher thread kept sending; ZMQ dropped for the peer
    while (msg := sub.recv(timeout=0.5)) is not None:
        received.append(msg)
    pub.close()
    sub.close()
    assert sub.gaps > 0 and len(received) < n
    seqs = [m.seq for m in received if m.topic == "emb.image.screen0"]
    assert seqs == sorted(seqs)
    assert len(seqs) + sub.gaps == seqs[-1] - seqs[0] + 1  # every missing message is accounted for


def test_subscriber_counts_and_skips_garbage(tmp_path):
    endpoint = f"ipc://{tmp_path}/bus.sock"
    ctx = zmq.Context.instance()
    pub = ctx.socket(zmq.PUB)
    pub.bind(endpoint)
    sub = Subscriber(endpoint, "")
    good = wire.encode("emb.image.x", {k: 0 for k in wire.REQUIRED} | {"dtype": "float32", "dim": 2}, np.ones(2))
    got = None
    for _ in range(100):
        pub.send_multipart([b"emb.image.x", b"{not json", b"123"])
        pub.send_multipart([b"emb.image.x", b"{}", b"\x00" * 3])
        pub.send_multipart(good)
        got = sub.recv(timeout=0.05)
        if got is not None:
            break
    pub.close(0)
    sub.close()
    assert got is not None and got.vector.tolist() == [1.0, 1.0]
    assert sub.bad >= 2
