"""Memory against a real embedded Chroma in a temp dir: batching, time buckets, reads, forget."""

import os
import stat
from pathlib import Path

import cv2
import numpy as np
import pytest

from sinks.memory.buckets import parse_bucket
from tests.support.rows import MIDNIGHT, T0, at, balanced, item, memory, thumbed, unit


def test_writes_batches_searches_and_persists(tmp_path):
    mem = memory(tmp_path)
    mem.start()
    basis = np.eye(4, dtype=np.float32)
    for i in range(10):
        it = item(i, unit(basis[i % 4] + 0.01 * i))
        mem.put(it, mem.thumbs.save(it.frame))
    mem.close()
    st = mem.stats()
    assert (st["received"], st["stored"], st["queued"], st["spool_rows"], st["failed"]) == (10, 10, 0, 0, 0)
    assert st["dropped"] == st["rejected"] == st["thumb_errors"] == 0 and st["store_lag_s"] == 0 and balanced(st)

    reopened = memory(tmp_path)  # a new client on the same folder sees everything
    assert reopened.count("t/4") == 10 and reopened.spaces() == ["t/4"]
    hits = reopened.search("t/4", basis[1], k=3)
    assert [h.id for h in hits] == [item(i, basis[0]).frame.id for i in (1, 5, 9)]
    assert hits[0].score > 0.99 and hits[0].labels == ["label1"] and hits[0].source == "screen0"
    thumb = cv2.imread(hits[0].thumb)
    assert thumb is not None and thumb.shape[1] == 40 and thumb.shape[0] == 30
    # a fresh process learns each source's modality from the store to filter on it
    assert len(reopened.search("t/4", basis[1], k=20, modality="image")) == 10
    assert reopened.search("t/4", basis[1], k=20, modality="audio") == []


def test_a_window_with_many_rows_is_searched_exactly(tmp_path):
    """Past SMALL rows the bucket is searched by Chroma restricted to the window's ids."""
    mem = memory(tmp_path)
    rng = np.random.default_rng(1)
    rows = [
        at(MIDNIGHT + 10 + i, i, vec=rng.standard_normal(4), source="cam0" if i % 3 else "screen0") for i in range(200)
    ]
    mem.write(rows)
    q = unit(rng.standard_normal(4))
    since, until = MIDNIGHT + 30, MIDNIGHT + 179  # rows 20..169: 150 of them
    hits = mem.search("t/4", q, k=5, since=since, until=until, source="cam0")
    inside = [r for r in rows if since <= r.frame.ts_ns / 1e9 <= until and r.frame.source == "cam0"]
    assert len(inside) == 100
    exact = sorted(inside, key=lambda r: -float(r.embeddings[0].vector @ q))[:5]
    assert [h.id for h in hits] == [r.frame.id for r in exact]
    assert np.allclose([h.score for h in hits], [float(r.embeddings[0].vector @ q) for r in exact], atol=1e-3)
    assert mem.count("t/4", since=since, until=until) == 150


@pytest.mark.parametrize(
    ("since", "until"),
    [(-100, 100), (-200, 1500), (-2000, -1000), (-3000, 3000)],
    ids=["few-rows-both-buckets", "few-and-many-rows", "many-rows-one-bucket", "every-row"],
)
def test_windowed_search_equals_brute_force_over_the_window(tmp_path, since, until):
    """Rows scored here (<= SMALL), Chroma restricted to the window's ids, and their merge across buckets give
    the exact top-k of the window, whether the row indexes are read on first use or up front (warm)."""
    mem = memory(tmp_path, thumbnails=False)
    rng = np.random.default_rng(2)
    rows = [at(MIDNIGHT + 10 * (i - 300), i, vec=rng.standard_normal(4)) for i in range(600)]  # 300 a day
    mem.write(rows)
    q = unit(rng.standard_normal(4))
    since, until = MIDNIGHT + since, MIDNIGHT + until
    inside = [r for r in rows if since <= r.frame.ts_ns / 1e9 <= until]
    exact = sorted(inside, key=lambda r: -float(r.embeddings[0].vector @ q))[:10]
    reopened = memory(tmp_path, thumbnails=False)
    assert reopened.store.warm("t/4") == 2
    for m in (mem, reopened):
        hits = m.search("t/4", q, k=10, since=since, until=until)
        assert [h.id for h in hits] == [r.frame.id for r in exact]
        assert np.allclose([h.score for h in hits], [float(r.embeddings[0].vector @ q) for r in exact], atol=1e-3)


def test_time_modality_and_source_filters(tmp_path):
    mem = memory(tmp_path)
    mem.start()
    v = unit([1, 0, 0, 0])
    for i in range(6):
        mem.put(item(i, v, source="screen0" if i % 2 else "cam0", modality="image"))
    mem.close()
    since, until = (T0 + 2e9) / 1e9, (T0 + 4e9) / 1e9
    hits = mem.search("t/4", v, k=10, since=since, until=until)
    assert sorted(round(h.ts - T0 / 1e9) for h in hits) == [2, 3, 4]
    assert {h.source for h in mem.search("t/4", v, k=10, source="cam0")} == {"cam0"}
    assert mem.search("t/4", v, k=10, modality="audio") == []


