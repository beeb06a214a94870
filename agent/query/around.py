"""The `around` op: what every sense captured near a moment, and (`elsewhere`) the other times most like it.

A moment is a memory id (its capture time is the tail of the id, see encoders.records) or a time. Rows within
`window` seconds either side are grouped by sense, "<modality>:<source>" ("image:screen0", "text:mic0" for
speech, "moment:all" for late-fused slices), nearest first; a frame with vectors in several spaces is listed
once. They are picked from the store's row index by the time in their ids (Memory.near), so a wide window
costs one metadata read per listed row, not per row in it.

`elsewhere` searches all time with the moment's vectors: the anchor memory's own, or for a time the vectors
of the nearest memory of each sense (the moment row covering it in place of the nearest moment: a late-fused
slice stands for every sense at once). Hits inside the window are left out, the rankings are fused by rank
(search.fuse), and hits that fit in one span of 2 × `window` with better ones count as one time, shown by its
best hit. A time is scored by its place among the distinct times of each ranking (1/2, 1/3, …, summed over
rankings), not by its hits' ranks: a run of near-identical frames would otherwise fill a ranking with one time
and add up to more than a time where the screen and the words both match.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from agent.query.search import MAX_TEXT, RRF_DEPTH, BadRequest, fuse, int_in, opt_number
from sinks.memory import Hit, Memory
from sinks.memory.rowindex import split_id

DEFAULT_WINDOW = 30.0
MAX_WINDOW = 3600.0
DEFAULT_K = 10
MAX_PER_SENSE = 100
MAX_DEPTH = 500  # hits read from each elsewhere ranking
# a time's share of one ranking: 1 / (TIME_RANK_K + its place among the ranking's distinct times). Steep (RRF's
# 60 is for long lists of hits): topping one sense must outweigh trailing in several, or a time that merely has
# every sense beats the one that looked and read the same
TIME_RANK_K = 1


@dataclass(frozen=True)
class Request:
    at: float
    id: str | None
    window: float
    k: int
    elsewhere: bool


@dataclass
class Time:
    """One time found by `elsewhere`: its best hit and each matching sense's share of the rankings."""

    best: dict[str, Any]
    lo: float  # the span of its hits, at most 2 × window
    hi: float
    senses: dict[str, float] = field(default_factory=dict)
    hits: int = 0

    def as_dict(self, at: float) -> dict[str, Any]:
        b = self.best
        keep = ("id", "ts", "source", "modality", "space", "score", "labels", "thumb", "text", "frame", "extra")
        return {
            **{key: b[key] for key in keep},
            "dt": round(b["ts"] - at, 3),
            "fused": round(sum(self.senses.values()), 6),
            "senses": sorted(self.senses, key=lambda s: -self.senses[s]),  # the senses that matched, best first
            "hits": self.hits,
        }


def sense(hit: Hit | dict) -> str:
    modality, source = (hit["modality"], hit["source"]) if isinstance(hit, dict) else (hit.modality, hit.source)
    return f"{modality}:{source}"


def _when(ts: float) -> str:
    """Local time for an error message; unix seconds when out of the calendar's range (at = 1e300)."""
    try:
        return dt.datetime.fromtimestamp(ts).isoformat(" ", "seconds")
    except (OverflowError, OSError, ValueError):
        return f"{ts:g} (unix seconds)"


def parse(body: dict) -> Request:
    given = [key for key in ("id", "at") if body.get(key) is not None]
    if len(given) != 1:
        raise BadRequest("give exactly one of id (a memory id) or at (unix seconds)")
    id_ = body.get("id")
    if id_ is not None and (not isinstance(id_, str) or not id_ or len(id_) > MAX_TEXT):
        raise BadRequest("id must be a memory id (a string, as in query results and bus headers)")
    w = body.get("window", DEFAULT_WINDOW)
    if w is None:
        w = DEFAULT_WINDOW
    if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or not 0 < w <= MAX_WINDOW:
        raise BadRequest(f"window must be a number of seconds each side, above 0 and at most {MAX_WINDOW:g}")
    elsewhere = body.get("elsewhere", False)
    if elsewhere is None:
        elsewhere = False
    if not isinstance(elsewhere, bool):
        raise BadRequest("elsewhere must be true or false")
    at = opt_number(body, "at")
    k = int_in(body, "k", DEFAULT_K, MAX_PER_SENSE)
    return Request(math.nan if at is None else at, id_, float(w), k, elsewhere)  # nan: taken from the id


