"""ZMQ PUB sink. One thread owns the socket; `put` only enqueues, so the result stage never waits on I/O.

`seq` counts per topic and is assigned at `put`, before any drop, so a subscriber (whatever prefix it
subscribed to) sees every loss as a gap: the publisher's own queue overflowing, or ZMQ dropping for a
slow subscriber at its high-water mark.

A text memory's words go into its header only when the bus cannot be read off this machine in clear:
an ipc:// (or inproc://) endpoint, tcp:// bound to a loopback address, or CURVE on (`words_may_travel`);
otherwise the header says "text": null, "redacted": "transport" (sinks/bus/wire.py).
"""

from __future__ import annotations

import logging
import queue
import threading

import zmq

from encoders.records import Encoded
from sinks.bus import wire
from sinks.bus.keys import LOOPBACK, CurveServer, KeysError, check_bind, tcp_host

log = logging.getLogger(__name__)


def words_may_travel(endpoint: str, curve: object | None) -> bool:
    """True when what is published on `endpoint` stays on this machine or is encrypted."""
    host = tcp_host(endpoint)
    local = endpoint.startswith(("ipc://", "inproc://")) or (host is not None and host in LOOPBACK)
    return curve is not None or local


class Publisher:
    def __init__(
        self,
        endpoint: str,
        send_hwm: int,
        queue_size: int,
        ctx: zmq.Context | None = None,
        curve: CurveServer | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._curve = curve  # None: plain (only ipc:// or loopback tcp:// may bind)
        self.redact = not words_may_travel(endpoint, curve)  # text memories' words left out of headers
        self._ctx = ctx or zmq.Context.instance()
        self._hwm = send_hwm
        self._q: queue.Queue = queue.Queue(maxsize=queue_size)
        self._seq: dict[str, int] = {}
        self._seq_lock = threading.Lock()  # seq order == queue order, across callback threads
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="publisher", daemon=True)
        self.sent = 0
        self.dropped = 0

    def start(self) -> None:
        """Bind on the publisher thread; raise here if the bind fails."""
        self._thread.start()
        self._ready.wait(5)
        if self._error:
            raise self._error

    def put(self, item: Encoded, thumb: str | None = None) -> None:
        """One message per vector; `thumb` is a JPEG already on disk (or None), advertised as is."""
        for e in item.embeddings:
            self._send(wire.topic_for(e.modality, e.source), wire.header_of(e, thumb, self.redact), e.vector)

    def publish_sys(self, topic: str, body: dict) -> None:
        """sys.* messages (status, forget): two frames, no vector."""
        self._send(topic, {"v": wire.VERSION, **body}, None)

    def _send(self, topic: str, header: dict, vector) -> None:
        with self._seq_lock:
            seq = self._seq.get(topic, 0)
            self._seq[topic] = seq + 1
            header["seq"] = seq
            try:
                self._q.put_nowait((topic, header, vector))
            except queue.Full:
                self.dropped += 1

    def _run(self) -> None:
        sock = self._ctx.socket(zmq.PUB)
        sock.setsockopt(zmq.SNDHWM, self._hwm)
        sock.setsockopt(zmq.LINGER, 500)
        try:
            check_bind(self.endpoint, self._curve, "bus")
            if self._curve is not None:
                self._curve.apply(sock)
            sock.bind(self.endpoint)
        except KeysError as e:
            self._error = e
            sock.close(0)
            self._ready.set()
            return
        except zmq.ZMQError as e:
            self._error = RuntimeError(f"bus: cannot bind {self.endpoint}: {e}")
            sock.close(0)
            self._ready.set()
            return
        self._ready.set()
        try:
            while not (self._stop.is_set() and self._q.empty()):
                try:
                    topic, header, vector = self._q.get(timeout=0.1)
                except queue.Empty:
                    continue
                sock.send_multipart(
                    wire.encode(topic, header, vector), copy=False
                )  # PUB never blocks: at HWM ZMQ drops for that peer
                self.sent += 1
        finally:
            sock.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def stats(self) -> dict[str, int]:
        return {"sent": self.sent, "dropped": self.dropped, "queued": self._q.qsize()}
