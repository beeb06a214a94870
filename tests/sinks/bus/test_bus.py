"""Publisher and Subscriber over a real ZMQ ipc socket."""

import threading
import time

import numpy as np
import zmq

from encoders.records import Embedding, Encoded, Frame
from sinks.bus import wire
from sinks.bus.publisher import Publisher
from sinks.client import Subscriber


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
    pub = Publisher(endpoint, 1000, 100)
    pub.start()
    raw = zmq.Context.instance().socket(zmq.SUB)
    raw.setsockopt(zmq.SUBSCRIBE, b"emb.")
    raw.connect(endpoint)
    sub = Subscriber(endpoint, "")
    wait_connected(pub, sub)
    item = encoded(1)
    pub.put(item, f"/thumbs/{item.frame.id}.jpg")
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
    pub.put(encoded(n, dim=256))  # a gap shows at the next message: make sure one comes after the drops
    while (msg := sub.recv(timeout=2)) is not None:
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


# -- faults (issue 6): a stuck subscriber, many subscribers, garbage on the query endpoint -------------------


def seqs_of(msgs: list) -> list[int]:
    return [m.seq for m in msgs if m.topic == "emb.image.screen0"]


def test_a_subscriber_that_never_reads_loses_only_its_own_messages(tmp_path):
    endpoint = f"ipc://{tmp_path}/bus.sock"
    n, chunk = 2000, 50
    pub = Publisher(endpoint, send_hwm=100, queue_size=n + 100)  # a burst over SNDHWM drops even for a fast peer
    pub.start()
    stuck = Subscriber(endpoint, "", rcvhwm=10)  # connects, then never reads while the bus runs
    reader = Subscriber(endpoint, "", rcvhwm=1000)
    wait_connected(pub, stuck)
    wait_connected(pub, reader)
    items = [encoded(i, dim=256) for i in range(n)]
    read: list = []
    for start in range(0, n, chunk):  # the reader keeps up: at most `chunk` messages in flight, < the HWMs
        for it in items[start : start + chunk]:
            pub.put(it)
        while len(seqs_of(read)) < start + chunk:
            msg = reader.recv(timeout=10)
            assert msg is not None, f"reader stalled after {len(read)} messages"
            read.append(msg)
    assert pub.stats()["dropped"] == 0 and pub.stats()["sent"] >= n  # the publisher never waited
    late = []  # it wakes up: what it holds, then the next message shows how much it missed
    while (msg := stuck.recv(timeout=0.5)) is not None:
        late.append(msg)
    pub.put(encoded(n))
    late.append(stuck.recv(timeout=10))
    pub.close()
    stuck.close()
    reader.close()
    seqs = seqs_of(read)
    assert seqs == list(range(n)) and reader.gaps_by_topic.get("emb.image.screen0", 0) == 0
    lost = stuck.gaps_by_topic["emb.image.screen0"]
    got = seqs_of(late)
    assert got[0] == 0 and got[-1] == n and 1 < len(got) < n and lost > 0
    assert len(got) + lost == n + 1  # every message it missed is counted as a gap
    print(f"stuck subscriber: got {len(got)} of {n}, {lost} counted as gaps; reader got all {n}")


def test_fifty_subscribers_all_get_every_message(tmp_path):
    endpoint = f"ipc://{tmp_path}/bus.sock"
    n = 200
    pub = Publisher(endpoint, send_hwm=1000, queue_size=1000)
    pub.start()
    subs = [Subscriber(endpoint, "") for _ in range(50)]
    pending = set(range(len(subs)))
    for _ in range(200):  # publish probes until every subscriber has heard one
        pub.publish_sys("sys.probe", {})
        for i in list(pending):
            if subs[i].recv(timeout=0.01) is not None:
                pending.discard(i)
        if not pending:
            break
    assert not pending, f"{len(pending)} subscribers never connected"
    for i in range(n):
        pub.put(encoded(i))
    try:
        for sub in subs:
            got = []
            while len(got) < n:
                msg = sub.recv(timeout=10)
                assert msg is not None, f"a subscriber stopped after {len(got)} messages"
                if msg.topic == "emb.image.screen0":
                    got.append(msg.seq)
            assert got == list(range(n)) and sub.gaps_by_topic.get("emb.image.screen0", 0) == 0
    finally:
        pub.close()
        for sub in subs:
            sub.close()


