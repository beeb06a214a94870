"""Append-only on-disk spool for rows the store could not take (store down, disk full, server unreachable).

One file per failed batch, named by a growing sequence number, replayed oldest first once the store works
again, and deleted only after the store took it. A file is written under a temporary name, fsynced and
renamed, so a crash leaves either a whole record or none. Files are 0600 in a 0700 directory.

File layout: b"SPL1", u32 little-endian header length, UTF-8 JSON header {"space", "dim", "ids", "metas"
[, "docs"]}, then len(ids) × dim little-endian float32. "docs" (the words of text memories, null for other
rows) is absent when no row of the record has any: files written before text memories read as before.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

MAGIC = b"SPL1"
SUFFIX = ".spool"


class SpoolError(ValueError):
    """A spool file that cannot be read back."""


@dataclass(frozen=True)
class Record:
    space: str
    ids: list[str]
    vectors: np.ndarray  # (n, dim) float32
    metas: list[dict]
    docs: list[str | None] | None = None  # Chroma documents: a text memory's words, None for other rows

    @property
    def oldest_ts(self) -> float:
        return min(float(m["ts"]) for m in self.metas)

    def take(self, idx: list[int]) -> Record:
        """The rows at `idx`, in that order."""
        docs = None if self.docs is None else [self.docs[i] for i in idx]
        return Record(self.space, [self.ids[i] for i in idx], self.vectors[idx], [self.metas[i] for i in idx], docs)


def encode(rec: Record) -> bytes:
    vecs = np.ascontiguousarray(rec.vectors, dtype="<f4")
    h = {"space": rec.space, "dim": int(vecs.shape[1]), "ids": rec.ids, "metas": rec.metas}
    if rec.docs is not None:
        h["docs"] = rec.docs
    header = json.dumps(h).encode()
    return MAGIC + struct.pack("<I", len(header)) + header + vecs.tobytes()


def decode(raw: bytes) -> Record:
    if raw[:4] != MAGIC or len(raw) < 8:
        raise SpoolError("not a spool record")
    (n,) = struct.unpack("<I", raw[4:8])
    try:
        h = json.loads(raw[8 : 8 + n])
        ids, dim = list(h["ids"]), int(h["dim"])
        body = raw[8 + n :]
        if len(body) != len(ids) * dim * 4 or len(h["metas"]) != len(ids):
            raise SpoolError(f"truncated record: {len(body)} vector bytes for {len(ids)} rows of dim {dim}")
        docs = h.get("docs")
        if docs is not None and (len(docs) != len(ids) or not all(d is None or isinstance(d, str) for d in docs)):
            raise SpoolError(f"docs do not match the {len(ids)} rows")
        vecs = np.frombuffer(body, dtype="<f4").reshape(len(ids), dim).astype(np.float32)
        return Record(str(h["space"]), ids, vecs, list(h["metas"]), None if docs is None else list(docs))
    except (KeyError, TypeError, ValueError) as e:
        raise SpoolError(f"bad spool header: {e}") from None


@dataclass
class _Entry:
    path: Path
    rows: int
    size: int
    oldest_ts: float


class Spool:
    """The spooled records, oldest first. Not thread-safe for writers: only the memory writer appends."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        self._lock = threading.Lock()  # guards _entries for readers of the counters
        self._entries: list[_Entry] = []
        self.bad_files = 0  # unreadable files moved to bad/
        for tmp in self.dir.glob("*.tmp"):  # a crash mid-append: the record was never complete
            tmp.unlink(missing_ok=True)
        for path in sorted(self.dir.glob("*" + SUFFIX)):
            try:
                rec = decode(path.read_bytes())
            except (OSError, SpoolError) as e:
                self._quarantine(path, e)
                continue
            self._entries.append(_Entry(path, len(rec.ids), path.stat().st_size, rec.oldest_ts))
        self._next = 1 + max((int(e.path.stem) for e in self._entries), default=0)

    def _quarantine(self, path: Path, err: Exception) -> None:
        self.bad_files += 1
        bad = self.dir / "bad"
        bad.mkdir(mode=0o700, exist_ok=True)
        log.error("spool file %s is unreadable (%s); moved to %s", path.name, err, bad)
        path.replace(bad / path.name)

    @property
    def rows(self) -> int:
        with self._lock:
            return sum(e.rows for e in self._entries)

    @property
    def bytes(self) -> int:
        with self._lock:
            return sum(e.size for e in self._entries)

    @property
    def oldest_ts(self) -> float | None:
        with self._lock:
            return min((e.oldest_ts for e in self._entries), default=None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def append(self, rec: Record) -> None:
        """Write one record durably; raises OSError if the disk refuses (the caller counts the loss)."""
        raw = encode(rec)
        path = self.dir / f"{self._next:012d}{SUFFIX}"
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(raw)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        self._fsync_dir()
        self._next += 1
        with self._lock:
            self._entries.append(_Entry(path, len(rec.ids), len(raw), rec.oldest_ts))

    def head(self) -> tuple[Path, Record] | None:
        """The oldest record, or None; an unreadable file is quarantined and skipped."""
        while True:
            with self._lock:
                if not self._entries:
                    return None
                entry = self._entries[0]
            try:
                return entry.path, decode(entry.path.read_bytes())
            except (OSError, SpoolError) as e:
                self._drop(entry.path)
                self._quarantine(entry.path, e)

    def pop(self, path: Path) -> None:
        """The store took the record at `path`."""
        self._drop(path)
        path.unlink(missing_ok=True)

    def _drop(self, path: Path) -> None:
        with self._lock:
            self._entries = [e for e in self._entries if e.path != path]

    def purge(self, since: float | None, until: float | None) -> int:
        """Remove spooled rows with since <= ts <= until (forget); returns how many."""
        removed = 0
        with self._lock:
            entries = list(self._entries)
        for entry in entries:
            _, rec = entry.path, decode(entry.path.read_bytes())
            keep = [
                i
                for i, m in enumerate(rec.metas)
                if not ((since is None or m["ts"] >= since) and (until is None or m["ts"] <= until))
            ]
            if len(keep) == len(rec.ids):
                continue
            removed += len(rec.ids) - len(keep)
            if not keep:
                self.pop(entry.path)
                continue
            kept = rec.take(keep)
            raw = encode(kept)
            tmp = entry.path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(raw)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, entry.path)  # same name: the replay order is unchanged
            with self._lock:
                entry.rows, entry.size, entry.oldest_ts = len(keep), len(raw), kept.oldest_ts
        self._fsync_dir()
        return removed

    def _fsync_dir(self) -> None:
        fd = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
