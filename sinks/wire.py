"""The bus wire format, shared by the publisher and the client (see README "Wire format").

frame 0: topic  b"emb.<modality>.<source>"
frame 1: header UTF-8 JSON {"v":1,"seq","id","ts","source","modality","space","dim","dtype","labels","thumb"}
frame 2: vector dim × little-endian float32, L2-normalised
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

VERSION = 1
DTYPE = np.dtype("<f4")
REQUIRED = ("v", "seq", "id", "ts", "source", "modality", "space", "dim", "dtype")


class WireError(ValueError):
    """A message that does not follow the wire format."""


@dataclass(frozen=True)
class Message:
    topic: str
    header: dict
    vector: np.ndarray | None  # None for sys.* messages without a vector

    @property
    def seq(self) -> int:
        return int(self.header["seq"])


def topic_for(modality: str, source: str) -> str:
    return f"emb.{modality}.{source}"


def encode(topic: str, header: dict, vector: np.ndarray | None) -> list[bytes | memoryview]:
    """Multipart frames; the vector goes out without a copy (ZMQ reads the numpy buffer)."""
    parts: list[bytes | memoryview] = [topic.encode(), json.dumps(header, separators=(",", ":")).encode()]
    if vector is not None:
        parts.append(memoryview(np.ascontiguousarray(vector, dtype=DTYPE)).cast("B"))
    return parts


def decode(parts: list[bytes]) -> Message:
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
    if header["dtype"] != "float32" or len(parts[2]) != 4 * int(header["dim"]):
        raise WireError(f"vector has {len(parts[2])} bytes, header says {header['dim']} × {header['dtype']}")
    return Message(topic, header, np.frombuffer(parts[2], dtype=DTYPE))
