"""Client library for other processes: subscribe to the bus, query the daemon, backfill what was missed.

Imports only pyzmq, numpy and the wire format (never openvino or torch), so any tool can use it:

    from sinks.client import subscribe
    for msg in subscribe("ipc:///run/user/1000/sensorium/bus.sock", "emb.image", since=time.time() - 600,
                         query_endpoint="ipc:///run/user/1000/sensorium/query.sock"):
        print(msg.topic, msg.id, msg.labels, msg.vector.shape, msg.backfill)

Text memories (topic emb.text.<source>) carry `msg.frame` and `msg.text` (None with `msg.redacted` set
where the bus is neither local nor CURVE; backfilled rows always carry the words).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import zmq

from sinks.bus import wire
from sinks.bus.keys import ClientKeys
from sinks.bus.wire import Message, WireError, decode

BACKFILL_PAGE = 1000  # rows per backfill request (the most the daemon sends at once)
MODALITIES = ("image", "audio", "text", "moment")
DEDUPE_WINDOW_S = 60.0  # live messages this much newer than the backfill cannot be duplicates of it
MAX_IMAGE_BYTES = 64 << 20  # the daemon's largest frame: ZMQ drops a peer that sends more, without an answer
Blob = bytes | bytearray | memoryview


class QueryError(RuntimeError):
    """The daemon answered with an error, or did not answer in time."""


class Rejected(QueryError):
    """The daemon answered and refused the request (bad arguments), as opposed to not answering."""


class Subscriber:
    """SUB socket with gap detection: `gaps` counts messages the publisher sent that we never saw."""

    def __init__(
        self,
        endpoint: str,
        prefix: str = "",
        rcvhwm: int = 1000,
        ctx: zmq.Context | None = None,
        keys: ClientKeys | None = None,
    ) -> None:
        self._ctx = ctx or zmq.Context.instance()
        self.sock = self._ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.RCVHWM, rcvhwm)
        self.sock.setsockopt(zmq.LINGER, 0)
        if keys is not None:
            keys.apply(self.sock)
        self.sock.setsockopt(zmq.SUBSCRIBE, prefix.encode())
        self.sock.connect(endpoint)
        self.prefix = prefix
        self.last_seq: dict[str, int] = {}  # per topic: seq counts per topic on the publisher
        self.gaps = 0  # messages missed, from seq jumps
        self.gaps_by_topic: dict[str, int] = {}
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
            seq = msg.seq
            if seq is not None:
                last = self.last_seq.get(msg.topic)
                if last is not None and seq > last + 1:
                    self.gaps += seq - last - 1
                    self.gaps_by_topic[msg.topic] = self.gaps_by_topic.get(msg.topic, 0) + seq - last - 1
                self.last_seq[msg.topic] = seq
            return msg

    def __iter__(self) -> Iterator[Message]:
        while True:
            msg = self.recv()
            if msg is not None:
                yield msg

    def close(self) -> None:
        self.sock.close(0)


def _unix(t: float | dt.datetime | None) -> float | None:
    return t.timestamp() if isinstance(t, dt.datetime) else (None if t is None else float(t))


def _image_bytes(image: object) -> Blob:
    """An image argument as bytes to send; a path is refused (the daemon opens no file a client names)."""
    if isinstance(image, str | Path):
        raise TypeError(
            "image must be the image's bytes (e.g. Path(file).read_bytes()), not a path: the daemon opens no file "
            "a client names, and may run on another machine"
        )
    if not isinstance(image, bytes | bytearray | memoryview):
        raise TypeError(f"image must be bytes, not {type(image).__name__}")
    if len(image) > MAX_IMAGE_BYTES:
        raise ValueError(f"image is {len(image)} bytes; the daemon takes at most {MAX_IMAGE_BYTES >> 20} MB")
    return image


def request_parts(
    endpoint: str,
    body: dict,
    timeout: float = 10.0,
    ctx: zmq.Context | None = None,
    keys: ClientKeys | None = None,
    blob: Blob | None = None,
) -> tuple[dict, list[bytes]]:
    """One round trip to the query endpoint: the JSON reply and any binary frames after it (vectors).

    `blob`: one binary frame sent after the JSON one (an image's bytes; the body says "image": true).
    """
    ctx = ctx or zmq.Context.instance()
    sock = ctx.socket(zmq.REQ)
    sock.setsockopt(zmq.LINGER, 0)
    if keys is not None:
        keys.apply(sock)
    try:
        sock.connect(endpoint)
        sock.send_multipart([json.dumps(body).encode(), *([] if blob is None else [blob])], copy=False)
        if not sock.poll(int(timeout * 1000)):
            raise QueryError(f"no answer from the daemon at {endpoint} within {timeout:g}s (is it running?)")
        first, *rest = sock.recv_multipart()
        reply = json.loads(first)
    finally:
        sock.close(0)
    if not reply.get("ok"):
        raise Rejected(reply.get("error", "unknown error"))
    return reply, rest


def request(
    endpoint: str, body: dict, timeout: float = 10.0, ctx: zmq.Context | None = None, keys: ClientKeys | None = None
) -> dict:
    """One request/reply round trip to the daemon's query endpoint."""
    return request_parts(endpoint, body, timeout, ctx, keys)[0]


def query(
    endpoint: str,
    text: str | None = None,
    k: int = 5,
    since: float | dt.datetime | None = None,
    until: float | dt.datetime | None = None,
    modality: str | None = None,
    source: str | None = None,
    timeout: float = 10.0,
    *,
    image: Blob | None = None,
    like: str | None = None,
    keys: ClientKeys | None = None,
    threshold: bool = True,
) -> list[dict]:
    """Memories nearest to `text`, an image (its encoded bytes: JPEG, PNG, …) or a stored memory id (`like`).

    Best first, fused across embedding spaces by rank: dicts with id, ts, source, modality, space (of the
    best score), score (best cosine; 0.0 if found only by its words), spaces ("keywords" among them when
    found by its words), rrf, labels, thumb, and for text memories text (the words), frame (the frame they
    were read from) and snippet (words around the query's, those in [brackets]); None for other memories.
    `threshold=False`: also the hits below the daemon's no-answer threshold ([query.min_score]).
    """
    body: dict = {"op": "query", "k": k, "since": _unix(since), "until": _unix(until)}
    body |= {"modality": modality, "source": source}
    for key, value in (("text", text), ("like", like)):
        if value is not None:
            body[key] = value
    if not threshold:
        body["threshold"] = False
    blob = None
    if image is not None:
        blob, body["image"] = _image_bytes(image), True
    return request_parts(endpoint, body, timeout, keys=keys, blob=blob)[0]["results"]


def embed(
    endpoint: str,
    text: str | None = None,
    image: Blob | None = None,
    timeout: float = 30.0,
    keys: ClientKeys | None = None,
) -> dict[str, np.ndarray]:
    """The daemon's vectors for `text` or an image (its encoded bytes): space → unit float32 vector.

    One per space the daemon has for that input: text in each text space (MiniLM; CLIP's text tower when
    installed), an image in each of the image model's spaces (e.g. "effnet-lite0/1280" and its text-space
    "minilm-l6/384" vector). Compare them with bus messages of the same `space` by dot product.
    """
    if (text is None) == (image is None):
        raise TypeError("embed needs exactly one of text or image (bytes)")
    body: dict = {"op": "embed"}
    blob = None
    if text is not None:
        body["text"] = text
    else:
        blob, body["image"] = _image_bytes(image), True
    reply, frames = request_parts(endpoint, body, timeout, keys=keys, blob=blob)
    entries = reply["vectors"]
    if len(entries) != len(frames):
        raise QueryError(f"embed reply lists {len(entries)} vectors but has {len(frames)} frames")
    out = {}
    for entry, raw in zip(entries, frames, strict=True):
        vec = np.frombuffer(raw, dtype=wire.DTYPE)
        if vec.shape[0] != entry["dim"]:
            raise QueryError(f"embed reply: {entry['space']} has {vec.shape[0]} values, not {entry['dim']}")
        out[entry["space"]] = vec
    return out


def b64_vector(entry: dict) -> np.ndarray:
    """The vector of an embed reply entry sent with "b64": true (base64 of little-endian float32)."""
    return np.frombuffer(base64.b64decode(entry["vector"]), dtype=wire.DTYPE)


def around(
    endpoint: str,
    id: str | None = None,
    at: float | dt.datetime | None = None,
    window: float = 30.0,
    k: int = 10,
    elsewhere: bool = False,
    timeout: float = 30.0,
    keys: ClientKeys | None = None,
) -> dict:
    """What every sense captured within `window` seconds of a memory (`id`) or a time (`at`), and with
    `elsewhere` the other times most like that moment.

    Returns {"at", "id", "window", "senses": [{"sense": "<modality>:<source>", "modality", "source", "hits"}],
    "elsewhere": [...]}: senses by their nearest memory, each sense's hits nearest first (query-style dicts with
    score None, the spaces the memory has vectors in and "dt", seconds from `at`), the anchor memory left out;
    elsewhere times best first (their best hit, "dt", "fused" (the time's score), the "senses" that matched there,
    best first, and "hits").
    """
    body: dict = {"op": "around", "window": window, "k": k, "elsewhere": elsewhere}
    if id is not None:
        body["id"] = id
    if at is not None:
        body["at"] = _unix(at)
    return request(endpoint, body, timeout, keys=keys)


def timeline(
    endpoint: str,
    since: float | dt.datetime,
    until: float | dt.datetime,
    bins: int = 120,
    timeout: float = 30.0,
    keys: ClientKeys | None = None,
) -> dict:
    """What was captured in [since, until] (at most 31 days), cut into `bins` (1..500) equal parts.

    Returns {"since", "until", "bins", "width" (seconds per part), "lanes": [{"lane": stream ("screen0",
    "screen0#text", "mic0#text", "all" for moments), "source", "modality", "counts": [memories per part],
    "items": [{"bin", "id", "ts", "source", "modality", "labels", "thumb", "text"}]}]}: one item per non-empty
    part, its earliest memory; each memory counted once, however many embedding spaces it has.
    """
    body = {"op": "timeline", "since": _unix(since), "until": _unix(until), "bins": bins}
    return request(endpoint, body, timeout, keys=keys)


def _topic_filter(prefix: str) -> dict[str, str | None]:
    """The modality/source a topic prefix pins down, so the store sends less; the prefix is applied as well."""
    parts = prefix.split(".")
    if parts[0] != "emb" or len(parts) < 2:
        return {"modality": None, "source": None}
    modality = parts[1] if parts[1] in MODALITIES or len(parts) > 2 else None  # else maybe a partial word
    source = parts[2] if len(parts) > 3 else None  # "emb.image.cam" may be a prefix of "cam0"
    return {"modality": modality, "source": source}


def backfill(
    endpoint: str,
    since: float | dt.datetime,
    until: float | dt.datetime | None = None,
    prefix: str = "emb.",
    timeout: float = 60.0,  # per page: a first read of a large bucket can take seconds
    keys: ClientKeys | None = None,
    page: int = BACKFILL_PAGE,
) -> Iterator[Message]:
    """Stored memories from `since` (oldest first) as bus messages marked `backfill=True`, page by page."""
    start, end = _unix(since), _unix(until)
    seen: set[tuple[str, str]] = set()  # rows at the page boundary, which the next page starts with again
    while True:
        body = {"op": "backfill", "since": start, "until": end, "limit": page, **_topic_filter(prefix)}
        reply, vectors = request_parts(endpoint, body, timeout, keys=keys)
        rows = reply["rows"]
        if len(rows) != len(vectors):
            raise QueryError(f"backfill reply has {len(rows)} rows but {len(vectors)} vectors")
        fresh = 0  # rows not seen on the previous page, whether or not the prefix wants them
        for header, raw in zip(rows, vectors, strict=True):
            topic = wire.topic_for(header["modality"], header["source"])
            if (header["id"], header["space"]) in seen:
                continue
            fresh += 1
            if topic.startswith(prefix):
                yield Message(topic, header, np.frombuffer(raw, dtype=wire.DTYPE), backfill=True)
        if not reply.get("more") or fresh == 0:  # no progress: stop rather than loop
            return
        start = float(rows[-1]["ts"])  # rows at this ts come again and are skipped as seen
        seen = {(r["id"], r["space"]) for r in rows if float(r["ts"]) == start}


class Subscription:
    """What `subscribe` returns: backfilled messages first, then live ones without duplicates.

    Iterate it, or `recv(timeout)`; `gaps`, `bad` and `close()` are those of the live subscriber.
    """

    def __init__(self, sub: Subscriber, stored: Iterator[Message] | None) -> None:
        self.sub = sub
        self._stored = stored
        self._seen: set[tuple[str, str]] = set()  # backfilled rows a live duplicate may still come for
        self._newest = float("-inf")  # capture time of the newest backfilled row

    @property
    def gaps(self) -> int:
        return self.sub.gaps

    @property
    def bad(self) -> int:
        return self.sub.bad

    def recv(self, timeout: float | None = None) -> Message | None:
        if self._stored is not None:
            msg = next(self._stored, None)
            if msg is not None:
                self._seen.add(msg.key)
                self._newest = max(self._newest, msg.ts)
                return msg
            self._stored = None
        while True:
            msg = self.sub.recv(timeout)
            if msg is None:
                return None
            if self._seen and msg.vector is not None:
                if msg.key in self._seen:
                    self._seen.discard(msg.key)  # a row comes live at most once: forget it after its duplicate
                    continue
                if msg.ts > self._newest + DEDUPE_WINDOW_S:  # live is past everything backfilled
                    self._seen.clear()
            return msg

    def __iter__(self) -> Iterator[Message]:
        while True:
            msg = self.recv()
            if msg is not None:
                yield msg

    def close(self) -> None:
        self.sub.close()


def subscribe(
    endpoint: str,
    prefix: str = "",
    since: float | dt.datetime | None = None,
    query_endpoint: str | None = None,
    keys: ClientKeys | None = None,
    rcvhwm: int = 1000,
    ctx: zmq.Context | None = None,
    query_keys: ClientKeys | bool | None = True,
) -> Subscription:
    """Messages whose topic starts with `prefix`. With `since`, first what the store holds from then on.

    The live socket connects before the store is read, so what is published meanwhile waits in it and a
    live message the backfill already gave (same id and space) is skipped. A message published in the
    moment before the subscription took effect and not yet written (the store batches for up to
    store.flush_s) can be in neither. `keys` are for the bus; `query_keys` for the query endpoint (True:
    the same as `keys`; None: plain).
    """
    if since is not None and query_endpoint is None:
        raise ValueError("since= needs query_endpoint (the daemon's query socket) to read the store")
    sub = Subscriber(endpoint, prefix, rcvhwm, ctx, keys)
    stored = None
    if since is not None and not prefix.startswith("sys."):
        qkeys = keys if query_keys is True else query_keys or None
        stored = backfill(query_endpoint, since, prefix=prefix or "emb.", keys=qkeys)  # type: ignore[arg-type]
    return Subscription(sub, stored)
