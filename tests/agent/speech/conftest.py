"""Real components the speech tests share: the audio encoder (silero-vad window IR), MiniLM, espeak-ng speech."""

from __future__ import annotations

import numpy as np
import pytest

RATE = 16000
SENTENCES = ("The budget meeting moved to Thursday afternoon.", "Please send the slides to Maria before lunch.")


@pytest.fixture(scope="session")
def encoder(model_cache, tmp_path_factory):
    """The audio encoder; a test sets its `on_speech`."""
    from encoders.audio import AudioEncoder
    from encoders.modelstore import ModelStore
    from encoders.runtime import Runtime, RuntimeConfig

    runtime = Runtime(RuntimeConfig("CPU", "LATENCY", 1, False, tmp_path_factory.mktemp("ov-cache")))
    return AudioEncoder(runtime, ModelStore(model_cache).require("silero-vad"), lambda r: None)


@pytest.fixture(scope="session")
def spoken(tmp_path_factory) -> list[np.ndarray]:
    """Each sentence spoken by espeak-ng, at 16 kHz, without espeak's leading and trailing silence."""
    import soxr

    from demo.standins import speech
    from tests.encoders.test_audio import load_wav

    out = []
    for i, text in enumerate(SENTENCES):
        samples, rate = load_wav(speech(tmp_path_factory.mktemp("speech") / f"{i}.wav", text))
        audio = soxr.resample(samples, rate, RATE).astype(np.float32)
        loud = np.flatnonzero(np.abs(audio) > 0.01)
        out.append(audio[loud[0] : loud[-1] + 1])
    return out


@pytest.fixture(scope="session")
def minilm(model_cache):
    from encoders.modelstore import ModelStore
    from encoders.runtime import Runtime, RuntimeConfig
    from encoders.text import TextEncoder

    runtime = Runtime(RuntimeConfig("CPU", "LATENCY", 1, False, model_cache / "ov-cache"))
    return TextEncoder(runtime, ModelStore(model_cache).require("minilm-l6"))
