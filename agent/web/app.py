"""The HTTP API and page as a Starlette app: `/api/<op>` over the query service's handlers, the live stream,
thumbnails from the thumbnail folder only, and the static page. No handler of its own: every op is the ZMQ
endpoint's (agent/query/service.py), so both answer alike and count bad requests in the same place.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent.web.openapi import describe
from agent.web.security import Guard
from agent.web.stream import Client, Stream, TooManyClients, b64

STATIC = Path(__file__).parent / "static"
MAX_BODY = 48 << 20  # JSON with an image as base64, or an image's bytes
READS = frozenset({"query", "embed", "around", "backfill", "status", "ping", "timeline", "watch_list"})
NUMBERS = frozenset({"k", "since", "until", "window", "limit", "bins", "at", "for", "older_than"})
FLAGS = frozenset({"elsewhere", "threshold", "b64", "image"})
KEEPALIVE_S = 15.0
HEADERS = {  # the page loads nothing from elsewhere, and no other site may frame it (a click there is not ours)
    "content-security-policy": "default-src 'self'; img-src 'self' data: blob:; frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


class Handler(Protocol):
    ops: Collection[str]

    def handle(self, raw: bytes, blob: bytes | None = None) -> dict[str, Any]: ...


@dataclass
class Counts:
    """What the HTTP layer answered itself (the service counts the requests it saw: bad_requests)."""

    requests: int = 0  # /api requests that reached an op
    refused: int = 0  # no or wrong token, another origin (401, 403)
    bad: int = 0  # not an op, not JSON, too big, a write as GET (400, 404, 405, 413), a full stream (503)


def _arg(key: str, value: str) -> Any:
    """A query-string value as the op expects it; a value that does not parse is left for the op to refuse."""
    if key in FLAGS and value in ("true", "false", "1", "0"):
        return value in ("true", "1")
    if key in NUMBERS:
        try:
            return float(value) if any(c in value for c in ".eE") or value in ("inf", "nan") else int(value)
        except ValueError:
            return value
    return value


def thumb_links(root: Path | None) -> Callable[[str | None], str | None]:
    """Thumbnail path → the page's /thumbs/ URL (None when it is not a file under `root`)."""
    base = root.resolve() if root is not None else None

    def url(path: str | None) -> str | None:
        if base is None or not isinstance(path, str):
            return None
        try:
            rel = Path(path).resolve().relative_to(base)
        except (ValueError, OSError):
            return None
        return "/thumbs/" + rel.as_posix()

    return url


def _linked(value: Any, url: Callable[[str | None], str | None]) -> Any:
    """Every dict with a "thumb" also gets its "thumb_url"."""
    if isinstance(value, dict):
        out = {k: _linked(v, url) for k, v in value.items()}
        if "thumb" in value:
            out["thumb_url"] = url(value["thumb"])
        return out
    if isinstance(value, list):
        return [_linked(v, url) for v in value]
    return value


