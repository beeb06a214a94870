"""bench/latency.py, table 3b (speech: end of utterance → transcript on the bus): the end of speech found in real
espeak-ng audio, the word matching of transcripts, and a quick run against the real daemon on a PulseAudio null
sink with Whisper base. No timing thresholds: only that each number was measured and is causal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.common import Opts
from bench.latency import SPEECH_MODELS, SPEECH_SENTENCES, Said, heard, speech, speech_end_s
from bench.runner import goals
from demo.speech import RATE, sentence, synthesise
from encoders.modelstore import ModelStore
from tests.support.env import require


def test_speech_end_ignores_trailing_silence_and_finds_the_last_word() -> None:
    require("espeak-ng")
    audio = np.asarray(synthesise("call-back"))
    end = speech_end_s(audio, RATE)
    assert 0.5 < end <= audio.size / RATE
    padded = np.concatenate([audio, np.zeros(RATE, np.float32)])
    assert speech_end_s(padded, RATE) == end  # a second of silence after it changes nothing
    cut = audio[: int(end * RATE) - RATE // 4]  # without its last quarter second, the speech ends earlier
    assert speech_end_s(cut, RATE) < end
    assert speech_end_s(np.zeros(RATE, np.float32), RATE) == 0.0


def test_transcripts_match_their_sentence_by_words() -> None:
    s = sentence("budget-report")
    assert heard(s.text, "Please send the quarterly budget report to Sarah before Friday.") == 1.0
    assert heard(s.text, "please send the quarterly budget report") == pytest.approx(5 / 8)  # not "the", "to"
    assert heard(s.text, "The backup runs every night.") == 0.0
    said = Said(s.name, s.text, end=100.0, exit=100.4, got=[(99.0, "Good morning.", 98.0), (101.25, s.text, 100.5)])
    assert said.matched and said.latency_ms == pytest.approx(1250.0)
    assert said.split_ms() == pytest.approx((500.0, 750.0))  # before and after the utterance's stamped end
    pieces = [(101.0, "Please send the quarterly", 99.0), (102.0, "budget report to Sarah", 100.2)]
    split = Said(s.name, s.text, 100.0, 100.4, pieces)
    assert split.matched and split.latency_ms == pytest.approx(2000.0)  # the last piece ends the sentence
    assert split.split_ms() == pytest.approx((200.0, 1800.0))
    missed = Said(s.name, s.text, 100.0, 100.4, [(101.0, "Sarah", 100.2)])
    assert not missed.matched and missed.latency_ms is None and missed.split_ms() is None


def test_quick_speech_latency_against_the_daemon(model_cache: Path) -> None:
    for tool in ("pulseaudio", "pactl", "paplay", "espeak-ng"):
        require(tool)
    if not ModelStore(model_cache).is_built(SPEECH_MODELS[0]):
        pytest.skip(f"{SPEECH_MODELS[0]} is not built in {model_cache}")
    t = speech(Opts(quick=True))
    text = t.render()
    assert t.title.startswith("3b. Speech") and "not measured" not in text, text
    rows = {r[1]: r for r in t.rows}
    e2e = rows["end of speech → transcript on the bus"]
    assert e2e[0] == SPEECH_MODELS[0] and e2e[2] == 2, text  # both sentences heard (quick mode says two)
    assert 0 < e2e[3] <= e2e[4], text  # a transcript comes after the speech ended, p50 <= p95
    work = rows["  transcription (worker)"]
    assert work[2] >= 3 and 0 < work[3] <= work[4], text  # the warm-up and the two sentences
    assert rows["paplay exit after the end of speech"][2] == 2, text
    before, after = (
        rows["  end of speech → utterance end (post-roll, capture)"],
        rows["  utterance end → on the bus (daemon)"],
    )
    assert before[2] == after[2] == 2 and after[3] > 0, text
    assert before[3] + after[3] == pytest.approx(e2e[3], abs=1.0) or before[4] + after[4] >= e2e[3], text
    assert rows["    ≈ end detection, embedding, bus (that p50 - transcription p50)"][3] is not None, text
    assert "not heard: none" in text and SPEECH_SENTENCES[0] in text, text
    s = t.summary
    assert s["latency.speech.whisper-base-int8.p50_ms"] == e2e[3]
    assert s["latency.speech.whisper-base-int8.transcribe_p50_ms"] == work[3]
    assert s["latency.speech.whisper-base-int8.end_detect_p50_ms"] > 0
    g = goals(s).render()
    assert "speech: end of utterance → transcript on the bus p50 (ms), whisper-base-int8" in g, g
