"""Uvicorn on its own thread, on a socket bound here first: a busy port is the caller's clear error at start,
and port 0 (any free port, for tests and the demo) reports the one it got."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading

import uvicorn
from starlette.applications import Starlette

from agent.web.app import Counts
from agent.web.stream import Stream

log = logging.getLogger(__name__)


class WebError(RuntimeError):
    """The page cannot be served (port busy, bad address); the message says what to change."""


class WebServer:
    def __init__(self, app: Starlette, host: str, port: int, stream: Stream, counts: Counts) -> None:
        """`counts`: what `app` counts (agent/web/app.py build); with the stream's, its status."""
        self.host, self.port = host, port
        self.stream = stream
        self.counts = counts
        self._server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=1)
        )
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name="web", daemon=True)

    def start(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP, and without it every reply
        # (headers, then body) waited ~40 ms for the client's delayed ACK (bench/web.py: 44 ms vs 1 ms a request)
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as e:
            sock.close()
            raise WebError(
                f"web: cannot listen on {self.host}:{self.port}: {e.strerror or e} "
                "(another sensorium there? set [web] port = another port, 0, or enabled = false)"
            ) from None
        sock.listen(128)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._thread.start()
        log.info("web page at %s", self.url)

    def _run(self) -> None:
        async def serve() -> None:
            self.stream.bind(asyncio.get_running_loop())
            await self._server.serve(sockets=[self._sock])  # type: ignore[list-item]

        try:
            asyncio.run(serve())
        finally:
            self.stream.close()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def stats(self) -> dict[str, int]:
        return {**vars(self.counts), **self.stream.stats()}

    def close(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=3)
        if self._sock is not None:
            self._sock.close()
