"""Encoded rows and a small Memory for the memory tests: known vectors at known times."""

import calendar

import numpy as np

from encoders.records import Embedding, Encoded, Frame
from sinks.memory import Memory

T0 = 1_763_900_000_000_000_000  # ns
MIDNIGHT = calendar.timegm((2026, 11, 24, 0, 0, 0))  # UTC


def unit(v) -> np.ndarray:
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


def item(i: int, vec: np.ndarray, source: str = "screen0", modality: str = "image", ts_ns: int | None = None):
    img = np.full((60, 80, 3), (i * 40) % 256, np.uint8)
    f = Frame(source, modality, img, T0 + i * 1_000_000_000 if ts_ns is None else ts_ns, i)
    emb = Embedding(f.id, source, modality, "t/4", vec, f.ts_ns, i, (f"label{i}",), (0.9,))
    return Encoded(f, (emb,))


def at(ts: float, i: int = 0, vec=(1, 0, 0, 0), **kw) -> Encoded:
    return item(i, unit(vec), ts_ns=round(ts * 1e9), **kw)


def thumbed(mem: Memory, items: list[Encoded]) -> dict[str, str]:
    """Write the items' thumbnails as the daemon's result stage does before a row reaches memory; their
    paths by frame id, for `Memory.write` (or `put` one at a time with `mem.thumbs.save(item.frame)`)."""
    return {it.frame.id: path for it in items if (path := mem.thumbs.save(it.frame))}


def memory(path, **kw) -> Memory:
    args = {"batch_size": 4, "flush_s": 0.1, "thumbnails": True, "thumb_width": 40, "queue_size": 100} | kw
    return Memory(path, **args)


def balanced(st: dict) -> bool:
    """The accounting invariant of sinks/memory/writer.py."""
    out = st["stored"] + st["queued"] + st["spool_rows"] + st["rejected"] + st["lost"] + st["purged"]
    return st["recovered"] + st["received"] == out
