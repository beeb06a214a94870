"""Time buckets: one Chroma collection per (space, time bucket).

Chroma's metadata filters are slow at scale, so rows are split by capture time into buckets aligned to
UTC multiples of the bucket length. A time-window query touches only the buckets it overlaps and filters
only the partial ones; retention drops whole buckets. The bucket of a collection is kept in its metadata
(`space`, `start`, `length`), so a change of `store.bucket` keeps old buckets readable, and a collection
from before bucketing (metadata `space` only) is a bucket without bounds.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from sinks.memory.spool import Record

DURATION = re.compile(r"^(\d+)([smhd])$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
UNBOUNDED = math.inf


def parse_bucket(text: str) -> int:
    """'1d', '6h', '30m', '3600s' → seconds (a whole number, at least 60)."""
    m = DURATION.match(text.strip())
    if not m:
        raise ValueError(f"bucket {text!r} is not a duration such as 1d, 6h, 30m or 3600s")
    seconds = int(m.group(1)) * UNITS[m.group(2)]
    if seconds < 60:
        raise ValueError(f"bucket {text!r} is shorter than a minute")
    return seconds


def bucket_start(ts: float, length: int) -> int:
    """Start (unix seconds) of the bucket holding `ts`: a UTC-epoch multiple of `length`."""
    return int(ts // length) * length


def safe(space: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", space)


def collection_name(space: str, start: int, length: int) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(start))
    return f"emb_{safe(space)}_{stamp}_{length}s"


@dataclass(frozen=True)
class Bucket:
    """A collection holding the rows of `space` with start <= ts < end."""

    name: str
    space: str
    start: float
    end: float

    @property
    def bounded(self) -> bool:
        return self.end != UNBOUNDED

    def overlaps(self, since: float | None, until: float | None) -> bool:
        return (until is None or self.start <= until) and (since is None or since < self.end)

    def covered_by(self, since: float | None, until: float | None) -> bool:
        """Every ts this bucket can hold lies in [since, until]."""
        return self.bounded and (since is None or since <= self.start) and (until is None or until >= self.end)

    @staticmethod
    def from_metadata(name: str, meta: dict | None) -> Bucket | None:
        """None for collections that are not ours."""
        meta = meta or {}
        space = meta.get("space")
        if not isinstance(space, str):
            return None
        if "start" in meta and "length" in meta:
            start = float(meta["start"])
            return Bucket(name, space, start, start + float(meta["length"]))
        return Bucket(name, space, 0.0, UNBOUNDED)


class BucketIndex:
    """The buckets known to exist, per space; filled from list_collections, then kept up to date."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_name: dict[str, Bucket] = {}
        self.loaded_at: float | None = None  # monotonic

    def load(self, buckets: Iterable[Bucket]) -> None:
        with self._lock:
            self._by_name = {b.name: b for b in buckets}
            self.loaded_at = time.monotonic()

    def add(self, bucket: Bucket) -> None:
        with self._lock:
            self._by_name[bucket.name] = bucket

    def remove(self, name: str) -> None:
        with self._lock:
            self._by_name.pop(name, None)

    def __contains__(self, name: str) -> bool:
        with self._lock:
            return name in self._by_name

    def all(self) -> list[Bucket]:
        with self._lock:
            return sorted(self._by_name.values(), key=lambda b: (b.start, b.space))

    def spaces(self) -> list[str]:
        return sorted({b.space for b in self.all()})

    def select(self, space: str | None, since: float | None = None, until: float | None = None) -> list[Bucket]:
        """Buckets of `space` (every space if None) that overlap [since, until], oldest first."""
        return [b for b in self.all() if (space is None or b.space == space) and b.overlaps(since, until)]


def split(rec: Record, length: int) -> list[Record]:
    """One record per bucket the rows' ts fall in, oldest first."""
    groups: dict[int, list[int]] = {}
    for i, m in enumerate(rec.metas):
        groups.setdefault(bucket_start(float(m["ts"]), length), []).append(i)
    return [rec.take(idx) for _, idx in sorted(groups.items())]
