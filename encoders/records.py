"""Records that flow from sources through encoders to sinks.

They live in `encoders` because an encoder defines what it takes (`Frame`) and what it gives
(`Embedding`); `sinks` import them from here and nothing else of ours.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Frame:
    """One captured unit: an RGB image (H×W×3 uint8) or a mono float32 audio window."""

    source: str  # e.g. "screen0"
    modality: str  # "image" | "audio"
    data: np.ndarray
    ts_ns: int  # wall clock at capture (time.time_ns)
    mono_ns: int  # monotonic clock at capture, for latency and ordering

    @property
    def id(self) -> str:
        """Stable id shared by every vector derived from this frame."""
        return f"{self.source}-{self.ts_ns}"


# the memories whose `extra` is published and stored: text (speech: start, end, language, confidence) and moments
# (end, senses); an audio window's own (speech_prob, flatness) stays off the wire, as it always has
EXTRA_MODALITIES = ("text", "moment")


@dataclass(frozen=True)
class Embedding:
    """One L2-normalised float32 vector in one space, derived from one frame."""

    frame_id: str
    source: str
    modality: str
    space: str  # "<model>/<dim>", e.g. "effnet-lite0/1280"
    vector: np.ndarray  # shape (dim,), float32, unit norm
    ts_ns: int
    mono_ns: int
    labels: tuple[str, ...] = ()
    scores: tuple[float, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)
    # text memories (screen text, speech): the words this vector stands for, and the memory's own id, since
    # one frame gives several text blocks ("<source>#text-<ns>", see `text_id`); "" for every other vector
    text: str = ""
    key: str = ""

    @property
    def id(self) -> str:
        """The memory's id: the row in the store and the `id` in a bus header."""
        return self.key or self.frame_id

    @property
    def dim(self) -> int:
        return int(self.vector.shape[0])

    @classmethod
    def of(
        cls,
        frame: Frame,
        space: str,
        vector: np.ndarray,
        labels: tuple[str, ...] = (),
        scores: tuple[float, ...] = (),
        extra: dict[str, str] | None = None,
    ) -> Embedding:
        """The vector of `frame` in `space`, carrying the frame's id, source and capture times."""
        return cls(
            frame.id, frame.source, frame.modality, space, vector, frame.ts_ns, frame.mono_ns, labels, scores,
            dict(extra or {}),
        )  # fmt: skip


def text_id(source: str, ts_ns: int, n: int) -> str:
    """Id of the n-th text memory read from a frame of `source` captured at `ts_ns`.

    The stream "<source>#text" keeps one modality per id prefix (the store's row index filters by it) and
    the tail stays a capture time, off by n+1 ns so it never equals the frame's own id.
    """
    return f"{source}#text-{ts_ns + n + 1}"


@dataclass(frozen=True)
class TextLine:
    """One line of text read from an image (OCR) or heard (speech): its words, where, how sure."""

    text: str
    box: tuple[int, int, int, int]  # x, y, width, height in the frame's pixels ((0, 0, 0, 0) for speech)
    score: float  # recogniser confidence, 0..1


@dataclass(frozen=True)
class Transcript:
    """What a speech recogniser heard in one utterance (≤ 30 s), with Whisper's own quality signals."""

    text: str  # "" when nothing was said
    language: str  # ISO 639-1 code, detected or as asked ("en" for English-only models)
    avg_logprob: float  # mean log-probability of the chosen tokens (end-of-text included); near 0 = sure
    no_speech_prob: float  # the model's probability that the audio holds no speech
    compression_ratio: float  # UTF-8 length / zlib length of the text; > 2.4 is a looping transcript
    tokens: int  # text tokens decoded
    audio_s: float  # length of the audio transcribed
    infer_ms: float  # wall time of the whole transcription (log-mel, encoder, decoding)


@dataclass(frozen=True)
class Encoded:
    """Everything one inference produced for one frame: what the sinks receive."""

    frame: Frame
    embeddings: tuple[Embedding, ...]
    infer_ms: float = 0.0
