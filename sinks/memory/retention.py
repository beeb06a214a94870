"""Which buckets and thumbnails go: retention by age and by bytes, and forgetting a time range.

Planning is pure (over the bucket index); `execute` carries a plan out on the store, the thumbnails and
the keyword index, and runs on the memory writer's thread (the single writer). Keyword rows go before
their bucket: if that fails the bucket stays and the next run tries both again, never leaving words of
dropped rows searchable.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from sinks.memory.buckets import Bucket
from sinks.memory.thumbs import Thumbnails

log = logging.getLogger(__name__)

ROW_OVERHEAD = 200  # bytes per row beyond the vector: id, metadata, index; an estimate, see README


class Buckets(Protocol):
    """What retention asks of the store (BucketStore, or RemoteStore in front of its process)."""

    def buckets(self) -> list[Bucket]: ...

    def bucket_count(self, bucket: Bucket) -> int: ...

    def drop(self, bucket: Bucket) -> int: ...

    def trim(self, bucket: Bucket, since: float | None, until: float | None) -> int: ...


class KeywordRows(Protocol):
    """What retention asks of the keyword index (sinks/memory/keywords.py)."""

    def remove(
        self, since: float | None, until: float | None, space: str | None = None, end: float | None = None
    ) -> int: ...


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


def execute(
    plan: Plan,
    store: Buckets,
    thumbs: Thumbnails,
    since: float | None,
    until: float | None,
    out: dict,
    keywords: KeywordRows | None = None,
) -> None:
    """Drop and trim the plan's buckets (their keyword rows first), then its thumbnails; adds to out's
    buckets/rows/thumbs counts."""
    for b in plan.drop:
        if keywords is not None:
            keywords.remove(b.start, None, b.space, b.end if b.bounded else None)
        out["rows"] += store.drop(b)
        out["buckets"] += 1
    for b in plan.trim:
        if keywords is not None:
            keywords.remove(max(b.start, since or b.start), until, b.space, b.end if b.bounded else None)
        out["rows"] += store.trim(b, since, until)
    if plan.thumbs_before is not None:
        out["thumbs"] += thumbs.remove(None, plan.thumbs_before - 1e-6)


def apply(
    store: Buckets,
    thumbs: Thumbnails,
    now: float,
    days: float,
    max_bytes: int,
    keywords: KeywordRows | None = None,
) -> dict[str, int]:
    """Drop buckets past `days` (0: no limit), then the oldest past `max_bytes` (0: no limit), then thumbnails
    (and the keyword rows of what was dropped)."""
    out = {"buckets": 0, "rows": 0, "thumbs": 0}
    if days:
        execute(by_age(store.buckets(), now - days * 86400), store, thumbs, None, now, out, keywords)
    if max_bytes:
        buckets = store.buckets()
        sizes = {b.name: estimate_bytes(b.space, store.bucket_count(b)) for b in buckets}
        execute(by_bytes(buckets, sizes, thumbs.bytes(), max_bytes), store, thumbs, None, None, out, keywords)
    if out["buckets"] or out["rows"]:
        log.info("retention: dropped %(buckets)d buckets, %(rows)d rows, %(thumbs)d thumbnails", out)
    return out
