"""sinks.client against real sockets: import hygiene, gap detection, backfill from a real Memory then live.

The live side is a raw XPUB socket speaking the wire format: unlike PUB it tells the test when the
subscription has arrived, so "published after the subscriber connected" is exact, with no sleeps.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import zmq

from agent.query.service import Service
from encoders.records import Embedding, Encoded, Frame
from sinks.bus import wire
from sinks.client import Subscriber, subscribe
from sinks.memory import Memory
from tests.support.env import ROOT

T0 = 1_763_900_000.0


def test_importing_the_client_pulls_in_neither_openvino_nor_torch():
    code = (
        "import sys, sinks.client, sinks.bus.keys\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('openvino', 'torch', 'chromadb', 'cv2'))\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def vector(i: int, dim: int = 4) -> np.ndarray:
    v = np.random.default_rng(i).standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def item(i: int, source: str = "screen0") -> Encoded:
    f = Frame(source, "image", np.zeros((4, 4, 3), np.uint8), int((T0 + i) * 1e9), i)
    return Encoded(f, (Embedding(f.id, source, "image", "t/4", vector(i), f.ts_ns, i, (f"l{i}",), (0.5,)),))


def header(i: int, seq: int) -> dict:
    it = item(i)
    return {
        "v": 1,
        "seq": seq,
        "id": it.frame.id,
        "ts": it.frame.ts_ns / 1e9,
        "source": "screen0",
        "modality": "image",
        "space": "t/4",
        "dim": 4,
        "dtype": "float32",
        "labels": [f"l{i}"],
        "thumb": None,
    }


@pytest.fixture
def xpub(tmp_path):
    sock = zmq.Context.instance().socket(zmq.XPUB)
    sock.setsockopt(zmq.LINGER, 0)
    endpoint = f"ipc://{tmp_path}/bus.sock"
    sock.bind(endpoint)
    yield sock, endpoint
    sock.close(0)


def subscribed(sock: zmq.Socket) -> bytes:
    assert sock.poll(5000), "no subscription arrived"
    return sock.recv()


def send(sock: zmq.Socket, i: int, seq: int, topic: str = "emb.image.screen0") -> None:
    sock.send_multipart(wire.encode(topic, header(i, seq), vector(i)))


def test_gaps_are_counted_per_topic(xpub):
    sock, endpoint = xpub
    sub = Subscriber(endpoint, "emb.")
    assert subscribed(sock) == b"\x01emb."
    for seq in (0, 1, 2, 5, 6):  # 3 and 4 lost
        send(sock, seq, seq)
    for seq in (0, 4):  # another topic counts on its own: 1-3 lost there
        send(sock, seq, seq, "emb.audio.mic0")
    sock.send_multipart([b"emb.image.screen0", b"\xff not json", b"1234"])  # counted as bad, not as a gap
    got = [sub.recv(timeout=5) for _ in range(7)]
    assert sub.recv(timeout=0.2) is None
    sub.close()
    assert [m.seq for m in got] == [0, 1, 2, 5, 6, 0, 4]
    assert sub.gaps == 5 and sub.gaps_by_topic == {"emb.image.screen0": 2, "emb.audio.mic0": 3} and sub.bad == 1
    m = got[0]  # typed: header fields as attributes, the vector as numpy
    assert m.id == item(0).frame.id and m.labels == ["l0"] and m.space == "t/4" and m.ts == T0 and not m.backfill
    assert m.vector.dtype == np.float32 and np.array_equal(m.vector, vector(0))


@pytest.fixture
def stored(tmp_path):
    """A Memory holding items 0-4 of screen0 and item 100 of cam0, and a Service answering backfill for it."""
    mem = Memory(tmp_path / "data", 8, 0.1, False, 32, 100)
    mem.start()
    for i in range(5):
        mem.put(item(i))
    mem.put(item(100, "cam0"))
    mem.close()
    endpoint = f"ipc://{tmp_path}/query.sock"
    service = Service(endpoint, mem, [], lambda: {})
    service.start()
    yield endpoint
    service.close()


def test_late_joiner_backfills_then_goes_live_without_duplicates(xpub, stored):
    sock, endpoint = xpub
    sub = subscribe(endpoint, "emb.image.screen0", since=T0 + 1, query_endpoint=stored)
    assert subscribed(sock) == b"\x01emb.image.screen0"
    for i in range(3, 8):  # published while the client reads the store: 3 and 4 are stored as well
        send(sock, i, i)
    got = [sub.recv(timeout=5) for _ in range(7)]
    assert sub.recv(timeout=0.2) is None
    sub.close()
    assert [m.id for m in got] == [item(i).frame.id for i in range(1, 8)]
    assert [m.backfill for m in got] == [True] * 4 + [False] * 3
    assert all(np.allclose(m.vector, vector(i), atol=1e-6) for m, i in zip(got, range(1, 8), strict=True))
    assert got[0].seq is None and got[4].seq == 5 and sub.gaps == 0
    assert got[0].topic == "emb.image.screen0" and got[0].labels == ["l1"]


def test_backfill_follows_the_prefix_and_pages(xpub, stored):
    _, endpoint = xpub
    audio = subscribe(endpoint, "emb.audio", since=T0, query_endpoint=stored)
    assert audio.recv(timeout=1) is None  # nothing stored under emb.audio, nothing live
    audio.close()
    from sinks.client import backfill

    got = list(backfill(stored, T0, page=2))  # pages of 2 rows: 0-1, 1-2 (1 again, skipped), ...
    ids = [item(i).frame.id for i in range(5)] + [item(100, "cam0").frame.id]
    assert [m.id for m in got] == ids and all(m.backfill for m in got)
    cam = list(backfill(stored, T0, prefix="emb.image.cam0", page=2))  # pages of screen0 rows come first
    assert [(m.id, m.topic) for m in cam] == [(ids[-1], "emb.image.cam0")]
    with pytest.raises(ValueError, match="query_endpoint"):
        subscribe(endpoint, "emb.", since=T0)


def test_tail_since_on_a_curve_daemon_backfills_then_goes_live(xvfb, home, tmp_path):
    """The real daemon with CURVE forced on for both endpoints (127.0.0.1): `sensorium tail --since` with
    this machine's keys gets stored frames first, then live ones, nothing twice; a client without keys
    gets no answer."""
    import json
    import signal
    import time

    import skimage.data

    from agent import config
    from sinks.bus.keys import ClientKeys
    from sinks.client import QueryError, request
    from tests.support.daemon import ONLY_SCREEN
    from tests.support.env import sensorium
    from tests.support.net import free_port

    xvfb.show(skimage.data.chelsea())
    bus, query = (f"tcp://127.0.0.1:{free_port()}" for _ in range(2))
    cfg_path = tmp_path / "cfg.toml"
    cfg_path.write_text(
        "[device]\nname = 'CPU'\n[screen]\nfps = 4.0\nforce_keep_s = 1.0\n[store]\nflush_s = 0.2\n"
        f"[bus]\nendpoint = '{bus}'\ncurve = true\n[query]\nendpoint = '{query}'\ncurve = true\n"
        "[metrics]\nport = 0\n" + ONLY_SCREEN
    )
    sensorium("--config", str(cfg_path), "keys", "generate")
    keys = ClientKeys.load(config.load(cfg_path).daemon.keys_dir)
    with open(tmp_path / "daemon.log", "w") as log:
        run = [sys.executable, "-m", "agent", "--config", str(cfg_path), "run"]
        proc = subprocess.Popen(run, stdout=log, stderr=log, cwd=ROOT)
    try:
        stored, deadline = 0, time.monotonic() + 90
        while stored < 4:  # two frames in two spaces
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "daemon.log").read_text()
            try:
                stored = request(query, {"op": "status"}, timeout=0.5, keys=keys)["status"]["memory"]["stored"]
            except QueryError:
                time.sleep(0.2)
        with pytest.raises(QueryError, match="no answer"):
            request(query, {"op": "ping"}, timeout=0.5)  # no keys: nothing
        st = sensorium("--config", str(cfg_path), "status", "--json")  # the CLI uses this machine's key
        assert json.loads(st.stdout)["sources"]["screen0"]["state"] == "running"
        cmd = [sys.executable, "-m", "agent", "--config", str(cfg_path), "tail", "emb.image", "--since", "10m"]
        tail = subprocess.Popen([*cmd, "--json", "--timeout", "30"], stdout=subprocess.PIPE, cwd=ROOT)
        lines = []
        try:
            while sum(not line["backfill"] for line in lines) < 4:  # read until four live messages came
                raw = tail.stdout.readline()
                assert raw, f"tail ended after {len(lines)} lines"
                lines.append(json.loads(raw))
        finally:
            tail.kill()
            tail.wait()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    flags = [line["backfill"] for line in lines]
    assert flags[:stored] == [True] * stored and flags[-1] is False, flags  # stored first, then live
    assert flags == sorted(flags, reverse=True)
    keys_seen = [(line["id"], line["space"]) for line in lines]
    assert len(set(keys_seen)) == len(keys_seen)  # nothing twice
    assert all(abs(line["norm"] - 1) < 1e-4 for line in lines)
