"""Retention: exactly the old buckets go (by age at start, by bytes on demand), then their thumbnails."""

from __future__ import annotations

import time
from pathlib import Path

from sinks.memory import Memory
from sinks.memory.retention import estimate_bytes
from tests.support.rows import MIDNIGHT, at, memory, thumbed
from tests.support.wait import wait_until

DAY = 86400
NOON = MIDNIGHT + DAY // 2


def six_days(path: Path, **kw) -> Memory:
    """One row at noon UTC on each of the six days up to today (day 0)."""
    mem = memory(path, **kw)
    rows = [at(NOON - d * DAY, d) for d in range(6)]
    mem.write(rows, thumbed(mem, rows))
    assert len(mem.store.buckets()) == 6
    return mem


def days_left(mem: Memory) -> list[int]:
    return sorted(round((NOON - h.ts) / DAY) for h, _ in mem.range(None))


def test_age_retention_drops_exactly_the_buckets_past_the_limit(tmp_path: Path) -> None:
    six_days(tmp_path)
    assert len(list((tmp_path / "thumbs").glob("*/*.jpg"))) == 6
    # 2 days before noon of day 0 is midnight+12h of day -2: the buckets of days -3 and older have ended
    aged = memory(tmp_path, retention_days=2.0)
    out = aged.apply_retention(now=NOON)
    assert out == {"buckets": 3, "rows": 3, "thumbs": 3}
    assert days_left(aged) == [0, 1, 2]
    assert [b.start for b in aged.store.buckets()] == [MIDNIGHT - 2 * DAY, MIDNIGHT - DAY, MIDNIGHT]
    left = sorted(p.name for p in (tmp_path / "thumbs").glob("*/*.jpg"))
    assert left == sorted(f"{at(NOON - d * DAY, d).frame.id}.jpg" for d in range(3))
    assert aged.apply_retention(now=NOON) == {"buckets": 0, "rows": 0, "thumbs": 0}  # nothing more to do


def test_retention_runs_on_the_writer_at_start(tmp_path: Path) -> None:
    now = time.time()
    mem = memory(tmp_path)
    mem.write([at(now - d * DAY, d) for d in range(6)])
    mem.close()
    aged = memory(tmp_path, retention_days=2.0)
    aged.start()  # the writer applies retention before anything else...
    aged.close()  # ...and close waits for the writer
    assert sorted(round((now - h.ts) / DAY) for h, _ in aged.range(None)) == [0, 1, 2]
    assert aged.stats()["retention_errors"] == 0


def test_bytes_retention_drops_the_oldest_slots_but_never_the_newest(tmp_path: Path) -> None:
    mem = six_days(tmp_path, thumbnails=False)
    row = estimate_bytes("t/4", 1)
    capped = memory(tmp_path, thumbnails=False, retention_bytes=2 * row)
    assert capped.apply_retention(now=NOON) == {"buckets": 4, "rows": 4, "thumbs": 0}
    assert days_left(capped) == [0, 1]
    tiny = memory(tmp_path, thumbnails=False, retention_bytes=1)
    assert tiny.apply_retention(now=NOON)["buckets"] == 1 and days_left(tiny) == [0]
    assert mem.count() == 1


def test_bytes_retention_counts_thumbnails_and_removes_those_of_the_dropped_days(tmp_path: Path) -> None:
    six_days(tmp_path)  # thumbnails on
    sizes = {p.stem: p.stat().st_size for p in (tmp_path / "thumbs").glob("*/*.jpg")}
    assert len(sizes) == 6
    two_days = [at(NOON - d * DAY, d).frame.id for d in (0, 1)]
    cap = sum(estimate_bytes("t/4", 1) + sizes[i] for i in two_days)  # exactly two days' rows and thumbnails
    capped = memory(tmp_path, retention_bytes=cap)
    assert capped.apply_retention(now=NOON) == {"buckets": 4, "rows": 4, "thumbs": 4}
    assert days_left(capped) == [0, 1]
    assert sorted(p.stem for p in (tmp_path / "thumbs").glob("*/*.jpg")) == sorted(two_days)
    tighter = memory(tmp_path, retention_bytes=cap - 1)  # a byte less: day 1 goes too
    assert tighter.apply_retention(now=NOON) == {"buckets": 1, "rows": 1, "thumbs": 1}
    assert days_left(tighter) == [0]


def test_retention_runs_again_every_period(tmp_path: Path) -> None:
    mem = memory(tmp_path, retention_days=2.0, retention_every_s=0.5)
    mem.start()  # the first run finds nothing to drop
    try:
        now = time.time()
        for d in (0, 1, 5):
            mem.put(at(now - d * DAY, d))  # written after that first run: only a later run can drop day -5
        wait_until(lambda: mem.stats()["stored"] == 3, 10, "rows stored")
        wait_until(lambda: mem.count() == 2, 10, "day -5 dropped by a periodic retention run")
        assert sorted(round((now - h.ts) / DAY) for h, _ in mem.range(None)) == [0, 1]
        assert mem.stats()["retention_errors"] == 0
    finally:
        mem.close()
