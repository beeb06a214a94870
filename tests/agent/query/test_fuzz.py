"""Fuzz the query/control endpoint (hypothesis): a real Service on an ipc socket, over a real Memory (Chroma)
and the built MiniLM IR, asked over a real ZMQ REQ socket.

Whatever arrives, the reply is one JSON object; a malformed request gets `ok: false` with a reason (never an
"internal error", which would mean the input reached code that did not expect it); and the service still
answers ping afterwards.

Two services: requests whose op changes state (pause, resume, forget: a fuzzed `forget` may delete every row)
go to a scratch one; everything else goes to one whose three rows must survive every example, checked after
each. Examples are random; a failure prints its `@reproduce_failure` blob (print_blob) to replay it exactly,
and `pytest --hypothesis-seed=N` replays a whole run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import zmq
from hypothesis import HealthCheck, example, given, settings
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
    max_examples=200,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
KEYS = (
    "op", "text", "k", "since", "until", "modality", "source", "for", "image", "image_b64", "b64", "like",
    "older_than", "limit", "_blob", "id", "at", "window", "elsewhere",
)  # fmt: skip
OPS = ("query", "backfill", "embed", "around", "status", "ping", "pause", "resume", "forget")
MUTATING = ("pause", "resume", "forget")  # sent to the scratch service
ROWS = ("a cat on a sofa", "a cup of coffee", "a rocket launch")

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

    def ask(self, raw: bytes, *more: bytes) -> dict:
        self.sock.send_multipart([raw, *more])
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


@dataclass
class Served:
    svc: Service
    client: Endpoint
    memory: Memory


def serve(root: Path, text: TextEncoder) -> Served:
    """A Service over its own Memory holding ROWS, one minute apart."""
    memory = Memory(root / "data", 8, 0.1, False, 64, 100)
    memory.start()
    for i, words in enumerate(ROWS):
        frame = Frame("screen0", "image", np.zeros((2, 2, 3), np.uint8), int((T0 + 60 * i) * 1e9), i)
        emb = Embedding(frame.id, "screen0", "image", text.space, text.encode(words), frame.ts_ns, i, (words,))
        memory.put(Encoded(frame, (emb,)))
    screen = ScreenSource("screen0", 1, 1.0, ChangeGate(2, 60), lambda f: None)  # real, never started
    svc = Service(f"ipc://{root}/query.sock", memory, [text], lambda: {"uptime_s": 1.0}, [screen])
    svc.start()
    return Served(svc, Endpoint(svc.endpoint), memory)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Iterator[tuple[Served, Served]]:
    """(kept, scratch): kept answers everything but MUTATING ops and must keep its rows; scratch takes those."""
    runtime = Runtime(RuntimeConfig("CPU", "LATENCY", 1, False, model_cache / "ov-cache"))
    text = TextEncoder(runtime, ModelStore(model_cache).require("minilm-l6"))
    both = serve(tmp_path_factory.mktemp("kept"), text), serve(tmp_path_factory.mktemp("scratch"), text)
    kept = both[0]
    deadline = time.monotonic() + 30
    while kept.memory.count() < len(ROWS):  # rows are written on the writer thread
        assert time.monotonic() < deadline, "the fixture's rows were not stored within 30 s"
        time.sleep(0.05)
    yield both
    for s in both:
        s.client.sock.close(0)
        s.svc.close()
        s.memory.close()


def target(services: tuple[Served, Served], body: object) -> Served:
    """The scratch service for a request (a dict, or raw bytes that parse as one) whose op is MUTATING."""
    if isinstance(body, bytes):
        try:
            body = json.loads(body)
        except (ValueError, RecursionError):  # the service parses it the same way: nothing will run it
            return services[0]
    return services[1] if isinstance(body, dict) and body.get("op") in MUTATING else services[0]


def ask(services: tuple[Served, Served], body: object, *more: bytes) -> dict:
    """Send `body` (bytes as they are, anything else as JSON) and `more` frames to its service; then that service
    still answers ping, and the kept service still holds its rows."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    served = target(services, body)
    reply = served.client.ask(raw, *more)
    if not reply["ok"]:
        assert not reply["error"].startswith("internal error"), (body, reply)
    assert served.client.ask(b'{"op": "ping"}') == {"ok": True}
    assert services[0].memory.count() == len(ROWS), ("the kept service lost rows", body, reply)
    return reply


