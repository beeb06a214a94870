"""A full disk, for real: small tmpfs mounts filled to the last byte under the store, the spool or the whole data
dir, with the store in its own process as the daemon runs it. Nothing is lost silently: what cannot be stored
is spooled, what cannot be spooled either is counted as lost, and writing resumes once there is space again.

Chroma (1.5.9, embedded) can hang in an upsert after a disk-full error, even once there is space again; the
daemon then replaces the store process after `timeout_s` (120 s by default, 10 s here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sinks.memory import Memory
from sinks.memory.spool import Record
from sinks.memory.storeproc import RemoteStore, StoreError
from tests.support.disk import fill, small_fs
from tests.support.net import free_port
from tests.support.rows import MIDNIGHT, balanced, item, unit
from tests.support.wait import wait_until

OPTS = {"batch_size": 4, "flush_s": 0.1, "thumbnails": False, "thumb_width": 40, "queue_size": 1000}


def rows(n: int, start: int = 0) -> list:
    return [item(i, unit([1, 0, 0, i])) for i in range(start, start + n)]


def put_all(mem: Memory, items: list) -> None:
    """As the daemon's result stage does: the thumbnail is written first, then the row is handed over."""
    for r in items:
        mem.put(r, mem.thumbs.save(r.frame))
    wait_until(lambda: mem.stats()["queued"] == 0, 60, "the writer took every row")


def test_a_failing_spool_disk_counts_the_rows_as_lost(tmp_path: Path) -> None:
    """The store is unreachable and the spool's disk is full: the rows are neither stored nor spooled, and say so."""
    data = tmp_path / "data"
    with small_fs(data / "spool", "1m") as spool:
        filler = fill(spool)
        mem = Memory(data, **OPTS, url=f"http://127.0.0.1:{free_port()}", retry_s=0.2)  # nothing listens there
        mem.start()
        try:
            put_all(mem, rows(6))
            st = mem.stats()
            assert (st["stored"], st["failed"], st["spool_rows"], st["lost"]) == (0, 6, 0, 6) and balanced(st), st
            assert [p.name for p in spool.iterdir()] == ["filler"]  # no half-written record left behind

            filler.unlink()  # space again: the next rows are spooled; the lost ones stay counted
            put_all(mem, rows(3, start=6))
            st = mem.stats()
            assert (st["stored"], st["spool_rows"], st["lost"]) == (0, 3, 6) and balanced(st), st
        finally:
            mem.close()


def test_the_store_process_answers_a_full_disk_with_the_error_and_lives_on(tmp_path: Path) -> None:
    with small_fs(tmp_path / "chroma", "16m") as chroma:
        store = RemoteStore(chroma, "", 86400)
        try:
            meta = {"ts": MIDNIGHT + 1.0, "source": "a", "modality": "image"}
            store.upsert(Record("t/4", ["a-1"], np.eye(4, dtype=np.float32)[:1], [meta]))
            pid = store.pid
            fill(chroma)
            with pytest.raises(StoreError, match="database or disk is full"):  # Chroma's error, as text
                store.upsert(Record("t/4", ["a-2"], np.eye(4, dtype=np.float32)[1:2], [meta | {"ts": MIDNIGHT + 2}]))
            assert store.pid == pid and store.starts == 1
        finally:
            store.close()


def test_a_full_store_disk_spools_and_replays_once_there_is_space(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with small_fs(data / "chroma", "16m") as chroma:
        mem = Memory(data, **OPTS, retry_s=0.2, process=True)
        mem.start()
        try:
            put_all(mem, rows(8))
            wait_until(lambda: mem.stats()["stored"] == 8, 60, "the first rows stored")
            mem.store.timeout_s = 10.0  # see the module's docstring
            filler = fill(chroma)
            put_all(mem, rows(24, start=8))  # Chroma: "database or disk is full"
            st = mem.stats()
            assert (st["stored"], st["spool_rows"], st["lost"]) == (8, 24, 0) and st["failed"] > 0, st

            filler.unlink()
            wait_until(lambda: mem.stats()["spool_rows"] == 0, 60, "the spool replayed")
            st = mem.stats()
            assert (st["stored"], st["lost"]) == (32, 0) and balanced(st), st
            assert mem.count("t/4") == 32
        finally:
            mem.close()


def test_a_full_data_disk_loses_rows_and_thumbnails_countably_and_then_recovers(tmp_path: Path) -> None:
    """Store, spool and thumbnails share one full disk: rows are counted lost, thumbnails as errors, the writer
    keeps going, and once there is space new rows are stored with their thumbnails."""
    with small_fs(tmp_path / "data", "16m") as data:
        mem = Memory(data, **(OPTS | {"thumbnails": True}), retry_s=0.2, process=True)
        mem.start()
        try:
            put_all(mem, rows(4))
            wait_until(lambda: mem.stats()["stored"] == 4, 60, "the first rows stored")
            mem.store.timeout_s = 10.0  # see the module's docstring
            filler = fill(data)
            put_all(mem, rows(8, start=4))
            st = mem.stats()
            assert (st["stored"], st["spool_rows"], st["lost"], st["thumb_errors"]) == (4, 0, 8, 8) and balanced(st)

            filler.unlink()
            put_all(mem, rows(4, start=12))
            wait_until(lambda: mem.stats()["stored"] == 8, 60, "rows stored again")
            st = mem.stats()
            assert (st["lost"], st["thumb_errors"], st["spool_rows"]) == (8, 8, 0) and balanced(st), st
            stored = [h for h, _ in mem.range(None, limit=100)]
            assert [h.id for h in stored] == [r.frame.id for r in rows(4) + rows(4, start=12)]
            assert all(Path(h.thumb).is_file() for h in stored)
            assert np.allclose(mem.vectors(stored[-1].id)["t/4"], unit([1, 0, 0, 15]))
        finally:
            mem.close()
