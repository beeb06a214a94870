"""The bus wire format, shared by the publisher and the client (see README "Wire format").

frame 0: topic  b"emb.<modality>.<source>"
frame 1: header UTF-8 JSON {"v":1,"seq","id","ts","source","modality","space","dim","dtype","labels","thumb"}
frame 2: vector dim × little-endian float32, L2-normalised

Text memories (modality "text": screen text, speech; topic emb.text.<source>) add two header fields:
"frame", the id of the frame the words were read from (its image vectors and thumbnail share it), and
"text", the words. The words travel only on a bus that stays on this machine (ipc://, or tcp:// bound to
127.0.0.1/localhost/::1) or is CURVE-encrypted; elsewhere the header says "text": null and
"redacted": "transport", and a subscriber that needs the words asks the query endpoint (local or CURVE
too), whose backfill rows carry them. `id` is the memory's own id ("<source>#text-<ns>"), not the frame's.
A text memory may also carry "extra", an object of string values: a speech transcript's "start" and "end"
(unix seconds), "language" and "confidence" (0-1). A moment (modality "moment", topic emb.moment.all, one
vector per time slice fused from every sense, agent/moments.py) carries "end" (unix seconds; `ts` is the
slice's start) and "senses" (the streams in it, comma-separated: "screen0,screen0#text,mic0#text").

`header` is the one place a vector's header is built. The query endpoint's backfill reply reuses it: a
JSON frame whose "rows" are headers without `seq` (and without `scores`, which the store does not keep),
then one vector frame per row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from encoders.records import EXTRA_MODALITIES, Embedding

VERSION = 1
DTYPE = np.dtype("<f4")
REQUIRED = ("v", "seq", "id", "ts", "source", "modality", "space", "dim", "dtype")
REDACTED = "transport"  # "redacted": why a text memory's header carries "text": null


class WireError(ValueError):
    """A message that does not follow the wire format."""


@dataclass(frozen=True)
class Message:
    """One bus message; the header's documented fields are also attributes (`msg.id`, `msg.labels`, ...).

    `backfill` is True for memories read back from the store by a late joiner (they carry no `seq`).
    """

    topic: str
    header: dict
    vector: np.ndarray | None  # None for sys.* messages without a vector
    backfill: bool = False

    @property
    def seq(self) -> int | None:
        seq = self.header.get("seq")
        return seq if isinstance(seq, int) else None

    @property
    def id(self) -> str:
        return str(self.header.get("id", ""))

    @property
    def ts(self) -> float:
        return float(self.header.get("ts", 0.0))

    @property
    def source(self) -> str:
        return str(self.header.get("source", ""))

    @property
    def modality(self) -> str:
        return str(self.header.get("modality", ""))

    @property
    def space(self) -> str:
        return str(self.header.get("space", ""))

    @property
    def labels(self) -> list[str]:
        return list(self.header.get("labels") or [])

    @property
    def thumb(self) -> str | None:
        return self.header.get("thumb") or None

    @property
    def frame(self) -> str | None:
        """The frame a text memory was read from (None for other memories)."""
        return self.header.get("frame") or None

    @property
    def text(self) -> str | None:
        """A text memory's words; None for other memories and where the transport withheld them (`redacted`)."""
        return self.header.get("text") or None

    @property
    def redacted(self) -> str | None:
        """Why `text` is null though the memory has words ("transport": the bus is neither local nor CURVE)."""
        return self.header.get("redacted") or None

    @property
    def extra(self) -> dict[str, str]:
        """A text memory's or a moment's metadata (speech: start, end, language, confidence; a moment: end,
        senses); {} when it has none."""
        extra = self.header.get("extra")
        return {str(k): str(v) for k, v in extra.items()} if isinstance(extra, dict) else {}

    @property
    def key(self) -> tuple[str, str]:
        """(id, space): one memory row; a frame has one per space."""
        return (self.id, self.space)


def header(
    id: str,
    ts: float,
    source: str,
    modality: str,
    space: str,
    dim: int,
    labels: Sequence[str],
    thumb: str | None,
    scores: Sequence[float] | None = None,
    *,
    frame: str | None = None,
    text: str | None = None,
    redact: bool = False,
    extra: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A vector's header without `seq`, which the publisher stamps as it queues the message (per topic, in
    queue order). `scores` is left out when not given: backfill rows come from the store, which keeps none.
    `frame` and `text` are given for text memories only, `extra` for those and moments; `redact` leaves the
    words out (see above)."""
    h: dict[str, Any] = {
        "v": VERSION,
        "id": id,
        "ts": ts,
        "source": source,
        "modality": modality,
        "space": space,
        "dim": dim,
        "dtype": "float32",
        "labels": list(labels),
    }
    if scores is not None:
        h["scores"] = list(scores)
    h["thumb"] = thumb
    if frame is not None:
        h["frame"] = frame
    if text is not None:
        h["text"] = None if redact else text
        if redact:
            h["redacted"] = REDACTED
    if extra:
        h["extra"] = dict(extra)
    return h


def header_of(e: Embedding, thumb: str | None, redact: bool = False) -> dict[str, Any]:
    """The header of a freshly encoded vector (the publisher's, and the web stream's)."""
    return header(
        e.id, e.ts_ns / 1e9, e.source, e.modality, e.space, e.dim, e.labels, thumb, e.scores,
        frame=e.frame_id if e.text else None, text=e.text or None, redact=redact,
        extra=e.extra if e.modality in EXTRA_MODALITIES else None,
    )  # fmt: skip


def topic_for(modality: str, source: str) -> str:
    return f"emb.{modality}.{source}"


def encode(topic: str, header: dict, vector: np.ndarray | None) -> list[bytes | memoryview]:
    """Multipart frames; the vector goes out without a copy (ZMQ reads the numpy buffer)."""
    parts: list[bytes | memoryview] = [topic.encode(), json.dumps(header, separators=(",", ":")).encode()]
    if vector is not None:
        parts.append(memoryview(np.ascontiguousarray(vector, dtype=DTYPE)).cast("B"))
    return parts


def decode(parts: list[bytes]) -> Message:
    """A received multipart message; anything off-format raises WireError (callers count and skip)."""
    if len(parts) not in (2, 3):
        raise WireError(f"expected 2 or 3 frames, got {len(parts)}")
    try:
        topic = bytes(parts[0]).decode()
        header = json.loads(bytes(parts[1]))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WireError(f"bad topic or header: {e}") from None
    if not isinstance(header, dict):
        raise WireError("header is not a JSON object")
    if len(parts) == 2:
        return Message(topic, header, None)
    missing = [k for k in REQUIRED if k not in header]
    if missing:
        raise WireError(f"header misses {', '.join(missing)}")
    dim = header["dim"]
    if header["dtype"] != "float32" or isinstance(dim, bool) or not isinstance(dim, int) or len(parts[2]) != 4 * dim:
        raise WireError(f"vector has {len(parts[2])} bytes, header says {header['dim']} × {header['dtype']}")
    return Message(topic, header, np.frombuffer(parts[2], dtype=DTYPE))
