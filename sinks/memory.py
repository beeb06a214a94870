"""Associative memory in Chroma. The daemon is the single writer; a writer thread batches.

One collection per embedding space, so vectors of different models never mix. Each row carries
ts (unix seconds), source, modality, labels and the thumbnail path. Thumbnails are small JPEGs on disk,
written by the writer thread (never on the capture or inference path).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import chromadb
import cv2
import numpy as np
from chromadb.config import Settings

from encoders.records import Encoded, Frame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hit:
    id: str
    ts: float
    source: str
    modality: str
    space: str
    score: float  # cosine similarity
    labels: list[str]
    thumb: str | None


def collection_name(space: str) -> str:
    return "emb_" + space.replace("/", "_")


def open_client(path: Path) -> chromadb.ClientAPI:
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))


class Memory:
    def __init__(
        self,
        data_dir: Path,
        batch_size: int,
        flush_s: float,
        thumbnails: bool,
        thumb_width: int,
        queue_size: int,
    ) -> None:
        self.client = open_client(data_dir / "chroma")
        self.thumbs_dir = data_dir / "thumbs" if thumbnails else None
        self.thumb_width = thumb_width
        self.batch_size = batch_size
        self.flush_s = flush_s
        self._q: queue.Queue[Encoded] = queue.Queue(maxsize=queue_size)
        self._cols: dict[str, chromadb.Collection] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-writer", daemon=True)
        self.stored = 0  # rows written
        self.dropped = 0  # frames refused because the queue was full
        self.failed = 0  # rows whose write failed
        self.thumb_errors = 0

    def start(self) -> None:
        self._thread.start()

    def thumb_path(self, frame: Frame) -> str | None:
        if self.thumbs_dir is None or frame.modality != "image":
            return None
        day = time.strftime("%Y-%m-%d", time.localtime(frame.ts_ns / 1e9))
        return str(self.thumbs_dir / day / f"{frame.id}.jpg")

    def put(self, item: Encoded) -> None:
        try:
            self._q.put_nowait(item)
        except queue.Full:
            self.dropped += 1

    def collection(self, space: str) -> chromadb.Collection:
        col = self._cols.get(space)
        if col is None:
            col = self.client.get_or_create_collection(
                collection_name(space),
                embedding_function=None,  # we always pass vectors; never let Chroma embed
                configuration={"hnsw": {"space": "cosine"}},
                metadata={"space": space},
            )
            self._cols[space] = col
        return col

    def _run(self) -> None:
        while not (self._stop.is_set() and self._q.empty()):
            batch: list[Encoded] = []
            deadline = time.monotonic() + self.flush_s
            while len(batch) < self.batch_size:
                timeout = deadline - time.monotonic()
                if timeout <= 0 or (self._stop.is_set() and self._q.empty()):
                    break
                try:
                    batch.append(self._q.get(timeout=min(timeout, 0.1)))
                except queue.Empty:
                    continue
            if batch:
                self.write(batch)

    def write(self, batch: list[Encoded]) -> None:
        rows: dict[str, tuple[list, list, list]] = {}
        for item in batch:
            thumb = self._save_thumb(item.frame)
            for e in item.embeddings:
                ids, vecs, metas = rows.setdefault(e.space, ([], [], []))
                ids.append(e.frame_id)
                vecs.append(e.vector)
                metas.append(
                    {
                        "ts": e.ts_ns / 1e9,
                        "source": e.source,
                        "modality": e.modality,
                        "labels": "|".join(e.labels),
                        "thumb": thumb or "",
                    }
                )
        for space, (ids, vecs, metas) in rows.items():
            try:
                self.collection(space).upsert(ids=ids, embeddings=np.stack(vecs), metadatas=metas)
                self.stored += len(ids)
            except Exception as e:  # store errors must not kill the writer; counted, logged
                self.failed += len(ids)
                log.error("store write of %d rows in %s failed: %s", len(ids), space, e)

    def _save_thumb(self, frame: Frame) -> str | None:
        path = self.thumb_path(frame)
        if path is None:
            return None
        h, w = frame.data.shape[:2]
        scale = self.thumb_width / max(w, 1)
        small = cv2.resize(frame.data, (self.thumb_width, max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
        ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80])
        try:
            if not ok:
                raise ValueError("JPEG encoding failed")
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_bytes(jpg.tobytes())
        except (OSError, ValueError) as e:
            self.thumb_errors += 1
            log.warning("thumbnail %s not written: %s", path, e)
            return None
        return path

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
        conds: list[dict] = []
        if since is not None:
            conds.append({"ts": {"$gte": float(since)}})
        if until is not None:
            conds.append({"ts": {"$lte": float(until)}})
        if modality:
            conds.append({"modality": modality})
        if source:
            conds.append({"source": source})
        where = None if not conds else conds[0] if len(conds) == 1 else {"$and": conds}
        col = self.collection(space)
        if col.count() == 0:
            return []
        res = col.query(
            query_embeddings=vector[np.newaxis].astype(np.float32),
            n_results=k,
            where=where,
            include=["metadatas", "distances"],
        )
        hits = []
        for id_, meta, dist in zip(res["ids"][0], res["metadatas"][0], res["distances"][0], strict=True):
            hits.append(
                Hit(
                    id=id_,
                    ts=float(meta["ts"]),
                    source=str(meta["source"]),
                    modality=str(meta["modality"]),
                    space=space,
                    score=round(1.0 - float(dist), 4),
                    labels=[x for x in str(meta.get("labels", "")).split("|") if x],
                    thumb=str(meta.get("thumb")) or None,
                )
            )
        return hits

    def count(self, space: str) -> int:
        return self.collection(space).count()

    def close(self) -> None:
        """Write what is queued, then stop the writer."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def stats(self) -> dict[str, int]:
        return {
            "stored": self.stored,
            "dropped": self.dropped,
            "failed": self.failed,
            "queued": self._q.qsize(),
            "thumb_errors": self.thumb_errors,
        }
