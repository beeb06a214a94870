"""The stored pictures and a running Service over them, shared by the query and embed tests
(conftest.py: one per package, since compiling the models and encoding the pictures is the slow part).

A real Service on an ipc socket over a real Memory (Chroma), with the built MiniLM and EfficientNet IRs on CPU.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import skimage.data

from agent.query.service import Service
from encoders.image import ImageEncoder
from encoders.modelstore import ModelStore
from encoders.records import Encoded, Frame
from encoders.runtime import Runtime, RuntimeConfig
from encoders.text import TextEncoder
from sinks.client import query
from sinks.memory import Memory

T0 = 1_763_900_000.0  # unix seconds of the first stored memory
PICTURES = ("chelsea", "coffee", "rocket", "astronaut", "cat_flipped")  # one a minute from T0


def picture(name: str) -> np.ndarray:
    return (
        np.ascontiguousarray(skimage.data.chelsea()[:, ::-1])
        if name == "cat_flipped"
        else getattr(skimage.data, name)()
    )


def png(rgb: np.ndarray) -> bytes:
    """An RGB image as PNG bytes (lossless: its vectors are the stored ones)."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    return buf.tobytes()


def png_bomb(side: int) -> bytes:
    """A valid black PNG of side×side pixels, a few hundred KB however large `side` (rows of zeros deflate well)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    z, row = zlib.compressobj(), b"\0" * (1 + 3 * side)
    idat = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


class World:
    """The stored pictures, their ids, and a running Service."""

    def __init__(self, root: Path, model_cache: Path) -> None:
        store = ModelStore(model_cache)
        runtime = Runtime(RuntimeConfig("CPU", "LATENCY", 1, False, model_cache / "ov-cache"))
        self.text = TextEncoder(runtime, store.require("minilm-l6"))
        self.image = ImageEncoder(runtime, store.require("effnet-lite0"), lambda item: None)
        self.memory = Memory(root / "data", 8, 0.1, True, 64, 100)
        self.memory.start()
        self.ids: dict[str, str] = {}
        for i, name in enumerate(PICTURES):
            rgb = picture(name)
            source = "cam0" if name == "coffee" else "screen0"
            frame = Frame(source, "image", rgb, int((T0 + 60 * i) * 1e9), i)
            embs = tuple(
                replace(e, frame_id=frame.id, source=source, ts_ns=frame.ts_ns) for e in self.image.encode_now(rgb)
            )
            self.memory.put(Encoded(frame, embs))
            self.ids[name] = frame.id
        self.memory.close()  # flushes: every row is stored before the first query
        self.endpoint = f"ipc://{root}/query.sock"
        self.service = Service(self.endpoint, self.memory, [self.text], lambda: {}, image=self.image)
        self.service.start()
        self.spaces = sorted(self.image.spaces.values())

    def ask(self, **kw) -> list[dict]:
        return query(self.endpoint, timeout=30, **kw)
