"""Fuzz the query/control endpoint (hypothesis): a real Service on an ipc socket, over a real Memory (Chroma)
and the built MiniLM IR, asked over a real ZMQ REQ socket.

Whatever arrives, the reply is one JSON object; a malformed request gets `ok: false` with a reason (never an
"internal error", which would mean the input reached code that did not expect it); and the service still
answers ping afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.pipeline.gate import ChangeGate
from agent.query.service import MAX_K, Service
from agent.sources.screen import ScreenSource
from encoders.modelstore import ModelStore
from encoders.records import Embedding, Encoded, Frame
from encoders.runtime import Runtime, RuntimeConfig
from encoders.text import TextEncoder
from sinks.memory import Memory

T0 = 1_763_900_000.0
FUZZ = settings(
    max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
KEYS = ("op", "text", "k", "since", "until", "modality", "source", "for", "image", "like", "older_than", "limit")
OPS = ("query", "backfill", "status", "ping", "pause", "resume", "forget")

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
)


class Endpoint:
    """A REQ client that survives a missing reply (it would otherwise be stuck in the wrong state)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.ctx = zmq.Context.instance()
        self.sock = self._open()

    def _open(self) -> zmq.Socket:
        s = self.ctx.socket(zmq.REQ)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RCVTIMEO, 15000)
        s.connect(self.endpoint)
        return s

    def ask(self, raw: bytes) -> dict:
        self.sock.send(raw)
        try:
            parts = self.sock.recv_multipart()
        except zmq.Again:
            self.sock.close(0)
            self.sock = self._open()
            raise AssertionError(f"no reply to {raw[:200]!r}") from None
        reply = json.loads(parts[0])
        assert isinstance(reply, dict) and isinstance(reply.get("ok"), bool), reply
        if not reply["ok"]:
            assert isinstance(reply.get("error"), str) and reply["error"], reply
        return reply

    def refused(self, body: object) -> str:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        reply = self.ask(raw)
        assert reply["ok"] is False, (body, reply)
        assert not reply["error"].startswith("internal error"), (body, reply)
        return reply["error"]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[tuple[Service, Endpoint]]:
    root = tmp_path_factory.mktemp("fuzz")
    runtime = Runtime(RuntimeConfig("CPU", "LATENCY", 1, False, model_cache / "ov-cache"))
    text = TextEncoder(runtime, ModelStore(model_cache).require("minilm-l6"))
    memory = Memory(root / "data", 8, 0.1, False, 64, 100)
    memory.start()
    for i, words in enumerate(("a cat on a sofa", "a cup of coffee", "a rocket launch")):
        frame = Frame("screen0", "image", np.zeros((2, 2, 3), np.uint8), int((T0 + 60 * i) * 1e9), i)
        emb = Embedding(frame.id, "screen0", "image", text.space, text.encode(words), frame.ts_ns, i, (words,))
        memory.put(Encoded(frame, (emb,)))
    screen = ScreenSource("screen0", 1, 1.0, ChangeGate(2, 60), lambda f: None)  # real, never started
    svc = Service(f"ipc://{root}/query.sock", memory, [text], lambda: {"uptime_s": 1.0}, [screen])
    svc.start()
    client = Endpoint(svc.endpoint)
    yield svc, client
    client.sock.close(0)
    svc.close()
    memory.close()


def still_answers(client: Endpoint) -> None:
    assert client.ask(b'{"op": "ping"}') == {"ok": True}


@FUZZ
@given(raw=st.binary(max_size=300))
def test_random_bytes_get_an_error_reply(service, raw):
    _, client = service
    reply = client.ask(raw)
    if not reply["ok"]:
        assert not reply["error"].startswith("internal error"), (raw, reply)
    still_answers(client)


@FUZZ
@given(body=st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=10), json_values, max_size=6))
def test_random_objects_are_answered_and_never_crash_a_handler(service, body):
    _, client = service
    reply = client.ask(json.dumps(body).encode())
    if not reply["ok"]:
        assert not reply["error"].startswith("internal error"), (body, reply)
    still_answers(client)


@FUZZ
@given(
    op=st.sampled_from(OPS),
    field=st.sampled_from(("text", "k", "since", "until", "modality", "source", "for", "older_than", "image", "like")),
    value=json_values,
)
def test_known_ops_with_any_field_value_are_answered(service, op, field, value):
    _, client = service
    body = {"op": op, field: value}
    if op == "query" and field != "text":
        body["text"] = "a cat"
    reply = client.ask(json.dumps(body).encode())
    if not reply["ok"]:
        assert not reply["error"].startswith("internal error"), (body, reply)
    still_answers(client)


@FUZZ
@given(k=st.integers(min_value=MAX_K + 1) | st.integers(max_value=0) | st.floats() | st.text() | st.booleans())
def test_bad_or_huge_k_is_refused(service, k):
    _, client = service
    assert "k must be" in client.refused({"op": "query", "text": "a cat", "k": k})


@FUZZ
@given(since=st.floats(-1e12, 1e12), gap=st.floats(min_value=1e-3, max_value=1e9))
def test_reversed_time_ranges_are_refused(service, since, gap):
    _, client = service
    client.refused({"op": "query", "text": "a cat", "since": since + gap, "until": since})


@FUZZ
@given(op=st.text(max_size=20).filter(lambda s: s not in OPS) | st.integers() | st.none() | st.lists(st.text()))
def test_unknown_ops_are_refused(service, op):
    _, client = service
    assert "unknown op" in client.refused({"op": op})


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"null",
        b"[1, 2]",
        b'"op"',
        b"{",
        b"\xff\xfe\x00",
        b'{"op": "query", "text": "a cat", "since": NaN}',
        b'{"op": "query", "text": "a cat", "until": Infinity}',
        b'{"op": "query", "text": "a cat", "k": 1e400}',
        b"[" * 100_000,  # nesting deeper than the JSON parser's recursion limit
        b'{"op": "query", "text": "' + b"x" * 5000 + b'"}',
        b'{"op": "pause", "for": -1}',
        b'{"op": "pause", "source": "nope"}',
    ],
)
def test_malformed_requests_are_refused_with_a_reason(service, raw):
    svc, client = service
    before = svc.bad_requests
    client.refused(raw)
    assert svc.bad_requests == before + 1
    still_answers(client)


def test_valid_requests_still_work_after_the_fuzzing(service):
    _, client = service
    hits = client.ask(json.dumps({"op": "query", "text": "a kitten", "k": 3}).encode())
    assert hits["ok"] and hits["results"][0]["labels"] == ["a cat on a sofa"], hits
