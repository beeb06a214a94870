"""Query and control endpoint (ZMQ ROUTER) served from the daemon, the single writer of memory.

Requests are JSON objects with an "op". Every request gets a JSON reply, `{"ok": true, ...}` or
`{"ok": false, "error": "..."}`; malformed requests are counted and answered, never fatal.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import zmq

from encoders.text import TextEncoder
from sinks.memory import Memory

log = logging.getLogger(__name__)

MAX_K = 1000
MAX_TEXT = 2000


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


class Service:
    def __init__(
        self,
        endpoint: str,
        memory: Memory,
        text: TextEncoder,
        status: Callable[[], dict],
        ctx: zmq.Context | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.memory = memory
        self.text = text
        self.status = status
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
            else:
                raise BadRequest(f"unknown op {op!r}; known: query, status, ping")
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

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        else:
            self._sock.close(0)

    def stats(self) -> dict[str, int]:
        return {"served": self.served, "bad_requests": self.bad_requests}
