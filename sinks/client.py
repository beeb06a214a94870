"""Client library for other processes: subscribe to the bus, query the daemon.

Imports only pyzmq, numpy and the wire format (never openvino or torch), so any tool can use it:

    for msg in Subscriber("ipc:///run/user/1000/sensorium/bus.sock", "emb.image"):
        print(msg.topic, msg.header["labels"], msg.vector.shape)
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import zmq

from .wire import Message, WireError, decode


class QueryError(RuntimeError):
    """The daemon answered with an error, or did not answer in time."""


class Rejected(QueryError):
    """The daemon answered and refused the request (bad arguments), as opposed to not answering."""


class Subscriber:
    """SUB socket with gap detection: `gaps` counts messages the publisher sent that we never saw."""

    def __init__(self, endpoint: str, prefix: str = "", rcvhwm: int = 1000, ctx: zmq.Context | None = None) -> None:
        self._ctx = ctx or zmq.Context.instance()
        self.sock = self._ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.RCVHWM, rcvhwm)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SUBSCRIBE, prefix.encode())
        self.sock.connect(endpoint)
        self.last_seq: dict[str, int] = {}  # per topic: seq counts per topic on the publisher
        self.gaps = 0  # messages missed, from seq jumps
        self.bad = 0  # frames that did not decode

    def recv(self, timeout: float | None = None) -> Message | None:
        """Next valid message, or None on timeout (seconds). Malformed messages are counted and skipped."""
        ms = None if timeout is None else int(timeout * 1000)
        while True:
            if not self.sock.poll(ms):
                return None
            parts = self.sock.recv_multipart()
            try:
                msg = decode(parts)
            except WireError:
                self.bad += 1
                continue
            seq = msg.header.get("seq")
            if isinstance(seq, int):
                last = self.last_seq.get(msg.topic)
                if last is not None and seq > last + 1:
                    self.gaps += seq - last - 1
                self.last_seq[msg.topic] = seq
            return msg

    def __iter__(self) -> Iterator[Message]:
        while True:
            msg = self.recv()
            if msg is not None:
                yield msg

    def close(self) -> None:
        self.sock.close(0)


def request(endpoint: str, body: dict, timeout: float = 10.0, ctx: zmq.Context | None = None) -> dict:
    """One request/reply round trip to the daemon's query endpoint."""
    ctx = ctx or zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        sock.send(json.dumps(body).encode())
        if not sock.poll(int(timeout * 1000)):
            raise QueryError(f"no answer from the daemon at {endpoint} within {timeout:g}s (is it running?)")
        reply = json.loads(sock.recv())
    finally:
        sock.close(0)
    if not reply.get("ok"):
        raise Rejected(reply.get("error", "unknown error"))
    return reply


def query(
    endpoint: str,
    text: str,
    k: int = 5,
    since: float | None = None,
    until: float | None = None,
    modality: str | None = None,
    source: str | None = None,
    timeout: float = 10.0,
) -> list[dict]:
    """Memories nearest to `text`, best first: dicts with id, ts, source, modality, space, score, labels, thumb."""
    body = {"op": "query", "text": text, "k": k, "since": since, "until": until, "modality": modality, "source": source}
    return request(endpoint, body, timeout)["results"]
