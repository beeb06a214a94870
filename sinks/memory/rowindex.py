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

MAX_NS = (1 << 63) - 1  # capture times are kept as int64 nanoseconds


def split_ns(id_: str) -> tuple[str, int] | None:
    """'<stream>-<ts_ns>' → (stream, ts_ns); None for an id without a time in it."""
    stream, _, tail = id_.rpartition("-")
    return (stream, int(tail)) if stream and tail.isdigit() else None


def split_id(id_: str) -> tuple[str, float] | None:
    parts = split_ns(id_)
    return None if parts is None else (parts[0], parts[1] / 1e9)


class RowIndex:
    def __init__(self, ids: list[str]) -> None:
        self._lock = threading.Lock()
        self._ids: list[str] = []
        self._ns: list[int] = []
        self._stream: list[int] = []  # per row, its stream's place in _streams
        self._streams: list[str] = []
        self._codes: dict[str, int] = {}
        self._known: set[str] = set()
        self._arrays: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None  # ids, ts, ns, stream
        self.foreign = 0  # ids without a time (not written by sensorium), or past int64 ns: filtered reads skip them
        self.add(ids)

    def __len__(self) -> int:
        with self._lock:
            return len(self._ids)

    def add(self, ids: list[str]) -> None:
        with self._lock:
            for id_ in ids:
                if id_ in self._known:
                    continue
                parts = split_ns(id_)
                if parts is None or parts[1] > MAX_NS:
                    self.foreign += 1
                    continue
                self._known.add(id_)
                self._ids.append(id_)
                self._ns.append(parts[1])
                code = self._codes.get(parts[0])
                if code is None:
                    code = self._codes[parts[0]] = len(self._streams)
                    self._streams.append(parts[0])
                self._stream.append(code)
            self._arrays = None

    def remove(self, ids: list[str]) -> None:
        gone = set(ids)
        with self._lock:
            keep = [i for i, id_ in enumerate(self._ids) if id_ not in gone]
            self._ids = [self._ids[i] for i in keep]
            self._ns = [self._ns[i] for i in keep]
            self._stream = [self._stream[i] for i in keep]
            self._known -= gone
            self._arrays = None

    def sources(self) -> dict[str, str]:
        """One id per stream, to learn the stream's modality from."""
        with self._lock:
            return {self._streams[c]: id_ for c, id_ in zip(self._stream, self._ids, strict=True)}

    def _columns(self) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], list[str]]:
        with self._lock:
            if self._arrays is None:
                ns = np.array(self._ns, dtype=np.int64)
                ids = np.array(self._ids, dtype=object)
                self._arrays = (ids, ns / 1e9, ns, np.array(self._stream, dtype=np.int32))
            return self._arrays, list(self._streams)

    def select(self, since: float | None, until: float | None, sources: set[str] | None = None) -> list[str]:
        """Ids with since <= ts <= until (and stream in `sources` if given)."""
        (ids, ts, _, stream), names = self._columns()
        mask = np.ones(len(ids), bool)
        if since is not None:
            mask &= ts >= since
        if until is not None:
            mask &= ts <= until
        if sources is not None:
            mask &= np.isin(stream, [c for c, name in enumerate(names) if name in sources])
        return ids[mask].tolist()

    def times(self, since_ns: int, until_ns: int) -> dict[str, np.ndarray]:
        """Capture times (int64 ns) of the rows with since_ns <= ns <= until_ns, by stream (a timeline's counts:
        no id strings are touched)."""
        (_, _, ns, stream), names = self._columns()
        mask = (ns >= since_ns) & (ns <= until_ns)
        ns, stream = ns[mask], stream[mask]
        return {names[c]: ns[stream == c] for c in np.unique(stream).tolist()}
