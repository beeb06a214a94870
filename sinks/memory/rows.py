"""What the store hands back and what it refuses, importable without chromadb (the daemon runs the store in
a child process and only unpickles these)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sinks.memory.rowindex import split_id

KEYWORDS = "keywords"  # the `space` of a hit found by its words (the keyword index), not by a vector


@dataclass(frozen=True)
class Hit:
    id: str
    ts: float
    source: str
    modality: str
    space: str
    score: float  # cosine similarity (0.0 for a hit found only by its words: space "keywords")
    labels: list[str]
    thumb: str | None
    # text memories (screen text, speech): the stored words, the frame they were read from, and the matched
    # words with [highlights] when the hit came from the keyword index; None for every other row
    text: str | None = None
    frame: str | None = None
    snippet: str | None = None
    extra: dict[str, str] | None = None  # metadata (speech: start, end, language, confidence; a moment: end, senses)


@dataclass(frozen=True)
class Lane:
    """One stream's memories in a window cut into equal bins: how many fell in each bin, and the earliest of each
    non-empty bin (score 0, space: where its metadata was read)."""

    stream: str
    counts: list[int]
    items: list[tuple[int, Hit]]  # (bin, its earliest memory), by bin


def capture_ts(id_: str, meta: dict) -> float:
    """The capture time of a row, exactly as its live bus header had it: from the frame's id
    ("<source>-<ts_ns>"), since Chroma returns some float metadata a few ulp off (measured: ~12 % of them)."""
    exact = split_id(str(meta.get("frame") or id_))
    return exact[1] if exact is not None else float(meta["ts"])


def hit_from(id_: str, meta: dict, space: str, score: float, doc: str | None = None) -> Hit:
    return Hit(
        id=id_,
        ts=capture_ts(id_, meta),
        source=str(meta["source"]),
        modality=str(meta["modality"]),
        space=space,
        score=score,
        labels=[x for x in str(meta.get("labels", "")).split("|") if x],
        thumb=str(meta.get("thumb") or "") or None,
        text=doc or None,
        frame=str(meta.get("frame") or "") or None,
        extra=_extra(meta.get("extra")),
    )


def _extra(stored: object) -> dict[str, str] | None:
    """The JSON object the writer stored (None when absent or not one: rows written by another tool)."""
    try:
        extra = json.loads(stored) if isinstance(stored, str) else None
    except ValueError:
        return None
    return {str(k): str(v) for k, v in extra.items()} if isinstance(extra, dict) else None


class Refused(ValueError):
    """Rows the store will never take (wrong dimension for the collection, invalid values): not retried."""
