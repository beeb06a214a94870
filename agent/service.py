"""Query and control endpoint (ZMQ ROUTER) served from the daemon, the single writer of memory.

Requests are JSON objects with an "op". Every request gets a JSON reply, `{"ok": true, ...}` or
`{"ok": false, "error": "..."}`; malformed requests are counted and answered, never fatal.

Control ops: `{"op": "pause", "source": "cam0" | null, "for": seconds | null}` and
`{"op": "resume", "source": ... }`; no source means every source, no `for` means until resumed. A pause
is answered once the sources have let go of their sensors, so nothing is captured after the reply.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import zmq

from encoders.text import TextEncoder
from sinks.memory import Memory

from .sources import Source

log = logging.getLogger(__name__)

MAX_K = 1000
MAX_TEXT = 2000
MAX_PAUSE_S = 366 * 86400  # a year; also keeps Condition.wait below threading.TIMEOUT_MAX
OPS = ("query", "status", "ping", "pause", "resume")


class BadRequest(ValueError):
    pass


def _opt_number(body: dict, key: str) -> float | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise BadRequest(f"{key} must be a number (unix seconds) or null")
    return float(v)


def _opt_str(body: dict, key: str) -> str | None:
    v = body.get(key)
    if v is None or v == "":
        return None
    if not isinstance(v, str):
        raise BadRequest(f"{key} must be a string or null")
    return v


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
        text: TextEncoder,
        status: Callable[[], dict],
        sources: Sequence[Source] = (),
        ctx: zmq.Context | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.memory = memory
        self.text = text
        self.status = status
        self.sources = {src.name: src for src in sources}
        self._ctx = ctx or zmq.Context.instance()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="service", daemon=True)
        self._sock = self._ctx.socket(zmq.ROUTER)
        self._sock.setsockopt(zmq.LINGER, 0)
        self.served = 0
        self.bad_requests = 0

    def start(self) -> None:
        try:
            self._sock.bind(self.endpoint)
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
                parts = sock.recv_multipart()
                if len(parts) < 3:  # not a REQ envelope [identity, b"", body]: nobody to answer
                    self.bad_requests += 1
                    continue
                reply = self.handle(parts[-1])
                sock.send_multipart([*parts[:-1], json.dumps(reply).encode()])
        finally:
            sock.close(0)

    def handle(self, raw: bytes) -> dict[str, Any]:
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise BadRequest("request must be a JSON object")
            op = body.get("op")
            if op == "query":
                out = {"ok": True, "results": self.query(body)}
            elif op == "status":
                out = {"ok": True, "status": self.status()}
            elif op == "ping":
                out = {"ok": True}
            elif op == "pause":
                out = {"ok": True, **self.pause(body)}
            elif op == "resume":
                out = {"ok": True, **self.resume(body)}
            else:
                raise BadRequest(f"unknown op {op!r}; known: {', '.join(OPS)}")
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
        text = body.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
            raise BadRequest(f"text must be a non-empty string of at most {MAX_TEXT} characters")
        k = body.get("k", 5)
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
            raise BadRequest(f"k must be an integer from 1 to {MAX_K}")
        since, until = _opt_number(body, "since"), _opt_number(body, "until")
        if since is not None and until is not None and since > until:
            raise BadRequest("since is after until")
        vec = self.text.encode(text)
        hits = self.memory.search(
            self.text.space,
            vec,
            k,
            since=since,
            until=until,
            modality=_opt_str(body, "modality"),
            source=_opt_str(body, "source"),
        )
        return [asdict(h) for h in hits]

    def _targets(self, body: dict) -> list[Source]:
        name = _opt_str(body, "source")
        if name is None:
            return list(self.sources.values())
        if name not in self.sources:
            raise BadRequest(f"unknown source {name!r}; known: {', '.join(self.sources) or 'none'}")
        return [self.sources[name]]

    def pause(self, body: dict) -> dict[str, Any]:
        """Pause the sources; the reply names them, when the pause ends (null: until resumed) and their state."""
        targets, seconds = self._targets(body), _pause_seconds(body)
        until = None if seconds is None else round(time.time() + seconds, 3)
        for src in targets:
            src.pause(seconds)  # returns once the source captures nothing
        names = [s.name for s in targets]
        log.info("paused %s %s", ",".join(names), "until resumed" if until is None else f"for {seconds:g}s")
        return {"paused": names, "until": until, "states": {s.name: s.state for s in targets}}

    def resume(self, body: dict) -> dict[str, Any]:
        targets = self._targets(body)
        for src in targets:
            src.resume()
        log.info("resumed %s", ",".join(s.name for s in targets))
        return {"resumed": [s.name for s in targets]}

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        else:
            self._sock.close(0)

    def stats(self) -> dict[str, int]:
        return {"served": self.served, "bad_requests": self.bad_requests}
