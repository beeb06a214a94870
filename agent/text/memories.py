"""Text to text memories: redacted, embedded in the query text space, one Embedding per block.

Shared by every sense that produces words (screen text now, speech next): what is stored and published is
the redacted text only, and its vector is computed from that, so a secret leaves no trace in either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from encoders.records import Embedding, Frame, text_id

MODALITY = "text"


class Embedder(Protocol):
    """Text to a unit vector in one space (encoders.text.TextEncoder: MiniLM, the space of text queries)."""

    space: str

    def encode(self, text: str) -> np.ndarray: ...


class Redact(Protocol):
    def __call__(self, text: str) -> tuple[str, int]:
        """`text` with secrets replaced, and how many were."""


def memories(frame: Frame, texts: Sequence[str], embedder: Embedder, redact: Redact) -> tuple[list[Embedding], int]:
    """One text memory per non-empty text, linked to `frame` (its id, source, capture time); and the number
    of secrets redacted."""
    out, redacted = [], 0
    for text in texts:
        clean, n = redact(text)
        redacted += n
        if not clean.strip():
            continue
        key = text_id(frame.source, frame.ts_ns, len(out))
        vector = embedder.encode(clean)
        space = embedder.space
        out.append(
            Embedding(frame.id, frame.source, MODALITY, space, vector, frame.ts_ns, frame.mono_ns, text=clean, key=key)
        )
    return out, redacted
