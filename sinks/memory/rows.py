"""What the store hands back and what it refuses, importable without chromadb (the daemon runs the store in
a child process and only unpickles these)."""

from __future__ import annotations

from dataclasses import dataclass


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


def hit_from(id_: str, meta: dict, space: str, score: float) -> Hit:
    return Hit(
        id=id_,
        ts=float(meta["ts"]),
        source=str(meta["source"]),
        modality=str(meta["modality"]),
        space=space,
        score=score,
        labels=[x for x in str(meta.get("labels", "")).split("|") if x],
        thumb=str(meta.get("thumb") or "") or None,
    )


class Refused(ValueError):
    """Rows the store will never take (wrong dimension for the collection, invalid values): not retried."""
