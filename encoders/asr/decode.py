"""Greedy decoding helpers for Whisper: token suppression, log-probabilities, loop detection, compression ratio.

Pure numpy on one step's logits; engine.py runs the model. Definitions follow OpenAI's Whisper (and
faster-whisper): `avg_logprob` is the sum of the chosen tokens' log-probabilities, end-of-text included,
over (text tokens + 1), taken after suppression; the compression ratio is the text's UTF-8 length over
its zlib-compressed length (a looping transcript compresses well: Whisper's fallback threshold is 2.4).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence

import numpy as np

# A repeated-phrase loop: the last tokens are one block of `period` tokens repeated at least MIN_REPEATS
# times and at least MIN_SPAN tokens in all (a token 12×, a pair 6×, longer phrases 4×), any period up to
# MAX_PERIOD. "no, no, no" is speech; "Thank you. Thank you. Thank you. Thank you." is the model stuck.
MIN_REPEATS = 4
MIN_SPAN = 12
MAX_PERIOD = 32


def mask(vocab: int, ids: Iterable[int], from_id: int | None = None) -> np.ndarray:
    """bool [vocab], True at `ids` (those inside the vocabulary) and at every id >= `from_id`."""
    out = np.zeros(vocab, bool)
    idx = np.fromiter((i for i in ids if 0 <= i < vocab), np.int64)
    out[idx] = True
    if from_id is not None:
        out[from_id:] = True
    return out


def log_softmax_at(logits: np.ndarray, index: int) -> float:
    """log softmax(logits)[index], stable; -inf entries (suppressed tokens) count as probability 0."""
    top = float(logits.max())
    return float(logits[index]) - top - float(np.log(np.exp(logits - top).sum()))


def softmax_at(logits: np.ndarray, index: int) -> float:
    return float(np.exp(log_softmax_at(logits, index)))


def repeating(tokens: Sequence[int]) -> bool:
    """True when the tail of `tokens` is a repeated-phrase loop (see MIN_REPEATS, MIN_SPAN, MAX_PERIOD)."""
    n = len(tokens)
    for period in range(1, MAX_PERIOD + 1):
        reps = max(MIN_REPEATS, -(-MIN_SPAN // period))
        span = period * reps
        if span > n:
            break
        tail = list(tokens[n - span :])
        if tail == tail[-period:] * reps:
            return True
    return False


def compression_ratio(text: str) -> float:
    raw = text.encode("utf-8")
    return len(raw) / len(zlib.compress(raw)) if raw else 0.0
