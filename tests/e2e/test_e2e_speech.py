"""Speech end to end: espeak-ng sentences (several voices and speeds, English and German) played into a
PulseAudio null sink → the daemon's microphone → VAD segments → Whisper base on OpenVINO → text memories on the
bus and in Chroma → `sensorium query` finds them by their words within their time window and `tail` prints
them; a tone, noise and silence store no transcript; no raw audio is kept."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from agent import config
from demo.standins import noise, tone, which, write_wav
from encoders.modelstore import ModelStore
from sinks.bus.wire import Message
from sinks.client import Subscriber
from tests.e2e.test_e2e_senses import BASE, collect, query, raw_audio_in, wait_state
from tests.support.daemon import start_daemon, status, stop_daemon, wait_stored
from tests.support.env import IN_CI, sensorium

MODEL = "whisper-base"
# (espeak-ng voice, words per minute, sentence, key words, a query that must find it). At least one key word of
# each sentence must be in its transcript: espeak-ng is hard to hear (base once heard "Thursday" as "Earth Day");
# the word error rate is measured by bench/asr.py, not here.
SAID = [
    ("en", 160, "The budget meeting moved to Thursday afternoon.", ("budget", "thursday"), "budget meeting"),
    ("en+f3", 140, "Please send the slides to Maria before lunch.", ("slides", "maria"), "slides for Maria"),
    ("en+m3", 190, "The new printer on the third floor is broken again.", ("printer", "floor"), "broken printer"),
    ("de", 150, "Die Sitzung wurde auf Montag verschoben.", ("sitzung", "montag"), "Sitzung Montag"),
]


def spoken(path: Path, voice: str, wpm: int, text: str) -> Path:
    subprocess.run([which("espeak-ng"), "-v", voice, "-s", str(wpm), "-w", str(path), text], check=True, timeout=30)
    return path


@pytest.fixture
def whisper_built(model_cache: Path) -> None:
    if not ModelStore(model_cache).is_built(MODEL):
        msg = f"{MODEL} is not built in {model_cache} (tests/conftest.py model_cache builds the test models)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)


def test_what_is_said_is_found_by_its_words_and_sounds_give_no_words(whisper_built, pulse, home, tmp_path):
    cfg_path = tmp_path / "cfg.toml"
    text = BASE + "[screen]\nenabled = false\n[camera]\nenabled = false\n"
    proc, cfg = start_daemon(tmp_path, text)
    sub = Subscriber(config.bus_endpoint(cfg), "emb.text.mic0")
    msgs: list[Message] = []
    spans: dict[str, tuple[float, float]] = {}
    sounds: list[Message] = []
    try:
        wait_state(cfg, "mic0", "running", 15)
        assert status(cfg)["speech"]["state"] == "on"
        for i, (voice, wpm, sentence, _, _) in enumerate(SAID):
            t0 = time.time()
            pulse.play(spoken(tmp_path / f"{i}.wav", voice, wpm, sentence))
            spans[sentence] = (t0, time.time())
            deadline = time.monotonic() + 60  # the first transcription also compiles the model
            last = spans[sentence][1] - 1.5  # an utterance ending after this holds the end of the sentence
            while time.monotonic() < deadline and not (msgs and float(msgs[-1].extra["end"]) >= last):
                if (msg := sub.recv(timeout=1.0)) is not None:
                    msgs.append(msg)
            collect(sub, 2.0, msgs)  # the rest of it, if the sentence became two utterances
        before = status(cfg)["speech"]
        for name, clip in (("tone", tone(3.0)), ("noise", noise(3.0))):
            pulse.play(write_wav(tmp_path / f"{name}.wav", clip, 48000))
        collect(sub, 4.0, sounds)  # and silence
        after = status(cfg)["speech"]
        wait_stored(cfg, msgs)
        hits = {q: query(cfg_path, q, "--modality", "text", "-k", "3") for *_, q in SAID}
        tail = sensorium("--config", str(cfg_path), "tail", "emb.text", "--since", "10m", "-n", "2", "--timeout", "10")
    finally:
        sub.close()
        stop_daemon(proc, tmp_path)

    said = [(m.text, m.extra) for m in msgs]
    for voice, _, sentence, words, q in SAID:
        t0, t1 = spans[sentence]
        mine = [m for m in msgs if t0 - 0.5 <= float(m.extra["start"]) and float(m.extra["end"]) <= t1 + 1.0]
        heard = " ".join(m.text or "" for m in mine).lower()
        assert any(w in heard for w in words), (sentence, said)
        assert all(m.extra["language"] == voice[:2] and 0 < float(m.extra["confidence"]) <= 1 for m in mine), said
        top = hits[q][0]
        assert top["id"] in {m.id for m in mine} and t0 - 0.5 <= top["ts"] <= t1, (q, hits[q], said)
    assert len(msgs) <= len(SAID) + 1, said  # a sentence is one utterance (one may split at a pause)
    assert sounds == [] and after["memories"] == before["memories"], (sounds, before, after)
    assert after["utterances"] == before["utterances"]  # the VAD heard no speech in them
    assert any(words[0] in line.lower() for _, _, _, words, _ in SAID for line in tail.stdout.splitlines())
    assert raw_audio_in(cfg.daemon.data_dir) == []