class Around:
    """Answers `around` requests from `memory`."""

    def __init__(self, memory: Memory) -> None:
        self.memory = memory

    def __call__(self, body: dict) -> dict[str, Any]:
        req = parse(body)
        vectors: dict[str, np.ndarray] = {}
        at = req.at
        if req.id is not None:
            vectors = self.memory.vectors(req.id)
            if not vectors:
                raise BadRequest(f"no memory with id {req.id!r}")
            parts = split_id(req.id)
            if parts is None:
                raise BadRequest(f"memory {req.id!r} has no capture time in its id (not written by sensorium)")
            at = parts[1]
        lo, hi = at - req.window, at + req.window
        extra = 1 if req.id is not None else 0  # the anchor is among the nearest of its own stream
        rows = [(h, s) for h, s in self.memory.near(at, lo, hi, req.k + extra) if h.id != req.id]
        if req.id is None and not rows:
            span = self.memory.span()
            held = "memory is empty" if span is None else f"memory holds {_when(span[0])} … {_when(span[1])}"
            raise BadRequest(f"no memories within {req.window:g} s of {_when(at)}; {held}")
        senses = group(rows, at, req.k)
        reply: dict[str, Any] = {"at": at, "id": req.id, "window": req.window, "senses": senses}
        if req.elsewhere:
            probes = list(vectors.items()) if req.id is not None else self._probes(senses, at)
            reply["elsewhere"] = self.elsewhere(probes, at, req.window, req.k)
        return reply

    def _probes(self, senses: list[dict[str, Any]], at: float) -> list[tuple[str, np.ndarray]]:
        """The vectors of the memory nearest `at` in each sense; for moments, the slice covering `at` if any."""
        out = []
        for g in senses:
            pick = g["hits"][0]
            if g["modality"] == "moment":
                covering = [h for h in g["hits"] if h["ts"] <= at <= _end(h)]
                pick = covering[0] if covering else pick
            out += list(self.memory.vectors(pick["id"]).items())
        return out

    def elsewhere(self, probes: list[tuple[str, np.ndarray]], at: float, window: float, k: int) -> list[dict]:
        lo, hi = at - window, at + window
        n = min(MAX_DEPTH, max(RRF_DEPTH, 10 * k))  # similar neighbours collapse into one time: read deep
        rankings = []
        for space, vec in probes:
            before = [h for h in self.memory.search(space, vec, n, None, lo) if h.ts < lo]
            after = [h for h in self.memory.search(space, vec, n, hi, None) if h.ts > hi]
            rankings.append(sorted(before + after, key=lambda h: (-h.score, h.ts))[:n])
        times: list[Time] = []
        of: dict[str, int] = {}  # memory id → its time
        for h in fuse(rankings, n * max(1, len(rankings))):  # best first: a time starts at its best hit
            ts = h["ts"]
            i = next((i for i, t in enumerate(times) if max(t.hi, ts) - min(t.lo, ts) <= 2 * window), None)
            if i is None:
                i = len(times)
                times.append(Time(h, ts, ts))
            t = times[i]
            t.lo, t.hi, t.hits = min(t.lo, ts), max(t.hi, ts), t.hits + 1
            of[h["id"]] = i
        for ranking in rankings:  # each time scores by its place among the distinct times of each ranking
            seen: set[int] = set()
            for hit in ranking:
                i = of[hit.id]
                if i not in seen:
                    seen.add(i)
                    name = sense(hit)
                    times[i].senses[name] = times[i].senses.get(name, 0.0) + 1.0 / (TIME_RANK_K + len(seen))
        times.sort(key=lambda t: (-sum(t.senses.values()), -t.best["rrf"], t.best["ts"]))
        return [t.as_dict(at) for t in times[:k]]


def _end(hit: dict[str, Any]) -> float:
    """A moment row's end (extra "end", unix seconds); its start when it has none."""
    try:
        return float((hit.get("extra") or {}).get("end", hit["ts"]))
    except ValueError:
        return float(hit["ts"])


def group(rows: list[tuple[Hit, list[str]]], at: float, k: int) -> list[dict[str, Any]]:
    """Rows by sense, each sense's nearest `at` first, senses by their nearest row."""
    by: dict[str, list[dict[str, Any]]] = {}
    for hit, spaces in rows:
        d = {**asdict(hit), "score": None, "spaces": spaces, "dt": round(hit.ts - at, 3)}
        by.setdefault(sense(hit), []).append(d)
    out = []
    for name, hits in by.items():
        hits.sort(key=lambda d: (abs(d["dt"]), d["ts"], d["id"]))
        out.append({"sense": name, "modality": hits[0]["modality"], "source": hits[0]["source"], "hits": hits[:k]})
    out.sort(key=lambda g: (abs(g["hits"][0]["dt"]), g["sense"]))
    return out
