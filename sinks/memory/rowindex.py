"""The ids of one bucket's rows, with the capture time and stream each id carries ('<stream>-<ts_ns>'; the
stream is the source, or '<source>#text' for text memories, see encoders.records.text_id).

Why: Chroma's metadata filter costs grow with the rows matching each condition in the whole database,
not in the collection queried (measured with 1.5.9: a ts filter on a 333-row bucket took 7-13 ms in a
10k-row database, scaling with the database). Selecting the ids of a partial bucket here and querying
with `ids=` costs the same at 10k or 100k rows, so time windows stay flat as memory grows.
"""

from __future__ import annotations

import threading

import numpy as np


def split_id(id_: str) -> tuple[str, float] | None:
    source, _, tail = id_.rpartition("-")
    return (source, int(tail) / 1e9) if source and tail.isdigit() else None


class RowIndex:
    def __init__(self, ids: list[str]) -> None:
        self._lock = threading.Lock()
        self._ids: list[str] = []
        self._ts: list[float] = []
        self._src: list[str] = []
        self._known: set[str] = set()
        self._arrays: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.foreign = 0  # ids without a time in them (not written by sensorium): filtered reads skip them
        self.add(ids)

    def __len__(self) -> int:
        with self._lock:
            return len(self._ids)

    def add(self, ids: list[str]) -> None:
        with self._lock:
            for id_ in ids:
                if id_ in self._known:
                    continue
                parts = split_id(id_)
                if parts is None:
                    self.foreign += 1
                    continue
                self._known.add(id_)
                self._ids.append(id_)
                self._src.append(parts[0])
                self._ts.append(parts[1])
            self._arrays = None

    def remove(self, ids: list[str]) -> None:
        gone = set(ids)
        with self._lock:
            keep = [i for i, id_ in enumerate(self._ids) if id_ not in gone]
            self._ids = [self._ids[i] for i in keep]
            self._ts = [self._ts[i] for i in keep]
            self._src = [self._src[i] for i in keep]
            self._known -= gone
            self._arrays = None

    def sources(self) -> dict[str, str]:
        """One id per stream, to learn the stream's modality from."""
        with self._lock:
            return {s: id_ for s, id_ in zip(self._src, self._ids, strict=True)}

    def select(self, since: float | None, until: float | None, sources: set[str] | None = None) -> list[str]:
        """Ids with since <= ts <= until (and stream in `sources` if given)."""
        with self._lock:
            if self._arrays is None:
                ids, src = np.array(self._ids, dtype=object), np.array(self._src, dtype=object)
                self._arrays = (ids, np.array(self._ts), src)
            ids, ts, src = self._arrays
        mask = np.ones(len(ids), bool)
        if since is not None:
            mask &= ts >= since
        if until is not None:
            mask &= ts <= until
        if sources is not None:
            mask &= np.isin(src, list(sources))
        return ids[mask].tolist()
