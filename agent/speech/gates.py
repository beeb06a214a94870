"""Why a transcript is not stored: Whisper's own rules for silence and garbage, plus its known failure modes.

The VAD already kept silence, music and noise from reaching the model as utterances; these catch what still
gets through, with the thresholds OpenAI's `transcribe()` uses where it has one:
- `no_speech`: no_speech_prob > 0.6 *and* avg_logprob < -1 (Whisper skips such a segment as silence; a
  confident transcript with a high no-speech probability is kept, as there);
- `low_logprob`: avg_logprob below a floor (-1.5): Whisper retries below -1 at a higher temperature, we decode
  greedily once, so only a transcript far below that is dropped;
- `loop`: a repeated-phrase loop, the most common complaint about Whisper transcripts. A trailing run of one
  n-gram (n <= 10 words) repeated at least 3 times and covering at least 6 words is trimmed to one copy; if
  the loop is the whole transcript, it is dropped;
- `compression`: gzip compression ratio > 2.4 of what is left (Whisper's test for repetitive text, which also
  catches loops without spaces between words);
- `hallucination`: phrases Whisper produces from near-silence because its training subtitles end with them
  ("Thank you.", "Thanks for watching!", subtitle credits), on a short clip with a notable no-speech
  probability; subtitle credits whatever the clip;
- `empty`: nothing but spaces and punctuation.
"""

from __future__ import annotations

import re
import unicodedata
import zlib
from dataclasses import dataclass
from typing import Protocol

REASONS = ("empty", "no_speech", "low_logprob", "loop", "compression", "hallucination")
LOOP_MAX_N = 10  # longest repeated phrase looked for, in words
LOOP_MIN_REPEATS = 3
LOOP_MIN_WORDS = 6  # n × repeats: "no, no, no" stays, "thank you thank you thank you" is a loop

# Whisper's outputs on silence and noise (from its training subtitles), normalised as `norm` does
HALLUCINATIONS = frozenset(
    {
        "thank you", "thank you very much", "thanks", "thanks for watching", "thank you for watching",
        "thank you so much for watching", "please subscribe", "subscribe", "like and subscribe", "bye", "bye bye",
        "you", "so", "okay", "oh", "hmm", "the end", "i'll see you next time", "see you next time",
        "vielen dank", "danke", "danke fürs zuschauen", "tschüss", "gracias", "gracias por ver", "merci",
        "merci d'avoir regardé", "продолжение следует",
        "ご視聴ありがとうございました",
    }
)  # fmt: skip
CREDITS = re.compile(
    r"amara\.org|subtit(le|ulo)s? (by|realizados)|untertitel (im auftrag|von|der)|sous-titr|"
    r"transcribed by|transcript(ion)? by|captions? by",
    re.IGNORECASE,
)


class Transcript(Protocol):
    """What the gates and the worker read of a transcript (encoders.records.Transcript)."""

    text: str
    language: str
    avg_logprob: float
    no_speech_prob: float
    audio_s: float


@dataclass(frozen=True)
class Thresholds:
    no_speech: float = 0.6  # with avg_logprob below `logprob`: silence
    logprob: float = -1.0
    min_logprob: float = -1.5  # below this alone: garbage
    compression: float = 2.4
    hallucination_no_speech: float = 0.2  # a known phrase is dropped from this no-speech probability on
    hallucination_s: float = 3.0  # ... on clips up to this long


@dataclass(frozen=True)
class Verdict:
    text: str  # what to store (a trailing loop trimmed, spaces tidied)
    reason: str | None  # why nothing is stored; None: store `text`
    trimmed: int = 0  # words cut from a trailing loop


def norm(word_or_text: str) -> str:
    """Lower case, without punctuation at either end of each word and without accents' variants."""
    text = unicodedata.normalize("NFKC", word_or_text).casefold()
    words = (w.strip(".,!?;:…\"'«»“”‘’¡¿()[]-—–") for w in text.split())
    return " ".join(w for w in words if w)


def compression_ratio(text: str) -> float:
    """Whisper's: UTF-8 length over zlib-compressed length (repetitive text compresses well)."""
    raw = text.encode("utf-8")
    return len(raw) / len(zlib.compress(raw)) if raw else 0.0


def trailing_loop(words: list[str]) -> tuple[int, int]:
    """(n, repeats) of the longest trailing run of one n-gram repeated at least LOOP_MIN_REPEATS times and
    covering at least LOOP_MIN_WORDS words; (0, 0) when there is none. Words compare as `norm` makes them."""
    keys = [norm(w) for w in words]
    best = (0, 0)
    for n in range(1, min(LOOP_MAX_N, len(keys) // LOOP_MIN_REPEATS) + 1):
        tail = keys[len(keys) - n :]
        repeats = 1
        while (start := len(keys) - (repeats + 1) * n) >= 0 and keys[start : start + n] == tail:
            repeats += 1
        covered = n * repeats
        if repeats >= LOOP_MIN_REPEATS and covered >= LOOP_MIN_WORDS and covered > best[0] * best[1]:
            best = (n, repeats)
    return best


def judge(t: Transcript, th: Thresholds | None = None) -> Verdict:
    """What of transcript `t` to store, or why nothing (a reason in REASONS)."""
    th = th or Thresholds()
    words = t.text.split()
    text = " ".join(words)
    if not norm(text):
        return Verdict("", "empty")
    if t.no_speech_prob > th.no_speech and t.avg_logprob < th.logprob:
        return Verdict(text, "no_speech")
    if t.avg_logprob < th.min_logprob:
        return Verdict(text, "low_logprob")
    n, repeats = trailing_loop(words)
    trimmed = 0
    if repeats:
        trimmed = n * (repeats - 1)
        if trimmed + n == len(words):  # the whole transcript is the loop
            return Verdict(text, "loop", trimmed)
        text = " ".join(words[: len(words) - trimmed])
    if compression_ratio(text) > th.compression:
        return Verdict(text, "compression", trimmed)
    if CREDITS.search(text):
        return Verdict(text, "hallucination", trimmed)
    short = t.audio_s <= th.hallucination_s
    if norm(text) in HALLUCINATIONS and short and t.no_speech_prob >= th.hallucination_no_speech:
        return Verdict(text, "hallucination", trimmed)
    return Verdict(text, None, trimmed)
