"""Chroma behind time buckets: where rows go, and reads that touch only the buckets of a time window.

Embedded (`PersistentClient` under the data dir) or a `chroma run` server (`store.url`). The client is
made on first use, so an unreachable server only makes calls fail (the writer spools) instead of
failing start-up. The bucket index is read with one list_collections when the client connects and then
kept up to date on create and drop; against a server, which other agents also write, it is re-read
when older than `index_ttl_s`.

A text memory (screen text, speech) is a row whose Chroma document is its words and whose metadata names
the frame it was read from (`frame`). Its id "<source>#text-<ns>" makes "<source>#text" a stream of its own
in the row index, so each id prefix (stream) has one modality: a `modality` filter selects streams, and a
`source` filter "screen0" selects the streams "screen0" and "screen0#text".
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlparse

import chromadb
import numpy as np
from chromadb.config import Settings
from chromadb.errors import InvalidArgumentError, NotFoundError

from sinks.memory.buckets import Bucket, BucketIndex, bucket_start, collection_name, split
from sinks.memory.rowindex import MAX_NS, RowIndex, split_id
from sinks.memory.rows import Hit, Lane, Refused, hit_from
from sinks.memory.spool import Record

log = logging.getLogger(__name__)
SMALL = 64  # rows up to which a filtered bucket is scored here instead of by a Chroma query


def open_client(path: Path, url: str = "") -> chromadb.ClientAPI:
    settings = Settings(anonymized_telemetry=False)
    if not url:
        path.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(path), settings=settings)
    u = urlparse(url)
    if u.scheme not in ("http", "https") or not u.hostname:
        raise ValueError(f"store.url {url!r} must look like http://host:port")
    port = u.port or (443 if u.scheme == "https" else 8000)
    return chromadb.HttpClient(host=u.hostname, port=port, ssl=u.scheme == "https", settings=settings)


class BucketStore:
    def __init__(self, path: Path, url: str, bucket_s: int, index_ttl_s: float = 10.0) -> None:
        self.path, self.url, self.bucket_s = path, url, bucket_s
        self.index = BucketIndex()
        self.index_ttl_s = index_ttl_s if url else float("inf")
        self._client: chromadb.ClientAPI | None = None
        self._cols: dict[str, chromadb.Collection] = {}
        self._lock = threading.Lock()
        self._rows: dict[str, tuple[float, RowIndex]] = {}  # bucket name → (loaded at, its ids)
        self._rows_lock = threading.Lock()
        self._modality: dict[str, str] = {}  # stream (id prefix, rowindex.split_id) → modality (one per stream)
        # buckets are queried in parallel: Chroma releases the GIL while it searches
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="bucket-query")

    @property
    def client(self) -> chromadb.ClientAPI:
        """Connect (and read the bucket index) on first use; raises while the store is unreachable."""
        with self._lock:
            if self._client is None:
                client = open_client(self.path, self.url)
                self.index.load(self._list(client))
                self._client = client
            return self._client

    @staticmethod
    def _list(client: chromadb.ClientAPI) -> list[Bucket]:
        out = []
        for col in client.list_collections():
            b = Bucket.from_metadata(col.name, col.metadata)
            if b is not None:
                out.append(b)
        return out

    def buckets(self, space: str | None = None, since: float | None = None, until: float | None = None) -> list[Bucket]:
        client = self.client
        loaded = self.index.loaded_at
        if loaded is not None and time.monotonic() - loaded > self.index_ttl_s:
            self.index.load(self._list(client))
        return self.index.select(space, since, until)

    def spaces(self) -> list[str]:
        self.buckets()
        return self.index.spaces()

    def known_buckets(self) -> int:
        """Buckets in the index, without touching the store (status)."""
        return len(self.index.all())

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def _col(self, bucket: Bucket) -> chromadb.Collection:
        col = self._cols.get(bucket.name)
        if col is None:
            col = self.client.get_collection(bucket.name, embedding_function=None)
            self._cols[bucket.name] = col
        return col

    def _create(self, space: str, start: int) -> tuple[Bucket, chromadb.Collection]:
        name = collection_name(space, start, self.bucket_s)
        col = self._cols.get(name)
        if col is None:
            col = self.client.get_or_create_collection(
                name,
                embedding_function=None,  # we always pass vectors; never let Chroma embed
                configuration={"hnsw": {"space": "cosine"}},
                metadata={"space": space, "start": start, "length": self.bucket_s},
            )
            self._cols[name] = col
        bucket = Bucket(name, space, float(start), float(start + self.bucket_s))
        if name not in self.index:
            self.index.add(bucket)
        return bucket, col

    def split(self, rec: Record) -> list[Record]:
        return split(rec, self.bucket_s)

    def upsert(self, rec: Record) -> None:
        """Write rows of one bucket (from split); raises if the store refuses."""
        bucket, col = self._create(rec.space, bucket_start(float(rec.metas[0]["ts"]), self.bucket_s))
        try:
            if rec.docs is None:
                col.upsert(ids=rec.ids, embeddings=rec.vectors, metadatas=rec.metas)
            else:
                col.upsert(ids=rec.ids, embeddings=rec.vectors, metadatas=rec.metas, documents=rec.docs)
        except InvalidArgumentError as e:  # bad data: the caller must not retry it
            raise Refused(str(e)) from e
        for id_, m in zip(rec.ids, rec.metas, strict=True):
            parts = split_id(id_)
            self._modality.setdefault(parts[0] if parts else str(m["source"]), str(m["modality"]))
        with self._rows_lock:  # after the write: a concurrent first read of the ids either sees it or we add it
            cached = self._rows.get(bucket.name)
            if cached is not None:
                cached[1].add(rec.ids)

    def _row_index(self, b: Bucket) -> RowIndex:
        """The bucket's ids, read once (then kept up to date by upsert/trim; re-read after the TTL in server
        mode, where other agents write too)."""
        with self._rows_lock:
            cached = self._rows.get(b.name)
            if cached is None or time.monotonic() - cached[0] > self.index_ttl_s:
                cached = (time.monotonic(), RowIndex(self._col(b).get(include=[])["ids"]))
                self._rows[b.name] = cached
            return cached[1]

    def warm(self, space: str | None = None) -> int:
        """Read every bucket's ids, newest first; returns the buckets read. For a background thread at start:
        a windowed search that first touches a bucket pays this read (~35 ms per 10k rows, plus ~0.4 s per
        10k rows for Chroma's own first open of the collection after a restart), which is what made the
        p95 of random windows grow with memory."""
        n = 0
        for b in reversed(self.buckets(space)):
            try:
                self._col(b).count()  # Chroma's first open, outside _rows_lock, which upsert and searches wait on
                self._row_index(b)
            except NotFoundError:  # dropped meanwhile
                self._forget_col(b)
                continue
            n += 1
        return n

    def _select(
        self, b: Bucket, since: float | None, until: float | None, modality: str | None, source: str | None
    ) -> list[str] | None:
        """Ids of `b` matching the filters; None when nothing needs filtering (every row of the bucket)."""
        window = not b.covered_by(since, until) and (since is not None or until is not None)
        if not (window or modality or source):
            return None
        ri = self._row_index(b)
        streams = None
        if modality:
            for stream, id_ in ri.sources().items():
                if stream not in self._modality:
                    got = self._col(b).get(ids=[id_], include=["metadatas"])
                    for meta in got["metadatas"]:
                        self._modality[stream] = str(meta["modality"])
            streams = {s for s in ri.sources() if self._modality.get(s) == modality}
        if source:
            of_source = {s for s in ri.sources() if s == source or s.startswith(source + "#")}
            streams = of_source if streams is None else streams & of_source
        ids = ri.select(since, until, streams)
        return None if len(ids) == len(ri) and not ri.foreign else ids

    def _forget_col(self, bucket: Bucket) -> None:
        self._cols.pop(bucket.name, None)
        self._rows.pop(bucket.name, None)
        self.index.remove(bucket.name)

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
        q = np.asarray(vector, np.float32)[np.newaxis]
        buckets = self.buckets(space, since, until)

        def one(b: Bucket) -> list[Hit]:
            try:
                return self._search_bucket(b, space, q, k, since, until, modality, source)
            except NotFoundError:  # dropped meanwhile (retention, another agent)
                self._forget_col(b)
                return []

        parts = self._pool.map(one, buckets) if len(buckets) > 1 else map(one, buckets)
        hits = [h for part in parts for h in part]
        hits.sort(key=lambda h: (-h.score, h.ts))
        return hits[:k]

    def _search_bucket(
        self,
        b: Bucket,
        space: str,
        q: np.ndarray,
        k: int,
        since: float | None,
        until: float | None,
        modality: str | None,
        source: str | None,
    ) -> list[Hit]:
        col = self._col(b)
        ids = self._select(b, since, until, modality, source)
        if ids is not None and not ids:
            return []
        if ids is not None and len(ids) <= SMALL:  # a few rows: exact scores here beat a query round trip
            got = col.get(ids=ids, include=["metadatas", "embeddings", "documents"])
            vecs = np.asarray(got["embeddings"], np.float32)
            scores = vecs @ q[0] / np.maximum(np.linalg.norm(vecs, axis=1) * np.linalg.norm(q[0]), 1e-12)
            best = np.argsort(-scores, kind="stable")[:k]
            return [
                hit_from(got["ids"][i], got["metadatas"][i], space, round(float(scores[i]), 4), got["documents"][i])
                for i in best
            ]
        res = col.query(
            query_embeddings=q,
            n_results=k if ids is None else min(k, len(ids)),
            ids=ids,
            include=["metadatas", "distances", "documents"],
        )
        rows = zip(res["ids"][0], res["metadatas"][0], res["distances"][0], res["documents"][0], strict=True)
        return [hit_from(id_, meta, space, round(1.0 - float(dist), 4), doc) for id_, meta, dist, doc in rows]

    def range(
        self,
        since: float | None,
        until: float | None = None,
        modality: str | None = None,
        source: str | None = None,
        limit: int = 1000,
    ) -> list[tuple[Hit, np.ndarray]]:
        """Rows of every space in [since, until] oldest first, with their vectors (score 0: no query)."""
        rows: list[tuple[Hit, np.ndarray]] = []
        for b in self.buckets(None, since, until):
            if len(rows) >= limit and rows[limit - 1][0].ts < b.start:
                break  # buckets come oldest first: nothing later can be among the first `limit`
            try:
                ids = self._select(b, since, until, modality, source)
                if ids is None:
                    ids = self._row_index(b).select(None, None)
                # ids carry their capture time: fetch vectors only for the oldest `limit`, not the bucket
                ids = sorted(ids, key=lambda i: split_id(i)[1])[:limit]  # type: ignore[index]
                if not ids:
                    continue
                got = self._col(b).get(ids=ids, include=["metadatas", "embeddings", "documents"])
            except NotFoundError:
                self._forget_col(b)
                continue
            cols = (got["ids"], got["metadatas"], got["embeddings"], got["documents"])
            for id_, meta, vec, doc in zip(*cols, strict=True):
                rows.append((hit_from(id_, meta, b.space, 0.0, doc), np.asarray(vec, np.float32)))
            rows.sort(key=lambda r: (r[0].ts, r[0].space, r[0].id))
        return rows[:limit]

    def near(self, at: float, since: float, until: float, k: int) -> list[tuple[Hit, list[str]]]:
        """Per stream (a source, or its text memories: rowindex.split_id), the `k` rows captured in [since, until]
        nearest `at`, each once with the spaces it has a vector in (score 0, no vectors). Chosen from the row
        index by the time in their ids, so only the chosen rows' metadata is read, however full the window."""
        found: dict[str, dict[str, list[Bucket]]] = {}  # stream → id → the buckets (spaces) holding it
        for b in self.buckets(None, since, until):
            try:
                ids = self._row_index(b).select(since, until)
            except NotFoundError:
                self._forget_col(b)
                continue
            for id_ in ids:
                stream, _ = split_id(id_)  # type: ignore[misc]  # the row index keeps only ids with a time
                found.setdefault(stream, {}).setdefault(id_, []).append(b)
        chosen: dict[Bucket, list[str]] = {}  # where to read each chosen row's metadata from (any of its spaces)
        spaces: dict[str, list[str]] = {}
        for of_stream in found.values():
            for id_ in sorted(of_stream, key=lambda i: (abs(split_id(i)[1] - at), i))[:k]:  # type: ignore[index]
                chosen.setdefault(of_stream[id_][0], []).append(id_)
                spaces[id_] = sorted({b.space for b in of_stream[id_]})
        out: list[tuple[Hit, list[str]]] = []
        for b, ids in chosen.items():
            try:
                got = self._col(b).get(ids=ids, include=["metadatas", "documents"])
            except NotFoundError:
                self._forget_col(b)
                continue
            for id_, meta, doc in zip(got["ids"], got["metadatas"], got["documents"], strict=True):
                out.append((hit_from(id_, meta, b.space, 0.0, doc), spaces[id_]))
        return out

    def timeline(self, since: float, until: float, bins: int) -> list[Lane]:
        """Per stream, how many memories were captured in each of `bins` equal parts of [since, until] (since < until,
        the last part includes `until`) and the earliest of each non-empty part, each memory once however many spaces
        it has a row in. Counted from the row indexes by the times in the ids; only the chosen memories' metadata is
        read (one read per bucket), so a full window costs its bins, not its rows."""
        lo, hi = round(since * 1e9), round(until * 1e9)
        # part i is [edges[i], edges[i + 1]): exact in integer ns; clipped to the row indexes' int64 range, which
        # moves no row across an edge
        edges = np.array([min(max(lo + (hi - lo) * i // bins, 0), MAX_NS) for i in range(bins + 1)], np.int64)
        found: dict[str, list[tuple[np.ndarray, Bucket]]] = {}  # stream → its times in each bucket
        for b in self.buckets(None, since, until):
            try:
                times = self._row_index(b).times(int(edges[0]), int(edges[-1]))
            except NotFoundError:
                self._forget_col(b)
                continue
            for stream, ns in times.items():
                found.setdefault(stream, []).append((ns, b))
        counts: dict[str, list[int]] = {}
        chosen: dict[Bucket, list[tuple[str, int]]] = {}  # where to read each chosen memory (any of its spaces)
        for stream, parts in found.items():
            ns, first = np.unique(np.concatenate([t for t, _ in parts]), return_index=True)  # sorted, each once
            where = np.repeat(np.arange(len(parts)), [len(t) for t, _ in parts])[first]
            starts = np.searchsorted(ns, edges[:-1])  # the first memory at or after each part's start
            n = np.diff(np.append(starts, len(ns)))
            counts[stream] = n.tolist()
            for i in np.flatnonzero(n).tolist():
                chosen.setdefault(parts[where[starts[i]]][1], []).append((f"{stream}-{ns[starts[i]]}", i))
        items: dict[str, list[tuple[int, Hit]]] = {}
        for b, picks in chosen.items():
            bin_of = dict(picks)
            try:
                got = self._col(b).get(ids=list(bin_of), include=["metadatas", "documents"])
            except NotFoundError:  # dropped meanwhile: its memories are gone
                self._forget_col(b)
                continue
            for id_, meta, doc in zip(got["ids"], got["metadatas"], got["documents"], strict=True):
                items.setdefault(id_.rpartition("-")[0], []).append(
                    (bin_of[id_], hit_from(id_, meta, b.space, 0.0, doc))
                )
        return [
            Lane(stream, counts[stream], sorted(items[stream], key=lambda item: item[0])) for stream in sorted(items)
        ]

    def span(self) -> tuple[float, float] | None:
        """Capture times of the oldest and newest rows (None when memory is empty), from the row indexes of the
        buckets at either end: for "memory holds … to …" in an answer that found nothing."""
        buckets = self.buckets()
        lo = hi = None
        for b in buckets:  # oldest first: once a bucket starts after the oldest row seen, none is older
            if lo is not None and b.start > lo:
                break
            lo = min([*self._times(b), *([] if lo is None else [lo])], default=None)
        for b in sorted(buckets, key=lambda b: b.end, reverse=True):
            if hi is not None and b.end <= hi:
                break
            hi = max([*self._times(b), *([] if hi is None else [hi])], default=None)
        return None if lo is None or hi is None else (lo, hi)

    def _times(self, b: Bucket) -> list[float]:
        try:
            return [split_id(i)[1] for i in self._row_index(b).select(None, None)]  # type: ignore[index]
        except NotFoundError:
            self._forget_col(b)
            return []

    def vectors(self, id_: str) -> dict[str, np.ndarray]:
        """The stored vector of frame `id_` in every space it has one."""
        parts = split_id(id_)
        ts = None if parts is None else parts[1]
        out: dict[str, np.ndarray] = {}
        for b in self.buckets(None, ts, ts):
            try:
                got = self._col(b).get(ids=[id_], include=["embeddings"])
            except NotFoundError:
                self._forget_col(b)
                continue
            if got["ids"]:
                out[b.space] = np.asarray(got["embeddings"][0], np.float32)
        return out

    def count(self, space: str | None = None, since: float | None = None, until: float | None = None) -> int:
        n = 0
        for b in self.buckets(space, since, until):
            try:
                ids = self._select(b, since, until, None, None)
            except NotFoundError:
                self._forget_col(b)
                continue
            n += self.bucket_count(b) if ids is None else len(ids)
        return n

    def bucket_count(self, bucket: Bucket) -> int:
        try:
            return self._col(bucket).count()
        except NotFoundError:  # dropped by another agent sharing the server
            self._forget_col(bucket)
            return 0

    def drop(self, bucket: Bucket) -> int:
        """Delete a whole bucket; returns its row count."""
        try:
            n = self._col(bucket).count()
            self.client.delete_collection(bucket.name)
        except NotFoundError:
            n = 0
        self._forget_col(bucket)
        return n

    def trim(self, bucket: Bucket, since: float | None, until: float | None) -> int:
        """Delete the rows of `bucket` with since <= ts <= until; returns how many."""
        col = self._col(bucket)
        ids = self._select(bucket, since, until, None, None)
        if ids is None:  # the range covers the bucket
            ids = col.get(include=[])["ids"]
        for i in range(0, len(ids), 5000):
            col.delete(ids=ids[i : i + 5000])
        cached = self._rows.get(bucket.name)
        if cached is not None:
            cached[1].remove(ids)
        return len(ids)
