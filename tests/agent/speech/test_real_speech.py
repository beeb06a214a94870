"""The agent side of speech on real components: espeak-ng sentences → the audio encoder's VAD → utterances →
Whisper tiny.en on OpenVINO (encoders.asr) → gates →
redaction and MiniLM → text memories. A tone, noise and silence give no utterance at all."""

from __future__ import annotations

import time

import numpy as np
import pytest

from agent.speech.worker import SpeechText
from agent.text.redact import Redactor
from demo.standins import noise, tone
from encoders.asr import Whisper
from encoders.records import Encoded
from tests.agent.speech.helpers import NS, RATE, play


@pytest.fixture(scope="module")
def whisper(model_cache, tmp_path_factory) -> Whisper:
    from encoders.modelstore import ModelStore
    from encoders.runtime import Runtime, RuntimeConfig

    runtime = Runtime(RuntimeConfig("CPU", "LATENCY", 1, False, tmp_path_factory.mktemp("ov-cache")))
    return Whisper(runtime, ModelStore(model_cache).require("whisper-tiny-en"))


def run(encoder, minilm, whisper, audio: np.ndarray) -> tuple[SpeechText, list[Encoded], int, int]:
    """Play `audio` as if captured just now, with the worker running; return once it is idle."""
    out: list[Encoded] = []
    w = SpeechText(whisper, minilm, Redactor(), out.append, rate=RATE)
    ts0, mono0 = time.time_ns(), time.monotonic_ns() - len(audio) * NS // RATE
    play(encoder, audio, w.hear, ts0, mono0)
    w.start()
    deadline = time.monotonic() + 60
    while not w.idle() and time.monotonic() < deadline:  # the timer ends the last utterance, the queue empties
        time.sleep(0.05)
    w.close()
    return w, out, ts0, mono0


def test_each_sentence_is_one_memory_with_its_words_and_times(encoder, minilm, whisper, spoken) -> None:
    gap = np.zeros(2 * RATE, np.float32)
    audio = np.concatenate([gap[: RATE // 2], spoken[0], gap, spoken[1], gap[:RATE]])
    w, out, ts0, _ = run(encoder, minilm, whisper, audio)
    assert len(out) == 2, [e.text for o in out for e in o.embeddings]
    first, second = (o.embeddings[0] for o in out)
    words = first.text.lower()
    assert "budget" in words and "thursday" in words, first.text
    words = second.text.lower()
    assert "slides" in words and "lunch" in words, second.text
    # the first utterance spans its sentence (0.5 s in) and ends before the second starts
    start, end = float(first.extra["start"]), float(first.extra["end"])
    said = ts0 / 1e9 + 0.5, ts0 / 1e9 + 0.5 + len(spoken[0]) / RATE
    assert start <= said[0] + 0.05 and end >= said[1] - 0.05 and end < float(second.extra["start"])
    assert first.extra["language"] == "en" and 0.5 < float(first.extra["confidence"]) <= 1
    # found by what was said
    assert float(first.vector @ minilm.encode("when is the budget meeting")) > float(
        second.vector @ minilm.encode("when is the budget meeting")
    )
    st = w.stats()
    assert st["memories"] == 2 and st["errors"] == 0 and sum(st["gated"].values()) == 0


def test_tone_noise_and_silence_give_no_utterance(encoder, minilm, whisper) -> None:
    audio = np.concatenate([tone(3.0, 440.0, RATE), noise(3.0, RATE), np.zeros(3 * RATE, np.float32)])
    w, out, _, _ = run(encoder, minilm, whisper, audio.astype(np.float32))
    st = w.stats()
    assert out == [] and st["utterances"] == 0 and st["transcribed"] == 0
    assert st["windows"] > 10  # the windows were heard, the VAD found no speech in them
