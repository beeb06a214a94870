"""What `sensorium mcp` answers, as plain dicts for an AI assistant: the daemon's query ops made compact.

Everything goes through sinks.client over the query endpoint (never Chroma itself, so it works while the daemon
holds the store, and on another machine with CURVE). Results carry times, words, labels and thumbnail paths,
never pixels or vectors. Every failure an assistant can cause or meet is a `ToolProblem` with a sentence to read.
"""

from __future__ import annotations

import argparse
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from agent.cli.args import parse_time
from agent.cli.bus import one_line
from agent.cli.recall import anchor
from sinks.bus.keys import ClientKeys, KeysError
from sinks.client import MODALITIES, QueryError, Rejected, around, backfill, query, request

MAX_K = 100  # search hits per call: more would flood an assistant's context
MAX_LIMIT = 1000  # timeline rows per call
SNIPPET = 300  # characters of a text memory's words in a result
T = TypeVar("T")


class ToolProblem(Exception):
    """A failure to report to the assistant as a tool error (daemon down, bad time, refused request)."""


def iso(ts: float) -> str:
    """Local time with offset, to the millisecond: what a person (and an assistant) reads."""
    return dt.datetime.fromtimestamp(ts).astimezone().isoformat(timespec="milliseconds")


def moment(text: str | None, name: str) -> float | None:
    """A time as `sensorium query --since` reads it ('10m' ago, '14:00', ISO) → unix seconds."""
    if text is None or not text.strip():
        return None
    try:
        return parse_time(text)
    except argparse.ArgumentTypeError as e:
        raise ToolProblem(f"{name}: {e}") from None


def _modality(modality: str | None) -> str | None:
    if modality is not None and modality not in MODALITIES:
        raise ToolProblem(f"modality must be one of {', '.join(MODALITIES)}, not {modality!r}")
    return modality


def brief(h: dict) -> dict[str, Any]:
    """A memory (query hit, around hit or backfill header) without vectors: what an assistant needs to cite it."""
    out: dict[str, Any] = {"time": iso(float(h["ts"])), "source": h["source"], "modality": h["modality"]}
    if h.get("score") is not None:
        out["score"] = round(float(h["score"]), 4)
    if h.get("dt") is not None:
        out["dt_s"] = round(float(h["dt"]), 3)
    if h.get("labels"):
        out["labels"] = list(h["labels"])[:5]
    if h.get("snippet"):
        out["snippet"] = h["snippet"]
    if h.get("text"):
        out["text"] = one_line(h["text"], SNIPPET)
    if h.get("modality") == "moment" and (h.get("extra") or {}).get("senses"):
        out["senses"] = h["extra"]["senses"]
    out["thumb"] = h.get("thumb")
    out["id"] = h["id"]
    return out


@dataclass
class Memory:
    """The running daemon's memory, asked over its query endpoint."""

    endpoint: str
    keys: ClientKeys | None = None
    timeout: float = 15.0

    def _ask(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except Rejected as e:
            raise ToolProblem(f"the daemon refused the request: {e}") from None
        except QueryError as e:  # "no answer from the daemon at … (is it running?)"
            raise ToolProblem(str(e)) from None
        except KeysError as e:
            raise ToolProblem(f"CURVE keys: {e}") from None
        except (TypeError, ValueError) as e:
            raise ToolProblem(str(e)) from None

    def search(
        self,
        text: str,
        since: str | None = None,
        until: str | None = None,
        modality: str | None = None,
        source: str | None = None,
        k: int = 10,
    ) -> dict[str, Any]:
        if not text.strip():
            raise ToolProblem("query is empty: say what to look for, e.g. 'a cat' or 'invoice 4711'")
        lo, hi = moment(since, "since"), moment(until, "until")
        if lo is not None and hi is not None and lo > hi:
            raise ToolProblem(f"since ({iso(lo)}) is after until ({iso(hi)})")
        k = max(1, min(int(k), MAX_K))
        hits = self._ask(
            lambda: query(
                self.endpoint, text, k=k, since=lo, until=hi, modality=_modality(modality), source=source,
                timeout=self.timeout, keys=self.keys,
            )
        )  # fmt: skip
        return {"query": text, "results": [brief(h) for h in hits]}

    def timeline(
        self,
        since: str,
        until: str | None = None,
        modality: str | None = None,
        source: str | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        lo, hi = moment(since, "since"), moment(until, "until")
        if lo is None:
            raise ToolProblem("since is required: e.g. '30m' (ago), '14:00' or an ISO time")
        if hi is not None and lo > hi:
            raise ToolProblem(f"since ({iso(lo)}) is after until ({iso(hi)})")
        limit = max(1, min(int(limit), MAX_LIMIT))
        prefix = "emb." + (f"{_modality(modality)}." if modality else "")
        if modality and source:
            prefix += f"{source}."  # a whole source name: "emb.image.cam" would also match cam0
        rows: dict[str, dict] = {}  # one per memory: the store has a row per embedding space
        more = False

        def read() -> None:
            nonlocal more
            for msg in backfill(self.endpoint, lo, hi, prefix=prefix, timeout=self.timeout, keys=self.keys):
                if (source and msg.source != source) or msg.id in rows:
                    continue
                if len(rows) == limit:
                    more = True
                    return
                rows[msg.id] = brief(msg.header | {"text": msg.text})

        self._ask(read)
        out: dict[str, Any] = {"since": iso(lo), "until": iso(hi) if hi is not None else None}
        return out | {"count": len(rows), "more": more, "memories": list(rows.values())}

    def around(self, at: str, window_s: float = 30.0, k: int = 10) -> dict[str, Any]:
        id_, ts = anchor(at.strip())  # a time as `since` reads it, else a memory id
        if not id_ and ts is None:
            raise ToolProblem("moment is empty: give a memory id (from search or timeline) or a time")
        reply = self._ask(
            lambda: around(self.endpoint, id=id_, at=ts, window=window_s, k=k, timeout=self.timeout, keys=self.keys)
        )
        senses = {g["sense"]: [brief(h) for h in g["hits"]] for g in reply["senses"]}
        return {"at": iso(reply["at"]), "id": reply.get("id"), "window_s": reply["window"], "senses": senses}

    def status(self) -> dict[str, Any]:
        st = self._ask(lambda: request(self.endpoint, {"op": "status"}, self.timeout, keys=self.keys))["status"]
        sources = {}
        for name, s in st.get("sources", {}).items():
            fps = s.get("fps") or {}
            row = {"state": s.get("state"), "captured": s.get("captured"), "kept": s.get("kept")}
            row |= {"fps_in": fps.get("in"), "fps_kept": fps.get("kept"), "errors": s.get("errors", 0)}
            if s.get("last_error"):
                row["last_error"] = s["last_error"]
            if s.get("paused_until"):
                row["paused_until"] = iso(s["paused_until"])
            sources[name] = row
        mem = st.get("memory", {})
        memory = {k: mem.get(k) for k in ("stored", "queued", "dropped", "store_lag_s")}
        return {"uptime_s": round(st.get("uptime_s", 0.0), 1), "sources": sources, "memory": memory}