def test_rows_route_to_utc_buckets_across_midnight(tmp_path):
    mem = memory(tmp_path)
    before, after = at(MIDNIGHT - 1, 0), at(MIDNIGHT + 1, 1, vec=(1, 0.1, 0, 0))
    mem.write([before, after])  # one batch, two buckets
    buckets = mem.store.buckets("t/4")
    assert [(b.start, b.end) for b in buckets] == [(MIDNIGHT - 86400, MIDNIGHT), (MIDNIGHT, MIDNIGHT + 86400)]
    assert [mem.store.bucket_count(b) for b in buckets] == [1, 1]
    v = unit([1, 0, 0, 0])
    across = mem.search("t/4", v, k=5, since=MIDNIGHT - 60, until=MIDNIGHT + 60)
    assert [h.id for h in across] == [before.frame.id, after.frame.id]  # merged by score across buckets
    assert [h.id for h in mem.search("t/4", v, k=5, since=MIDNIGHT + 0.5)] == [after.frame.id]
    # a window inside one day touches one bucket
    assert mem.store.buckets("t/4", MIDNIGHT + 3600, MIDNIGHT + 7200) == buckets[1:]
    assert mem.store.buckets("t/4", MIDNIGHT - 7200, MIDNIGHT - 3600) == buckets[:1]
    # a new Memory finds the buckets through the index it reads at start
    assert [b.name for b in memory(tmp_path).store.buckets()] == [b.name for b in buckets]


def test_bucket_lengths_and_hourly_buckets(tmp_path):
    assert [parse_bucket(x) for x in ("1d", "6h", "30m", "3600s")] == [86400, 21600, 1800, 3600]
    for bad in ("1w", "0d", "10s", "day", ""):
        with pytest.raises(ValueError, match="bucket"):
            parse_bucket(bad)
    mem = memory(tmp_path, bucket="1h")
    mem.write([at(MIDNIGHT + 60 * m, m) for m in range(0, 180, 30)])  # 00:00 .. 02:30
    assert [b.start - MIDNIGHT for b in mem.store.buckets()] == [0, 3600, 7200]
    assert mem.count("t/4", since=MIDNIGHT + 3600, until=MIDNIGHT + 5400) == 2  # 01:00, 01:30


def test_vectors_and_range_for_more_like_this_and_backfill(tmp_path):
    mem = memory(tmp_path)
    a = at(MIDNIGHT - 5, 0, vec=(1, 2, 0, 0), source="cam0")
    b = at(MIDNIGHT + 5, 1, vec=(0, 1, 0, 0))
    c = at(MIDNIGHT + 9, 2, vec=(0, 0, 1, 0))
    mem.write([c, a, b])
    got = mem.vectors(a.frame.id)
    assert list(got) == ["t/4"] and np.allclose(got["t/4"], a.embeddings[0].vector)
    assert mem.vectors("screen0-123") == {}
    rows = mem.range(MIDNIGHT - 10)
    assert [h.id for h, _ in rows] == [a.frame.id, b.frame.id, c.frame.id]  # by ts, across buckets
    assert np.allclose(rows[2][1], c.embeddings[0].vector) and rows[0][0].source == "cam0"
    assert [h.id for h, _ in mem.range(MIDNIGHT - 10, limit=2)] == [a.frame.id, b.frame.id]
    assert [h.id for h, _ in mem.range(MIDNIGHT, until=MIDNIGHT + 6)] == [b.frame.id]
    assert [h.id for h, _ in mem.range(None, source="cam0")] == [a.frame.id]


def test_full_queue_counts_drops(tmp_path):
    mem = memory(tmp_path, queue_size=2)  # writer not started: the queue fills
    for i in range(5):
        mem.put(item(i, unit([1, 0, 0, 0])))
    st = mem.stats()
    assert st["dropped"] == 3 and st["received"] == st["queued"] == 2 and balanced(st)
    assert st["store_lag_s"] > 0  # the oldest queued row waits


def test_bad_vectors_are_counted_not_stored(tmp_path):
    mem = memory(tmp_path)
    mem.start()
    mem.put(item(0, unit([1, 0, 0, 0])))
    mem.put(item(1, np.array([np.nan, 0, 0, 1], np.float32)))
    mem.put(item(2, unit([1, 0, 0])))  # another length than the space's collection: the store refuses it
    mem.close()
    st = mem.stats()
    assert (st["stored"], st["rejected"], st["spool_rows"], st["lost"]) == (1, 2, 0, 0) and balanced(st)
    assert mem.count("t/4") == 1


def test_forget_removes_rows_queued_rows_and_thumbnails(tmp_path):
    mem = memory(tmp_path)  # the writer is not started: what is put stays queued
    day_before = [at(MIDNIGHT - 3600 * h, h) for h in range(1, 4)]  # three rows in the day before midnight
    after = [at(MIDNIGHT + 10 + i, 10 + i) for i in range(3)]  # three just after
    mem.write(day_before, thumbed(mem, day_before))
    mem.write(after, thumbed(mem, after))
    thumbs = sorted((tmp_path / "thumbs").glob("*/*.jpg"))
    assert len(thumbs) == 6
    inside, late = at(MIDNIGHT + 5, 5), at(MIDNIGHT + 20, 20)
    mem.put(inside, mem.thumbs.save(inside.frame))  # still queued when forget comes, in the range: forgotten too
    mem.put(late, mem.thumbs.save(late.frame))  # queued too, captured after the range: kept
    out = mem.forget(MIDNIGHT - 86400, MIDNIGHT + 11)  # the whole day before, and two rows after
    assert out == {"count": 6, "buckets": 1, "thumbs": 6, "keywords": 0}
    mem.start()  # the writer now writes whatever is still queued
    mem.close()
    left = mem.range(None)
    assert [h.id for h, _ in left] == [at(MIDNIGHT + 12, 12).frame.id, late.frame.id]
    assert sorted(p.name for p in (tmp_path / "thumbs").glob("*/*.jpg")) == sorted(Path(h.thumb).name for h, _ in left)
    with pytest.raises(ValueError, match="range"):
        mem.forget(None, None)


def test_data_dir_is_private(tmp_path):
    from agent.lock import private_dir

    d = private_dir(tmp_path / "a" / "data")
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
