"""bench/idle.py and bench/memory.py with speech transcripts: quick runs against the real daemon (Xvfb, PulseAudio,
the default models, speech included) give the rows with speech on and off and what speech adds. No thresholds on
the numbers: only that each was measured, and that Whisper ran (memory) or was never reached (idle)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from agent import config
from bench.common import Opts
from bench.memory import mic_feed
from demo.speech import RATE, read_wav
from encoders.modelstore import ModelStore
from tests.support.env import require

TOOLS = ("Xvfb", "feh", "pulseaudio", "pactl", "paplay", "espeak-ng")


@pytest.fixture
def whisper(model_cache: Path) -> None:
    for tool in TOOLS:
        require(tool)
    if not ModelStore(model_cache).is_built(config.load(None).models.speech):
        pytest.skip(f"the default speech model is not built in {model_cache}")


def test_mic_feed_alternates_speech_silence_and_noise(tmp_path: Path) -> None:
    require("espeak-ng")
    audio, rate = read_wav(mic_feed(tmp_path / "mic.wav", 12.0))
    assert rate == RATE and audio.size >= 12 * RATE
    hop = RATE // 10
    loud = np.array([np.sqrt(np.mean(audio[i : i + hop] ** 2)) > 1e-3 for i in range(0, audio.size - hop, hop)])
    quiet_runs = np.flatnonzero(np.diff(loud.astype(int)) != 0)
    assert (~loud).sum() >= 10 and loud.sum() >= 30 and len(quiet_runs) >= 4  # sound, a second of silence, ...


def test_quick_idle_has_rows_with_speech_on_and_off(whisper) -> None:
    from bench.idle import measure

    t = measure(Opts(quick=True, scale=0.5))
    text = t.render()
    labels = [r[0] for r in t.rows]
    assert labels == ["static page of text", "changing at 1 fps", "static page of text, [speech] off"], text
    assert all(r[2] >= 0 for r in t.rows), text
    s = t.summary
    assert s["idle.speech_added_cpu_pct"] == pytest.approx(
        s["idle.static_cpu_pct"] - s["idle.static_nospeech_cpu_pct"], abs=0.01
    )
    # a silent microphone: no window reaches the audio model, so none reaches the speech worker
    m = re.search(r"speech on \(whisper-[\w-]+\): during the still window the speech worker read (\d+) windows, cut "
                  r"(\d+) utterances, transcribed (\d+)", text)  # fmt: skip
    assert m and m.groups() == ("0", "0", "0"), text


def test_quick_memory_has_rows_with_speech_on_and_off(whisper) -> None:
    from bench.memory import measure

    t = measure(Opts(quick=True, scale=0.5))
    text = t.render()
    sums = {r[0]: r[2] for r in t.rows if r[1] == "sum of peaks"}
    assert set(sums) == {"on", "off"} and all(v > 0 for v in sums.values()), text
    assert t.summary["memory.speech_added_mb"] == pytest.approx(sums["on"] - sums["off"], abs=0.1)
    m = re.search(r"whisper-[\w-]+ cut \d+ utterances, transcribed (\d+)", text)
    assert m and int(m.group(1)) >= 1, text  # the peak with speech on includes a transcription
    assert "speech off" in text, text