def refused(services: tuple[Served, Served], body: object) -> str:
    reply = ask(services, body)
    assert reply["ok"] is False, (body, reply)
    return reply["error"]


@FUZZ
@given(raw=st.binary(max_size=300))
def test_random_bytes_get_an_error_reply(services, raw):
    ask(services, raw)


@FUZZ
@given(
    body=st.fixed_dictionaries({"op": st.sampled_from(OPS), "image": st.just(True) | json_values})
    | st.dictionaries(st.sampled_from(KEYS), json_values, max_size=4),
    blobs=st.lists(st.binary(max_size=300), min_size=1, max_size=3),
)
def test_binary_frames_after_the_json_are_answered(services, body, blobs):
    """One binary frame is an image's bytes (refused here unless an image op decodes it); more are refused."""
    svc = target(services, body).svc
    before = svc.bad_frames
    reply = ask(services, body, *blobs)
    assert svc.bad_frames == before + (len(blobs) > 1)
    if len(blobs) > 1:
        assert "at most one binary frame" in reply["error"], reply
    elif reply["ok"]:  # only an op that ignores images may take the frame, and only with "image": true
        assert body.get("op") not in ("query", "embed") and body.get("image") is True, (body, reply)


@FUZZ
@given(body=st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=10), json_values, max_size=6))
def test_random_objects_are_answered_and_never_crash_a_handler(services, body):
    ask(services, body)


@FUZZ
@given(
    op=st.sampled_from(OPS),
    field=st.sampled_from(KEYS),
    value=json_values,
)
@example(op="forget", field="since", value=-7.3e12)  # the two that once emptied the shared store (issue 21)
@example(op="forget", field="since", value=501)
@example(op="forget", field="older_than", value=0)
def test_known_ops_with_any_field_value_are_answered(services, op, field, value):
    body = {"op": op, field: value}
    if op in ("query", "embed") and field != "text":
        body["text"] = "a cat"
    ask(services, body)


@FUZZ
@given(k=st.integers(min_value=MAX_K + 1) | st.integers(max_value=0) | st.floats() | st.text() | st.booleans())
def test_bad_or_huge_k_is_refused(services, k):
    assert "k must be" in refused(services, {"op": "query", "text": "a cat", "k": k})


@FUZZ
@given(since=st.floats(-1e12, 1e12), gap=st.floats(min_value=1e-3, max_value=1e9))
def test_reversed_time_ranges_are_refused(services, since, gap):
    refused(services, {"op": "query", "text": "a cat", "since": since + gap, "until": since})


@FUZZ
@given(op=st.text(max_size=20).filter(lambda s: s not in OPS) | st.integers() | st.none() | st.lists(st.text()))
def test_unknown_ops_are_refused(services, op):
    assert "unknown op" in refused(services, {"op": op})


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
def test_malformed_requests_are_refused_with_a_reason(services, raw):
    svc = target(services, raw).svc
    before = svc.bad_requests
    refused(services, raw)
    assert svc.bad_requests == before + 1


def test_valid_requests_still_work_after_the_fuzzing(services):
    kept, scratch = services
    hits = kept.client.ask(json.dumps({"op": "query", "text": "a kitten", "k": 3}).encode())
    assert hits["ok"] and hits["results"][0]["labels"] == ["a cat on a sofa"], hits
    assert len(hits["results"]) == len(ROWS)
    # the scratch service took every fuzzed pause/resume/forget and still does what a valid one asks
    assert scratch.client.ask(b'{"op": "resume"}') == {"ok": True, "resumed": ["screen0"]}
    gone = scratch.client.ask(json.dumps({"op": "forget", "since": 0}).encode())
    assert gone["ok"] and scratch.memory.count() == 0, gone
