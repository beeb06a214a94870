"""Text to text memories: redacted, embedded in the query text space, one Embedding per block.

Shared by every sense that produces words (screen text, and speech in agent/speech): what is stored and published
is the redacted text only, and its vector is computed from that, so a secret leaves no trace in either.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import numpy as np

from encoders.records import Embedding, Frame, text_id

from .redact import Redactor

MODALITY = "text"


class Embedder(Protocol):
    """Text to a unit vector in one space (encoders.text.TextEncoder: MiniLM, the space of text queries)."""

    space: str

    def encode(self, text: str) -> np.ndarray: ...


def memories(
    frame: Frame,
    texts: Sequence[str],
    embedder: Embedder,
    redactor: Redactor | None,
    extra: Mapping[str, str] | None = None,
) -> tuple[list[Embedding], int]:
    """One text memory per non-empty text, linked to `frame` (its id, source, capture time); and the number
    of secrets redacted (`redactor` None: redaction is off in the config). `extra`: string metadata every one
    of them carries (speech: start/end time, language, confidence)."""
    out, redacted = [], 0
    for text in texts:
        clean = text
        if redactor is not None:
            clean, found = redactor.redact(text)
            redacted += found.total()
        if not clean.strip():
            continue
        key = text_id(frame.source, frame.ts_ns, len(out))
        vector, meta = embedder.encode(clean), dict(extra or {})
        what = (frame.id, frame.source, MODALITY, embedder.space, vector, frame.ts_ns, frame.mono_ns)
        out.append(Embedding(*what, extra=meta, text=clean, key=key))
    return out, redacted