async def _body(request: Request) -> bytes | None:
    """The request body, or None when it is over MAX_BODY (read no further)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def build(
    service: Handler, guard: Guard, stream: Stream, thumbs: Path | None, frames: str, counts: Counts
) -> Starlette:
    """`frames`: the reply key under which the service leaves vectors to send as binary frames (FRAMES)."""
    url = thumb_links(thumbs)
    thumb_root = thumbs.resolve() if thumbs is not None else None

    def _error(status: int, error: str) -> JSONResponse:
        if status in (401, 403):
            counts.refused += 1
        else:
            counts.bad += 1
        return JSONResponse({"ok": False, "error": error}, status)

    async def guarded(request: Request) -> JSONResponse | None:
        no = guard.check(request.method, dict(request.headers), request.cookies, request.url.scheme)
        return None if no is None else _error(no.status, no.error)

    async def api(request: Request) -> Response:
        if (refused := await guarded(request)) is not None:
            return refused
        op = request.path_params["op"]
        if op not in service.ops:
            return _error(404, f"unknown op {op!r}; known: {', '.join(service.ops)}")
        blob = None
        if request.method == "GET":
            if op not in READS:
                return _error(405, f"{op} changes the daemon's state: send it as POST with the token header")
            body: Any = {k: _arg(k, v) for k, v in request.query_params.items()}
        else:
            raw = await _body(request)
            if raw is None:
                return _error(413, f"request body over {MAX_BODY} bytes")
            if request.headers.get("content-type", "").startswith("image/"):  # an image's bytes, options in the URL
                body, blob = {**{k: _arg(k, v) for k, v in request.query_params.items()}, "image": True}, raw
            else:
                try:
                    body = json.loads(raw or b"{}")
                except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
                    return _error(400, f"the body must be a JSON object: {e}")
                if not isinstance(body, dict):
                    return _error(400, "the body must be a JSON object")
        body["op"] = op
        counts.requests += 1
        if op == "embed":
            body["b64"] = True  # vectors inside the JSON: HTTP has no second frame
        reply = await run_in_threadpool(service.handle, json.dumps(body).encode(), blob)
        vectors = reply.pop(frames, None)
        if vectors is not None:  # backfill: each row's vector as base64 float32
            for row, vec in zip(reply.get("rows", []), vectors, strict=False):
                row["vector"] = b64(vec)
        status = 200 if reply.get("ok") else 500 if str(reply.get("error", "")).startswith("internal") else 400
        return JSONResponse(_linked(reply, url), status)

    async def live(request: Request) -> Response:
        if (refused := await guarded(request)) is not None:
            return refused
        q = request.query_params
        client = Client(q.get("vectors") in ("1", "true"), q.get("modality"), q.get("source"))
        try:
            stream.join(client)
        except TooManyClients as e:
            return _error(503, str(e))

        async def events():
            try:
                yield ": sensorium live stream\n\n"
                while True:
                    try:
                        ev = await asyncio.wait_for(client.queue.get(), KEEPALIVE_S)
                    except TimeoutError:
                        yield ": keepalive\n\n"
                        continue
                    yield f"event: {ev.kind}\ndata: {ev.data(client.vectors)}\n\n"
            finally:
                stream.leave(client)

        return StreamingResponse(events(), media_type="text/event-stream", headers={"x-accel-buffering": "no"})

    async def thumb(request: Request) -> Response:
        if (refused := await guarded(request)) is not None:
            return refused
        if thumb_root is None:
            return _error(404, "thumbnails are off")
        try:
            path = (thumb_root / request.path_params["path"]).resolve()
            inside = path.is_relative_to(thumb_root) and path.suffix == ".jpg" and path.is_file()
        except (OSError, ValueError):
            inside = False
        if not inside:
            return _error(404, "no such thumbnail")  # counted: a traversal attempt shows in status
        return FileResponse(path, media_type="image/jpeg", headers={"cache-control": "private, max-age=86400"})

    async def openapi(request: Request) -> Response:
        return JSONResponse(describe(sorted(service.ops), READS))

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    routes = [
        Route("/", page),
        Route("/api/openapi.json", openapi),
        Route("/api/stream", live),
        Route("/api/{op}", api, methods=["GET", "POST"]),
        Route("/thumbs/{path:path}", thumb),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]

    async def unrouted(request: Request, exc: Exception) -> Response:  # no such path or method: JSON like the rest
        code = exc.status_code if isinstance(exc, HTTPException) else 500
        return _error(
            code, f"{request.method} {request.url.path}: {exc.detail if isinstance(exc, HTTPException) else exc}"
        )

    handlers = {HTTPException: unrouted}
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)], exception_handlers=handlers)
    app.router.redirect_slashes = False  # "/api/query/" is not an op: a JSON 404, not a redirect to guess
    return app


class SecurityHeaders:
    """HEADERS on every response (a route may set its own cache-control)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                have = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k.encode(), v.encode()) for k, v in HEADERS.items() if k.encode() not in have]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers if scope["type"] == "http" else send)
