"""Associative memory in Chroma. The daemon is the single writer: one writer thread batches, spools and
drops; queries read concurrently.

Rows are bucketed by space and capture time (sinks/memory/buckets.py, store.py) so a time-window query
touches only its buckets and retention drops whole buckets. A write the store refuses for a reason other
than bad data (store down, disk full, server unreachable) goes to an on-disk spool (sinks/memory/spool.py) and
is replayed in order once the store takes writes again, so that at every moment

    recovered + received == stored + queued + spool_rows + rejected + lost + purged

(`recovered`: spooled rows found at start; `lost`: rows neither stored nor spooled, e.g. the spool disk
failing too; `purged`: spooled rows removed by forget). Frames refused because the queue was full are
`dropped` and never received. Forget and retention run on the writer thread too.

Thumbnails (sinks/memory/thumbs.py) are written by the daemon's result stage before a row reaches `put`;
the writer stores the path it is given, and forget and retention remove the files with their rows.

A text memory (an Embedding with `text`: screen text, speech) is stored under its own id (`e.id`) with
its words as the Chroma document and `frame` (the frame it was read from) in its metadata, with `extra`
(a speech transcript's start, end, language, confidence) as a JSON string, as a moment's `extra` (end and
senses); once the store took it (written now or replayed from the spool) its words go into the
keyword index (sinks/memory/keywords.py), which forget and retention empty with the rows. The keyword
index counts no rows of its own: the invariant above is about the store's rows only.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from encoders.records import EXTRA_MODALITIES, Encoded
from sinks.memory import retention
from sinks.memory.buckets import parse_bucket
from sinks.memory.keywords import Keywords, Row
from sinks.memory.rows import KEYWORDS, Hit, Lane, Refused
from sinks.memory.spool import Record, Spool
from sinks.memory.storeproc import RemoteStore
from sinks.memory.thumbs import Thumbnails

if TYPE_CHECKING:
    from sinks.memory.store import BucketStore

__all__ = ["KEYWORDS", "Hit", "Memory"]

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRY_MAX_S = 30.0
DISK_EVERY_S = 300.0  # how often the data dir's size is measured for status (a walk of every file)


class Memory:
    def __init__(
        self,
        data_dir: Path,
        batch_size: int,
        flush_s: float,
        thumbnails: bool,
        thumb_width: int,
        queue_size: int,
        *,
        url: str = "",
        bucket: str = "1d",
        retention_days: float = 0.0,
        retention_bytes: int = 0,
        retention_every_s: float = 3600.0,
        retry_s: float = 0.5,
        process: bool = False,
    ) -> None:
        # process: the store runs in a child (sinks/memory/storeproc.py), as in the daemon, where Chroma's writes
        # would otherwise hold the GIL that inference callbacks need
        self.store: BucketStore | RemoteStore
        if process:
            self.store = RemoteStore(data_dir / "chroma", url, parse_bucket(bucket))
        else:
            from sinks.memory.store import BucketStore  # chromadb, in this process

            self.store = BucketStore(data_dir / "chroma", url, parse_bucket(bucket))
        self.data_dir = data_dir
        self.spool = Spool(data_dir / "spool")
        self.keywords = Keywords(data_dir / "keywords")  # local to this daemon, also with a store server
        self.thumbs = Thumbnails(data_dir / "thumbs" if thumbnails else None, thumb_width)
        self.batch_size = batch_size
        self.flush_s = flush_s
        self.retention_days, self.retention_bytes = retention_days, retention_bytes
        self.retention_every_s = retention_every_s
        self.retry_s = retry_s
        self._q: queue.Queue[tuple[Encoded, str | None]] = queue.Queue(maxsize=queue_size)  # (item, thumb)
        self._tasks: queue.Queue[tuple[Callable[[], Any], Future]] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-writer", daemon=True)
        self._lock = threading.Lock()  # counters: put runs on the result stage's thread
        self._queued = 0  # rows in the queue or in the batch being written
        self._inflight_ts: float | None = None  # oldest ts of the batch being written
        self._retry_at = 0.0  # monotonic: next replay attempt
        self._backoff = retry_s
        self._retention_at = 0.0  # monotonic: next retention run
        self._disk_at = 0.0  # monotonic: next measure of disk_bytes
        self.disk_bytes: int | None = None  # the data dir on disk (memory, keywords, thumbnails, spool), when measured
        self.recovered = self.spool.rows
        self.received = 0  # rows accepted by put
        self.stored = 0  # rows the store took (new or replayed)
        self.dropped = 0  # frames refused because the queue was full
        self.rejected = 0  # rows that are bad data (invalid vector, wrong dim): never retried
        self.failed = 0  # rows whose first write failed (they went to the spool)
        self.lost = 0  # rows neither stored nor spooled
        self.purged = 0  # spooled rows removed by forget
        self.retention_errors = 0
        self.keyword_errors = 0  # keyword index writes or reads that failed (the rows themselves are stored)

    # -- the daemon's side ------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        if not self.store.url:  # a server's row indexes expire anyway (other agents write there too)
            threading.Thread(target=self._warm, name="memory-warm", daemon=True).start()

    def _warm(self) -> None:
        """Open every bucket and read its ids now, newest first, so the first windowed query does not
        (~0.4 s for Chroma's first open of a 10k-row bucket, ~35 ms for its ids: see bench/query.py)."""
        try:
            self.store.warm()
        except Exception as e:  # only slower first queries
            log.warning("could not pre-load the store's buckets: %s", e)

    def put(self, item: Encoded, thumb: str | None = None) -> None:
        """Queue a frame's vectors (and its thumbnail's path, already on disk) for the writer; never blocks.
        Invalid vectors are counted and left out."""
        good = tuple(e for e in item.embeddings if _valid(e.vector))
        bad = len(item.embeddings) - len(good)
        if bad:
            log.error("%d vector(s) of %s are not finite 1-d float vectors; not stored", bad, item.frame.id)
        try:
            self._q.put_nowait((replace(item, embeddings=good) if bad else item, thumb))
        except queue.Full:
            with self._lock:
                self.dropped += 1
            return
        with self._lock:
            self.received += len(item.embeddings)
            self.rejected += bad
            self._queued += len(good)

    def close(self) -> None:
        """Write what is queued (to the store, else the spool), then stop the writer."""
        self._stop.set()
        idle_until = time.monotonic() + 5
        while self._thread.is_alive() and time.monotonic() < idle_until:  # wait while it makes progress
            before = self.stored
            self._thread.join(timeout=1)
            if self.stored > before:
                idle_until = time.monotonic() + 5
        self.store.close()  # a writer still busy after that spools the rest (calls to a closed store fail fast)
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    # -- the writer thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            self._run_tasks()
            self._maintain()
            stopping = self._stop.is_set()
            batch = self._collect()
            if batch:
                self._write_queued(batch)
            elif stopping and self._q.empty() and self._tasks.empty():
                break
        if len(self.spool):
            self._replay(force=True)  # one last try, so a store that came back gets everything now

    def _collect(self) -> list[tuple[Encoded, str | None]]:
        batch: list[tuple[Encoded, str | None]] = []
        deadline = time.monotonic() + self.flush_s
        while len(batch) < self.batch_size:
            timeout = deadline - time.monotonic()
            if timeout <= 0 or (self._stop.is_set() and self._q.empty()) or not self._tasks.empty():
                break
            try:
                item = self._q.get(timeout=min(timeout, 0.1))
            except queue.Empty:
                continue
            if not batch:
                self._inflight_ts = item[0].frame.ts_ns / 1e9
            batch.append(item)
        return batch

    def _run_tasks(self) -> None:
        while True:
            try:
                fn, fut = self._tasks.get_nowait()
            except queue.Empty:
                return
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn())
                except Exception as e:  # handed to the caller, who answers the request with it
                    fut.set_exception(e)

    def _call(self, fn: Callable[[], T], timeout: float = 120.0) -> T:
        """Run `fn` on the writer thread (the single writer), or here if the writer is not running."""
        if not self._thread.is_alive() or threading.current_thread() is self._thread:
            return fn()
        fut: Future = Future()
        self._tasks.put((fn, fut))
        return fut.result(timeout)

    def _maintain(self) -> None:
        if time.monotonic() >= self._disk_at:
            self._disk_at = time.monotonic() + DISK_EVERY_S
            self.disk_bytes = disk_usage(self.data_dir)
        if len(self.spool) and time.monotonic() >= self._retry_at:
            self._replay()
        if (self.retention_days or self.retention_bytes) and time.monotonic() >= self._retention_at:
            self._retention_at = time.monotonic() + self.retention_every_s
            try:
                self.apply_retention()
            except Exception as e:  # store down: try again next period
                self.retention_errors += 1
                log.error("retention failed: %s", e)

    def _write_queued(self, queued: list[tuple[Encoded, str | None]]) -> None:
        self.write([item for item, _ in queued], {item.frame.id: thumb for item, thumb in queued if thumb})

    def write(self, batch: Sequence[Encoded], thumbs: Mapping[str, str] | None = None) -> None:
        """Store `batch` now (or spool it); `thumbs`: thumbnail path by frame id, for the rows' metadata."""
        rows: dict[tuple[str, int], tuple[list[str], list[np.ndarray], list[dict], list[str | None]]] = {}
        for item in batch:
            thumb = (thumbs or {}).get(item.frame.id)
            for e in item.embeddings:
                # grouped by length too: a vector of the wrong length is refused alone, not with its batch
                ids, vecs, metas, docs = rows.setdefault((e.space, e.dim), ([], [], [], []))
                ids.append(e.id)
                vecs.append(np.asarray(e.vector, np.float32))
                meta = {"ts": e.ts_ns / 1e9, "source": e.source, "modality": e.modality}
                meta |= {"labels": "|".join(e.labels), "thumb": thumb or ""}
                if e.text:
                    meta["frame"] = e.frame_id
                if e.extra and e.modality in EXTRA_MODALITIES:  # speech: start, end, ...; a moment: end, senses
                    meta["extra"] = json.dumps(e.extra, sort_keys=True)
                metas.append(meta)
                docs.append(e.text or None)
        stored: list[Record] = []
        for (space, _), (ids, vecs, metas, docs) in rows.items():
            rec = Record(space, ids, np.stack(vecs), metas, docs if any(docs) else None)
            stored += [part for part in self.store.split(rec) if self._store(part)]
        self._index(stored)
        self._inflight_ts = None

    def _index(self, records: Sequence[Record]) -> None:
        """The words of stored text memories into the keyword index, in one transaction."""
        rows = [
            Row(
                rec.ids[i],
                float(m["ts"]),
                str(m["source"]),
                str(m["modality"]),
                rec.space,
                doc,
                m.get("thumb") or None,
                m.get("frame"),
            )
            for rec in records
            if rec.docs is not None
            for i, (m, doc) in enumerate(zip(rec.metas, rec.docs, strict=True))
            if doc
        ]
        if not rows:
            return
        try:
            self.keywords.add(rows)
        except (sqlite3.Error, OSError) as e:  # the rows are stored; only their words are not searchable
            self._count("keyword_errors", 1)
            log.error("keyword index write of %d text memories failed: %s", len(rows), e)

    def _store(self, part: Record) -> bool:
        """Into the store if nothing is spooled before it (order), else (or on failure) into the spool.
        True when the store took it now."""
        n = len(part.ids)
        if len(self.spool):
            self._replay()
        if not len(self.spool):
            try:
                self.store.upsert(part)
                self._count("stored", n, queued=-n)
                return True
            except Refused as e:
                self._count("rejected", n, queued=-n)
                log.error("store rejected %d rows in %s: %s", n, part.space, e)
                return False
            except Exception as e:  # store errors must not kill the writer: spool, count, retry later
                self._count("failed", n)
                self._retry_at = time.monotonic() + self._backoff
                log.error("store write of %d rows in %s failed (%s); spooling", n, part.space, e)
        try:
            self.spool.append(part)
            self._count(None, 0, queued=-n)
        except OSError as e:
            self._count("lost", n, queued=-n)
            log.error("spool write of %d rows failed too, rows lost: %s", n, e)
        return False

    def _replay(self, force: bool = False) -> None:
        """Spooled records into the store, oldest first, until one fails (then back off)."""
        if not force and time.monotonic() < self._retry_at:
            return
        while (head := self.spool.head()) is not None:
            path, rec = head
            try:
                for part in self.store.split(rec):
                    self.store.upsert(part)  # idempotent: a part written before a failure is rewritten
            except Refused as e:
                self.spool.pop(path)
                self._count("rejected", len(rec.ids))
                log.error("store rejected %d spooled rows in %s: %s", len(rec.ids), rec.space, e)
                continue
            except Exception as e:
                wait, self._backoff = self._backoff, min(self._backoff * 2, RETRY_MAX_S)
                self._retry_at = time.monotonic() + wait
                log.warning("replay of %d spooled rows failed (%s); next try in %.1fs", len(rec.ids), e, wait)
                return
            self.spool.pop(path)
            self._count("stored", len(rec.ids))
            self._index([rec])
            self._backoff = self.retry_s
            log.info("replayed %d spooled rows into %s (%d rows left)", len(rec.ids), rec.space, self.spool.rows)

    def _count(self, name: str | None, n: int, queued: int = 0) -> None:
        with self._lock:
            if name:
                setattr(self, name, getattr(self, name) + n)
            self._queued += queued

    # -- retention and forget (on the writer thread) ----------------------------------------------------

    def apply_retention(self, now: float | None = None) -> dict[str, int]:
        """Drop buckets past `retention_days`, then the oldest past `retention_bytes`, then their thumbnails."""
        now = time.time() if now is None else now
        return self._call(
            lambda: retention.apply(
                self.store, self.thumbs, now, self.retention_days, self.retention_bytes, self.keywords
            )
        )

    def forget(self, since: float | None, until: float | None) -> dict[str, int]:
        """Delete every row, thumbnail and keyword entry captured in [since, until], queued and spooled ones
        included; `keywords` in the reply counts the text memories removed from the keyword index."""
        if since is None and until is None:
            raise ValueError("forget needs a time range")
        return self._call(lambda: self._forget(since, until))

    def _forget(self, since: float | None, until: float | None) -> dict[str, int]:
        pending: list[tuple[Encoded, str | None]] = []
        while True:  # what is queued now was captured before the request: write it, then delete it
            try:
                pending.append(self._q.get_nowait())
            except queue.Empty:
                break
        if pending:
            self._write_queued(pending)
        purged = self.spool.purge(since, until)
        self._count("purged", purged)
        out = {"count": purged, "buckets": 0, "rows": 0, "thumbs": 0}
        out["keywords"] = self.keywords.remove(since, until)  # every space's, first: a failure forgets nothing
        retention.execute(
            retention.forget(self.store.buckets(), since, until), self.store, self.thumbs, since, until, out
        )
        out["thumbs"] += self.thumbs.remove(since, until)
        out["count"] += out.pop("rows")
        log.info("forgot %(count)d rows (%(buckets)d whole buckets) and %(thumbs)d thumbnails", out)
        return out

    # -- reads (any thread) -----------------------------------------------------------------------------

    def search(
        self,
        space: str,
        vector: np.ndarray,
        k: int,
        since: float | None = None,
        until: float | None = None,
        modality: str | None = None,
        source: str | None = None,
    ) -> list[Hit]:
        """Top-k rows of `space` nearest to `vector`, filtered by time window, modality and source."""
        return self.store.search(space, vector, k, since, until, modality, source)

    def find_words(
        self,
        text: str,
        k: int,
        since: float | None = None,
        until: float | None = None,
        modality: str | None = None,
        source: str | None = None,
    ) -> list[Hit]:
        """Text memories with the words of `text`, best first by bm25 (space "keywords", score 0: no cosine).

        From this daemon's keyword index (sinks/memory/keywords.py); a failing index answers [] and counts."""
        try:
            found = self.keywords.search(text, k, since, until, modality, source)
        except sqlite3.Error as e:
            self._count("keyword_errors", 1)
            log.error("keyword search failed: %s", e)
            return []
        return [
            Hit(m.id, m.ts, m.source, m.modality, KEYWORDS, 0.0, [], m.thumb, m.text, m.frame, m.snippet) for m in found
        ]

    def vectors(self, id: str) -> dict[str, np.ndarray]:
        """The stored vector of memory `id` in every space (for "more like this")."""
        return self.store.vectors(id)

    def range(
        self,
        since: float | None,
        until: float | None = None,
        modality: str | None = None,
        source: str | None = None,
        limit: int = 1000,
    ) -> list[tuple[Hit, np.ndarray]]:
        """Up to `limit` rows of every space captured in [since, until], oldest first (backfill)."""
        return self.store.range(since, until, modality, source, limit)

    def near(self, at: float, since: float, until: float, k: int) -> list[tuple[Hit, list[str]]]:
        """Per stream (source, or its text memories) the `k` rows in [since, until] nearest `at`, each once with
        the spaces it has vectors in (the `around` op); no vectors are read."""
        return self.store.near(at, since, until, k)

    def timeline(self, since: float, until: float, bins: int) -> list[Lane]:
        """Per stream, its memories' count in each of `bins` equal parts of [since, until] and the earliest of each
        non-empty part (the `timeline` op); from the row indexes, reading only the chosen memories' metadata."""
        return self.store.timeline(since, until, bins)

    def span(self) -> tuple[float, float] | None:
        """Capture times of the oldest and newest stored rows; None when memory is empty."""
        return self.store.span()

    def count(self, space: str | None = None, since: float | None = None, until: float | None = None) -> int:
        return self.store.count(space, since, until)

    def spaces(self) -> list[str]:
        return self.store.spaces()

    def stats(self) -> dict[str, Any]:
        with self._lock:
            counts = {
                "received": self.received,
                "stored": self.stored,
                "queued": self._queued,
                "dropped": self.dropped,
                "rejected": self.rejected,
                "failed": self.failed,
                "lost": self.lost,
                "purged": self.purged,
                "recovered": self.recovered,
            }
        oldest = [t for t in (self._queue_head_ts(), self._inflight_ts, self.spool.oldest_ts) if t is not None]
        lag = round(max(0.0, time.time() - min(oldest)), 3) if oldest else 0.0
        remote = self.store if isinstance(self.store, RemoteStore) else None
        return counts | {
            "spool_rows": self.spool.rows,
            "spool_bytes": self.spool.bytes,
            "store_lag_s": lag,
            "buckets": self._known_buckets(),
            "store_process": remote.pid if remote else None,
            "store_starts": remote.starts if remote else 0,
            "thumb_errors": self.thumbs.errors,
            "retention_errors": self.retention_errors,
            "keyword_errors": self.keyword_errors,
            "disk_bytes": self.disk_bytes,
            "budget_bytes": self.retention_bytes,
            "retention_days": self.retention_days,
        }

    def _known_buckets(self) -> int | None:
        try:
            return self.store.known_buckets()
        except Exception:  # the store process is down: status still answers
            return None

    def _queue_head_ts(self) -> float | None:
        with self._q.mutex:
            return self._q.queue[0][0].frame.ts_ns / 1e9 if self._q.queue else None


def disk_usage(root: Path) -> int:
    """Bytes allocated on disk under `root` (a file that vanishes meanwhile counts as gone)."""
    total, todo = 0, [root]
    while todo:
        try:
            with os.scandir(todo.pop()) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            todo.append(Path(entry.path))
                        else:
                            total += entry.stat(follow_symlinks=False).st_blocks * 512
                    except OSError:
                        continue
        except OSError:
            continue
    return total


def _valid(v: Any) -> bool:
    return isinstance(v, np.ndarray) and v.ndim == 1 and v.size > 0 and bool(np.isfinite(v).all())
