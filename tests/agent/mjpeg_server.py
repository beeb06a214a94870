"""A tiny MJPEG-over-HTTP camera for tests: `GET /stream` serves `multipart/x-mixed-replace` JPEG parts.

It behaves like a network camera that can crash: `stop()` closes the listening socket and cuts every
client connection, and `start()` brings it back on the same port, so reconnect logic is tested for real.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

BOUNDARY = "frame"


def encode(frames: list[np.ndarray]) -> list[bytes]:
    """JPEG bytes of RGB frames, encoded once up front so serving costs no CPU."""
    out = []
    for rgb in frames:
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise ValueError("JPEG encoding failed")
        out.append(buf.tobytes())
    return out


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True  # rebind the same port at once after stop(), despite TIME_WAIT
    block_on_close = True  # server_close() joins the handler threads: nothing outlives stop()

    def __init__(self, port: int, owner: MjpegServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/stream":
            self.send_error(404)
            return
        owner = self.server.owner
        owner._track(self.connection, True)
        try:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            i = 0
            while not owner._stopping.is_set():
                jpegs = owner._jpegs
                jpeg = jpegs[i % len(jpegs)]
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                self.wfile.write(head.encode() + jpeg + b"\r\n")
                self.wfile.flush()
                i += 1
                owner._stopping.wait(owner.period)
        except OSError:  # client went away or stop() cut the connection
            pass
        finally:
            owner._track(self.connection, False)


class MjpegServer:
    def __init__(self, frames: list[np.ndarray], fps: float, port: int = 0) -> None:
        self.period = 1.0 / fps
        self.port = port
        self._jpegs = encode(frames)
        self._stopping = threading.Event()
        self._clients: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream"

    def set_frames(self, frames: list[np.ndarray]) -> None:
        """Change what every client sees from its next part on."""
        self._jpegs = encode(frames)

    def start(self) -> None:
        self._stopping.clear()
        self._httpd = _Server(self.port, self)
        self.port = self._httpd.server_address[1]  # keep the port so a restart comes back on it
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="mjpeg", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Crash like a camera: stop listening and cut every open stream."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        with self._lock:
            for conn in self._clients:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._httpd.server_close()  # closes the listening socket and joins handler threads
        if self._thread:
            self._thread.join(timeout=2)
        self._httpd = self._thread = None

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._clients.add(conn)
            else:
                self._clients.discard(conn)

    def __enter__(self) -> MjpegServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
