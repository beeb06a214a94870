"""Which buckets and thumbnails go: retention by age and by bytes, and forgetting a time range.

Pure planning over the bucket index plus thumbnail removal on disk; the memory writer executes the plan
(it is the single writer). Thumbnails are thumbs/<local day>/<source>-<ts_ns>.jpg, so the capture time
of each is in its name and a range can be removed without asking the store.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from sinks.memory.buckets import Bucket

log = logging.getLogger(__name__)

ROW_OVERHEAD = 200  # bytes per row beyond the vector: id, metadata, index; an estimate, see README
THUMB_NAME = re.compile(r"-(\d+)\.jpg$")


def space_dim(space: str) -> int:
    """'effnet-lite0/1280' → 1280 (512 if the name carries no dim)."""
    tail = space.rsplit("/", 1)[-1]
    return int(tail) if tail.isdigit() else 512


def estimate_bytes(space: str, rows: int) -> int:
    return rows * (4 * space_dim(space) + ROW_OVERHEAD)


@dataclass(frozen=True)
class Plan:
    drop: list[Bucket]  # whole buckets to delete
    trim: list[Bucket]  # buckets to delete from by a ts filter (partly in range)
    thumbs_before: float | None  # remove thumbnails captured before this (None: none)


def by_age(buckets: list[Bucket], cutoff: float) -> Plan:
    """Drop buckets that end at or before `cutoff`; unbounded (pre-bucketing) ones are trimmed instead."""
    drop = [b for b in buckets if b.bounded and b.end <= cutoff]
    trim = [b for b in buckets if not b.bounded]
    kept_starts = [b.start for b in buckets if b.bounded and b not in drop]
    return Plan(drop, trim, min([cutoff, *kept_starts]) if drop or trim else None)


def by_bytes(buckets: list[Bucket], sizes: dict[str, int], thumbs: list[tuple[float, int]], cap: int) -> Plan:
    """Drop the oldest time slots (every space's bucket of that slot) until the estimate is under `cap`.

    `thumbs`: (capture time, bytes) of each thumbnail; those before the oldest slot kept go with the rows."""
    rows = sum(sizes.values())
    total = rows + sum(n for _, n in thumbs)
    bounded = [b for b in buckets if b.bounded]
    starts = sorted({b.start for b in bounded})
    drop: list[Bucket] = []
    newest = len(starts) - 1  # the bucket being written now is never dropped
    for i, start in enumerate(starts[:newest]):
        if total <= cap:
            break
        slot = [b for b in bounded if b.start == start]
        drop += slot
        rows -= sum(sizes.get(b.name, 0) for b in slot)
        total = rows + sum(n for ts, n in thumbs if ts >= starts[i + 1])
    if not drop:
        return Plan([], [], None)
    kept_starts = [b.start for b in bounded if b not in drop]
    return Plan(drop, [], min(kept_starts) if kept_starts else max(b.end for b in drop))


def forget(buckets: list[Bucket], since: float | None, until: float | None) -> Plan:
    """Whole buckets inside [since, until] are dropped, partly covered ones trimmed by a ts filter."""
    hit = [b for b in buckets if b.overlaps(since, until)]
    drop = [b for b in hit if b.covered_by(since, until)]
    return Plan(drop, [b for b in hit if b not in drop], None)


def _day_range(name: str) -> tuple[float, float] | None:
    try:
        day = dt.date.fromisoformat(name)
    except ValueError:
        return None
    start = dt.datetime.combine(day, dt.time()).timestamp()  # thumbs are filed by local day
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time()).timestamp()
    return start, end


def thumb_bytes(thumbs_dir: Path | None) -> list[tuple[float, int]]:
    """(capture time, bytes) of every thumbnail; one whose name carries no time counts as never removed."""
    if thumbs_dir is None or not thumbs_dir.is_dir():
        return []
    out = []
    for p in thumbs_dir.glob("*/*.jpg"):
        m = THUMB_NAME.search(p.name)
        out.append((int(m.group(1)) / 1e9 if m else float("inf"), p.stat().st_size))
    return out


def remove_thumbs(thumbs_dir: Path | None, since: float | None, until: float | None) -> int:
    """Delete thumbnails captured in [since, until] (and day folders left empty); returns files removed."""
    if thumbs_dir is None or not thumbs_dir.is_dir():
        return 0
    removed = 0
    for day in sorted(p for p in thumbs_dir.iterdir() if p.is_dir()):
        span = _day_range(day.name)
        if span is None:
            continue
        lo, hi = span
        if (since is not None and hi <= since) or (until is not None and lo > until):
            continue
        if (since is None or since <= lo) and (until is not None and until >= hi):
            removed += sum(1 for _ in day.glob("*.jpg"))
            shutil.rmtree(day, ignore_errors=True)
            continue
        for f in day.glob("*.jpg"):
            m = THUMB_NAME.search(f.name)
            if m is None:
                continue
            ts = int(m.group(1)) / 1e9
            if (since is None or ts >= since) and (until is None or ts <= until):
                f.unlink(missing_ok=True)
                removed += 1
        if not any(day.iterdir()):
            day.rmdir()
    return removed
