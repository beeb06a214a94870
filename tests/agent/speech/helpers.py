"""What the speech tests share: a microphone's way into the audio encoder, and `Scripted`, a transcriber with
encoders.asr.Whisper's interface that says what it is told (worker logic; the real chain runs the real model)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from encoders.records import Frame

RATE = 16000
WINDOW = 15360
NS = 1_000_000_000


def play(
    encoder, audio: np.ndarray, hear: Callable[[Frame, np.ndarray], None], ts0: int, mono0: int, dbfs_min: float = -50.0
) -> int:
    """What the daemon does with what a microphone hears: 0.96 s windows every 0.48 s (sample 0 captured at
    `ts0`/`mono0`), the quiet ones dropped (the microphone's gate), the rest encoded by the audio encoder, which
    hands each window's chunk probabilities to `hear`. Returns the windows encoded."""
    from agent.sources.microphone import dbfs

    encoder.on_speech = hear
    n = 0
    for start in range(0, len(audio) - WINDOW + 1, WINDOW // 2):
        window = audio[start : start + WINDOW]
        if dbfs(window) < dbfs_min:
            continue
        off = start * NS // RATE
        encoder.submit(Frame("mic0", "audio", window.copy(), ts0 + off, mono0 + off))
        n += 1
    return n


@dataclass
class Heard:
    """A transcript with encoders.asr.Transcript's fields."""

    text: str
    language: str = "en"
    avg_logprob: float = -0.25
    no_speech_prob: float = 0.01
    compression_ratio: float = 1.2
    tokens: int = 12
    audio_s: float = 2.0
    infer_ms: float = 5.0


@dataclass
class Scripted:
    """Says the next of `answers` (the last one again when they run out); an Exception in them is raised.
    `gate`: when set, each call waits for it first (a slow model)."""

    answers: list[Heard | Exception]
    name: str = "scripted"
    device: str = "CPU"
    sample_rate: int = RATE
    multilingual: bool = True
    calls: list[tuple[np.ndarray, str | None]] = field(default_factory=list)
    gate: threading.Event | None = None

    def transcribe(self, audio: np.ndarray, language: str | None = None) -> Heard:
        if self.gate is not None:
            self.gate.wait(30)
        self.calls.append((audio, language))
        answer = self.answers[min(len(self.calls) - 1, len(self.answers) - 1)]
        if isinstance(answer, Exception):
            raise answer
        return answer
