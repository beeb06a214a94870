"""The live stream: new memories, watch matches and forgets, to the page and other HTTP clients (SSE).

A sink of the result stage, after the publisher and memory. `put` costs one header per vector and one
hand-off to the web server's event loop, whatever the number of clients: the fan-out (and base64 of vectors,
when a client asked for them) happens on that loop, so ten slow browsers never slow the pipeline. A client
that does not keep up loses its oldest events (counted), never the pipeline's time.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from encoders.records import Encoded
from sinks.bus import wire

MAX_CLIENTS = 32
CLIENT_QUEUE = 512  # events a client may lag behind before its oldest are dropped


def b64(vec: np.ndarray) -> str:
    """A vector as the wire has it (little-endian float32), base64 for JSON."""
    return base64.b64encode(np.ascontiguousarray(vec, wire.DTYPE).tobytes()).decode("ascii")


@dataclass
class Event:
    kind: str  # "memory" | "match" | "forget"
    header: dict[str, Any]
    vector: np.ndarray | None = None
    _b64: str | None = None

    def data(self, vectors: bool) -> str:
        if not (vectors and self.vector is not None):
            return json.dumps(self.header, separators=(",", ":"))
        if self._b64 is None:  # once per event, however many clients want it
            self._b64 = b64(self.vector)
        return json.dumps({**self.header, "vector": self._b64}, separators=(",", ":"))


@dataclass(eq=False)
class Client:
    vectors: bool = False
    modality: str | None = None
    source: str | None = None
    queue: asyncio.Queue[Event] = field(default_factory=lambda: asyncio.Queue(CLIENT_QUEUE))
    dropped: int = 0

    def wants(self, ev: Event) -> bool:
        h = ev.header
        if self.modality is not None and h.get("modality") != self.modality:
            return False
        return self.source is None or h.get("source") in (self.source, None)


class TooManyClients(RuntimeError):
    pass


class Stream:
    def __init__(self, thumb_url, max_clients: int = MAX_CLIENTS) -> None:
        """`thumb_url(path)`: the page's URL of a thumbnail file (or None)."""
        self._thumb_url = thumb_url
        self._max = max_clients
        self._clients: set[Client] = set()  # touched on the loop only
        self._loop: asyncio.AbstractEventLoop | None = None
        self.events = 0  # events handed to the loop
        self.dropped = 0  # events a slow client lost

    def bind(self, loop: asyncio.AbstractEventLoop | None) -> None:
        """The web server's loop (None once it stopped): where events are fanned out."""
        self._loop = loop

    def put(self, item: Encoded, thumb: str | None = None) -> None:
        loop = self._loop
        if loop is None or not self._clients:  # nobody listens: no cost
            return
        url = self._thumb_url(thumb)
        self._hand([Event("memory", {**wire.header_of(e, thumb), "thumb_url": url}, e.vector) for e in item.embeddings])

    def publish(self, topic: str, body: dict) -> None:
        """A bus announcement: watch matches (match.<NAME>) and forgets go to the stream too."""
        if self._loop is None or not self._clients:
            return
        if topic.startswith("match."):
            self._hand([Event("match", {"watch": topic[len("match.") :], **body})])
        elif topic == "sys.forget":
            self._hand([Event("forget", dict(body))])

    def _hand(self, events: list[Event]) -> None:
        try:
            self._loop.call_soon_threadsafe(self._deliver, events)  # type: ignore[union-attr]
            self.events += len(events)
        except RuntimeError:  # the loop closed meanwhile
            pass

    def _deliver(self, events: list[Event]) -> None:
        for client in self._clients:
            for ev in events:
                if not client.wants(ev):
                    continue
                if client.queue.full():
                    client.queue.get_nowait()
                    client.dropped += 1
                    self.dropped += 1
                client.queue.put_nowait(ev)

    def join(self, client: Client) -> None:
        """On the loop: a new client, or TooManyClients."""
        if len(self._clients) >= self._max:
            raise TooManyClients(f"at most {self._max} stream clients at once")
        self._clients.add(client)

    def leave(self, client: Client) -> None:
        self._clients.discard(client)

    def close(self) -> None:
        self._loop = None

    def stats(self) -> dict[str, int]:
        return {"clients": len(self._clients), "events": self.events, "dropped": self.dropped}
