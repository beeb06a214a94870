"""The `timeline` op: a window cut into equal bins, per stream how many memories each bin holds and the first of them.

For the web page's day view: one lane per stream (a source such as "screen0", its text memories "screen0#text",
the moments "all"), its count per bin and one representative per non-empty bin (the earliest). Counted from the
store's row indexes (Memory.timeline), so a day of 100k memories costs the bins' metadata reads, not the rows'.
"""

from __future__ import annotations

import math
from typing import Any

from agent.query.search import BadRequest, int_in
from sinks.memory import Memory

DEFAULT_BINS = 120
MAX_BINS = 500
MAX_DAYS = 31  # the longest window: the page shows a day; a month still reads at most MAX_BINS memories per stream


def _seconds(body: dict, key: str) -> float:
    v = body.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise BadRequest(f"timeline needs {key} as a number (unix seconds)")
    return float(v)


def parse(body: dict) -> tuple[float, float, int]:
    since, until = _seconds(body, "since"), _seconds(body, "until")
    if not since < until:
        raise BadRequest("since must be before until")
    if until - since > MAX_DAYS * 86400:
        raise BadRequest(f"the window is {(until - since) / 86400:.4g} days long; at most {MAX_DAYS} days")
    bins = DEFAULT_BINS if body.get("bins") is None else int_in(body, "bins", DEFAULT_BINS, MAX_BINS)
    return since, until, bins


class Timeline:
    """Answers `timeline` requests from `memory`."""

    def __init__(self, memory: Memory) -> None:
        self.memory = memory

    def __call__(self, body: dict) -> dict[str, Any]:
        since, until, bins = parse(body)
        lanes = []
        for lane in self.memory.timeline(since, until, bins):
            first = lane.items[0][1]  # a stream has one source and one modality
            lanes.append(
                {
                    "lane": lane.stream,
                    "source": first.source,
                    "modality": first.modality,
                    "counts": lane.counts,
                    "items": [
                        {
                            "bin": i,
                            "id": h.id,
                            "ts": h.ts,
                            "source": h.source,
                            "modality": h.modality,
                            "labels": h.labels,
                            "thumb": h.thumb,
                            "text": h.text,
                        }
                        for i, h in lane.items
                    ],
                }
            )
        return {"since": since, "until": until, "bins": bins, "width": (until - since) / bins, "lanes": lanes}