def test_garbage_frames_on_the_query_endpoint_are_counted_and_it_keeps_answering(tmp_path):
    import json

    from agent.query.service import MAX_MSG, MAX_REQUEST, Service
    from sinks.client import request
    from sinks.memory import Memory

    endpoint = f"ipc://{tmp_path}/query.sock"
    service = Service(endpoint, Memory(tmp_path / "data", 8, 0.1, False, 32, 10), [], lambda: {"up": True})
    service.start()
    ctx = zmq.Context.instance()
    dealer = ctx.socket(zmq.DEALER)  # speaks raw frames: no REQ envelope is added for it
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(endpoint)
    answered = [  # (frames, what the error reply says)
        ([b"", b"\xff\xfe\x00\x81binary"], "codec|Expecting value|JSON"),
        ([b""], "one JSON frame .*got 0 frames"),
        ([b"", b"{}", b"{}", b"{}"], "at most one binary frame .*got 3 frames"),
        ([b"", b" " * (MAX_REQUEST + 1)], f"at most {MAX_REQUEST}"),
        ([b"", json.dumps({"op": 5}).encode()], "unknown op"),
        ([b"", b"[1, 2]"], "JSON object"),
    ]
    try:
        dealer.send_multipart([b"no envelope at all"])  # nobody to address an answer to: counted only
        for frames, error in answered:
            dealer.send_multipart(frames)
            assert dealer.poll(10_000), f"no answer to {frames[:2]!r:.60}"
            empty, reply = dealer.recv_multipart()
            assert empty == b"" and not json.loads(reply)["ok"]
            assert __import__("re").search(error, json.loads(reply)["error"]), json.loads(reply)["error"]
        huge = ctx.socket(zmq.DEALER)  # a frame over MAX_MSG: ZMQ drops that peer before the service sees it
        huge.setsockopt(zmq.LINGER, 0)
        huge.connect(endpoint)
        huge.send_multipart([b"", b"\0" * (MAX_MSG + 1)])
        assert not huge.poll(500)
        huge.close(0)
        assert request(endpoint, {"op": "status"}, timeout=10)["status"] == {"up": True}
        assert not dealer.poll(0)  # the envelope-less message got no reply
    finally:
        dealer.close(0)
        service.close()
    stats = service.stats()
    assert stats["bad_frames"] == 4, stats  # no envelope, 0 frames, 2 frames, too big
    assert stats["bad_requests"] == 6 and stats["served"] == 1, stats


def test_the_readme_subscriber_works_as_printed(tmp_path):
    """The plain pyzmq + numpy example in README, run as is (its `while True` bounded to 3 messages)."""
    import os
    import re
    import subprocess
    import sys

    from tests.support.env import ROOT

    readme = (ROOT / "README.md").read_text()
    code = re.search(r"A subscriber in plain pyzmq \+ numpy:\n\n```python\n(.*?)```", readme, re.S).group(1)
    assert len(code.strip().splitlines()) <= 15 and code.count("while True:") == 1
    (tmp_path / "sensorium").mkdir()
    pub = Publisher(f"ipc://{tmp_path}/sensorium/bus.sock", 1000, 1000)
    pub.start()
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code.replace("while True:", "for _ in range(3):")], env=env, stdout=subprocess.PIPE
    )
    try:
        for i in range(3000):  # keep publishing until the example has read its 3 messages (slow joiner)
            pub.put(encoded(i))
            if proc.poll() is not None:
                break
            time.sleep(0.01)
        out = proc.communicate(timeout=10)[0].decode().splitlines()
    finally:
        proc.kill()
        pub.close()
    assert proc.returncode == 0 and len(out) == 3, out
    assert all(line.startswith("emb.image.screen0 ") and "test/8 ['tabby', 'tiger cat'] (8,)" in line for line in out)
