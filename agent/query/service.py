"""Query and control endpoint (ZMQ ROUTER) served from the daemon, the single writer of memory.

Requests are JSON objects with an "op", looked up in `Service.ops` (op name → handler, so the ZMQ
endpoint, and later HTTP or MCP, serve the same handlers). Every request gets a JSON reply,
`{"ok": true, ...}` or `{"ok": false, "error": "..."}`; malformed requests are counted and answered,
never fatal.

Control ops: `{"op": "pause", "source": "cam0" | null, "for": seconds | null}` and
`{"op": "resume", "source": ... }`; no source means every source, no `for` means until resumed. A pause
is answered once the sources have let go of their sensors, so nothing is captured after the reply.
`{"op": "forget", "since", "until" | "older_than"}` deletes memories and thumbnails in the range (on the
memory's writer thread), replies with the count (and `keywords`: text memories taken out of the keyword
index) and publishes `sys.forget` {since, until, count}.

Query ops (agent/query/search.py): `{"op": "query", "text" | "image" | "image_b64" | "like": ..., "k",
"since", "until", "modality", "source"}` and `{"op": "backfill", "since", ...}`, whose reply is the JSON
frame followed by one frame per row's vector; `{"op": "embed", "text" | image}` (agent/query/embed.py), the
input's vector in each space. A request is one JSON frame, optionally followed by ONE binary frame: an
image's bytes, which a handler finds under `images.BLOB` in the body (agent/query/images.py decodes it).
Messages that are not a REQ envelope with one or two body frames, and JSON over MAX_REQUEST bytes, are
counted in `bad_frames` (answered when there is an envelope to answer to).

`{"op": "around", "id" | "at", "window", "k", "elsewhere"}`: what every sense captured near a moment, and
the other times most like it (agent/query/around.py). `{"op": "timeline", "since", "until", "bins"}`: per stream, how
many memories each of `bins` equal parts of the window holds and the first of each (agent/query/timeline.py).
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import zmq

from agent.query.around import Around
from agent.query.embed import embed
from agent.query.images import BLOB
from agent.query.search import (
    MAX_K,
    MAX_TEXT,
    BadRequest,
    ImageQueryEncoder,
    QueryEncoder,
    Searcher,
    opt_number,
    opt_str,
)
from agent.query.timeline import Timeline
from agent.sources import Source
from sinks.bus.keys import CurveServer, KeysError, check_bind
from sinks.memory import Memory

log = logging.getLogger(__name__)

__all__ = ["MAX_K", "MAX_TEXT", "BadRequest", "Service"]
MAX_REQUEST = 1 << 20  # bytes of JSON; larger bodies are refused unread
MAX_MSG = 64 << 20  # ZMQ drops a peer that sends a bigger frame before it reaches us (so: the largest image)
FRAMES = "_frames"  # reply key for arrays sent as frames after the JSON (never serialised)
MAX_PAUSE_S = 366 * 86400  # a year; also keeps Condition.wait below threading.TIMEOUT_MAX
Reply = dict[str, Any]  # what a handler answers, without "ok"


def _pause_seconds(body: dict) -> float | None:
    """`for`: a positive number of seconds, or absent/null for until resumed."""
    v = body.get("for")
    if v is None:
        return None
    ok = not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v) and 0 < v <= MAX_PAUSE_S
    if not ok:
        raise BadRequest(f"for must be a positive number of seconds (at most {MAX_PAUSE_S}) or null (until resumed)")
    return float(v)


class Service:
    def __init__(
        self,
        endpoint: str,
        memory: Memory,
        texts: Sequence[QueryEncoder],
        status: Callable[[], dict],
        sources: Sequence[Source] = (),
        ctx: zmq.Context | None = None,
        image: ImageQueryEncoder | None = None,
        curve: CurveServer | None = None,
        publish: Callable[[str, dict], None] | None = None,
        on_pause: Callable[[str], object] | None = None,
        flush: Callable[[], object] | None = None,
        ops: Mapping[str, Callable[[dict], Reply]] | None = None,
        on_forget: Callable[[float | None, float | None], object] | None = None,
        min_score: dict[str, float] | None = None,
    ) -> None:
        """`status`: the daemon's status, ready for JSON. Hooks into the daemon, each optional: `publish`
        sends sys.* announcements on the bus (Publisher.publish_sys); `on_pause(name)` drops what a paused
        source left in the pipeline; `flush()` returns once results already encoded have reached memory,
        so a forget removes them too; `on_forget(since, until)`, after that, drops what the daemon still holds
        derived from the range (open moment slices), so nothing forgotten comes back. `ops`: more handlers by
        op name (the watches' watch_add/_list/_remove). `min_score`: the no-answer threshold of text queries
        ([query.min_score])."""
        self.endpoint = endpoint
        self.memory = memory
        self.publish = publish
        self.on_pause = on_pause
        self.flush = flush
        self.on_forget = on_forget
        self.ops: dict[str, Callable[[dict], Reply]] = {
            "query": lambda body: self.searcher.answer(body),  # results, and the threshold it applied
            "backfill": self.backfill,
            "embed": self.embed,
            "status": lambda body: {"status": self.status()},
            "ping": lambda body: {},
            "pause": self.pause,
            "resume": self.resume,
            "forget": self.forget,
            "around": Around(memory),  # agent/query/around.py
            "timeline": Timeline(memory),  # agent/query/timeline.py
            **(ops or {}),
        }
        self.searcher = Searcher(memory, texts, image, min_score)
        self.curve = curve  # None: plain (only ipc:// or loopback tcp:// may bind)
        self.status = status
        self.sources = {src.name: src for src in sources}
        self._ctx = ctx or zmq.Context.instance()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="service", daemon=True)
        self._sock = self._ctx.socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self._sock.setsockopt(zmq.MAXMSGSIZE, MAX_MSG)
        self._serving = threading.Lock()  # one request at a time, from ZMQ or HTTP (agent/web)
        self.served = 0
        self.bad_requests = 0
        self.bad_frames = 0  # multipart messages that were not one request (wrong envelope, too big)

    def start(self) -> None:
        try:
            check_bind(self.endpoint, self.curve, "query")
            if self.curve is not None:
                self.curve.apply(self._sock)
            self._sock.bind(self.endpoint)
        except KeysError:
            self._sock.close(0)
            raise
        except zmq.ZMQError as e:
            self._sock.close(0)
            raise RuntimeError(f"query: cannot bind {self.endpoint}: {e}") from None
        self._thread.start()

    def _run(self) -> None:
        sock = self._sock
        try:
            while not self._stop.is_set():
                if not sock.poll(100):
                    continue
                out = self._respond(sock.recv_multipart())
                if out:
                    sock.send_multipart(out, copy=False)
        finally:
            sock.close(0)

    def _respond(self, parts: list[bytes]) -> list[bytes | memoryview]:
        """Frames to send back for one received multipart message (none when there is nobody to answer).

        A REQ client's message arrives as [identity, b"", body]; the envelope is everything up to the
        empty delimiter and is sent back as is.
        """
        try:
            cut = parts.index(b"", 1)
        except ValueError:  # no delimiter: not a REQ envelope, no way to address an answer
            self.bad_frames += 1
            return []
        envelope, body = parts[: cut + 1], parts[cut + 1 :]
        if not 1 <= len(body) <= 2 or len(body[0]) > MAX_REQUEST:
            self.bad_frames += 1
            self.bad_requests += 1
            what = f"{len(body)} frames" if not 1 <= len(body) <= 2 else f"{len(body[0])} bytes (at most {MAX_REQUEST})"
            error = f"a request is one JSON frame and at most one binary frame (an image's bytes), got {what}"
            return [*envelope, json.dumps({"ok": False, "error": error}).encode()]
        reply = self.handle(body[0], body[1] if len(body) == 2 else None)
        vectors = reply.pop(FRAMES, None)  # binary frames after the JSON one (backfill and embed vectors)
        return [*envelope, json.dumps(reply).encode(), *(memoryview(v).cast("B") for v in vectors or ())]

    def handle(self, raw: bytes, blob: bytes | None = None) -> dict[str, Any]:
        """The reply to one request; `blob` is its binary frame, if any (the handler reads it as body[BLOB])."""
        with self._serving:
            return self._handle(raw, blob)

    def _handle(self, raw: bytes, blob: bytes | None) -> dict[str, Any]:
        try:
            try:
                body = json.loads(raw)
            except RecursionError:  # e.g. 100k "[": the parser's depth limit, not our bug
                raise BadRequest("request is nested too deeply") from None
            if not isinstance(body, dict):
                raise BadRequest("request must be a JSON object")
            if blob is not None and body.get("image") is not True:
                raise BadRequest('a second frame carries an image\'s bytes and needs "image": true in the request')
            body[BLOB] = blob  # set here only: whatever a client put under this key is replaced
            op = body.get("op")
            handler = self.ops.get(op) if isinstance(op, str) else None
            if handler is None:
                raise BadRequest(f"unknown op {op!r}; known: {', '.join(self.ops)}")
            out = {"ok": True, **handler(body)}
        except (BadRequest, json.JSONDecodeError, UnicodeDecodeError) as e:
            self.bad_requests += 1
            return {"ok": False, "error": str(e)}
        except Exception as e:  # never let one request take the service down
            self.bad_requests += 1
            log.exception("query failed")
            return {"ok": False, "error": f"internal error: {type(e).__name__}: {e}"}
        self.served += 1
        return out

    def query(self, body: dict) -> list[dict]:
        """Text, image or more-like-this search, fused across spaces (agent/query/search.py)."""
        return self.searcher.query(body)

    def backfill(self, body: dict) -> Reply:
        """Stored rows as bus headers; their vectors go out as frames after the JSON one."""
        reply, vectors = self.searcher.backfill(body)
        return {**reply, FRAMES: vectors}

    def embed(self, body: dict) -> Reply:
        """The text's or image's vector in each space; they go out as frames after the JSON one (or as base64)."""
        reply, vectors = embed(body, self.searcher.texts, self.searcher.image)
        return {**reply, FRAMES: vectors}

    def _targets(self, body: dict) -> list[Source]:
        name = opt_str(body, "source")
        if name is None:
            return list(self.sources.values())
        # "screen0" also names "<agent>.screen0": the agent prefix is only there to tell machines apart
        found = [s for full, s in self.sources.items() if name in (full, full.rpartition(".")[2])]
        if not found:
            raise BadRequest(f"unknown source {name!r}; known: {', '.join(self.sources) or 'none'}")
        return found

    def pause(self, body: dict) -> dict[str, Any]:
        """Pause the sources; the reply names them, when the pause ends (null: until resumed) and their state."""
        targets, seconds = self._targets(body), _pause_seconds(body)
        until = None if seconds is None else round(time.time() + seconds, 3)
        for src in targets:
            src.pause(seconds)  # returns once the source captures nothing
            if self.on_pause is not None:
                self.on_pause(src.name)  # drop what it captured before the pause and is still waiting
        names = [s.name for s in targets]
        log.info("paused %s %s", ",".join(names), "until resumed" if until is None else f"for {seconds:g}s")
        return {"paused": names, "until": until, "states": {s.name: s.state for s in targets}}

    def resume(self, body: dict) -> dict[str, Any]:
        targets = self._targets(body)
        for src in targets:
            src.resume()
        log.info("resumed %s", ",".join(s.name for s in targets))
        return {"resumed": [s.name for s in targets]}

    def forget(self, body: dict) -> dict[str, Any]:
        """Delete memories captured in [since, until] (`older_than` seconds: until = now - older_than) and
        announce it as `sys.forget` so subscribers can drop what they derived from them."""
        since, until, older = opt_number(body, "since"), opt_number(body, "until"), opt_number(body, "older_than")
        if older is not None:
            if until is not None or older < 0:
                raise BadRequest("older_than is a number of seconds >= 0 and replaces until")
            until = time.time() - older
        if since is None and until is None:
            raise BadRequest("forget needs a range: since, until or older_than")
        if since is not None and until is not None and since > until:
            raise BadRequest("since is after until")
        if self.flush is not None:
            self.flush()  # results encoded before the request reach memory first, so they are forgotten too
        if self.on_forget is not None:
            self.on_forget(since, until)
        out = self.memory.forget(since, until)
        if self.publish is not None:
            self.publish("sys.forget", {"since": since, "until": until, "count": out["count"]})
        return {"since": since, "until": until, **out}

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        else:
            self._sock.close(0)

    def stats(self) -> dict[str, int]:
        return {"served": self.served, "bad_requests": self.bad_requests, "bad_frames": self.bad_frames}
