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
# (espeak-ng voice, words per minute, sentence, words the transcript must have, a query that must find it)
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
    heard: dict[str, Message] = {}
    spans: dict[str, tuple[float, float]] = {}
    sounds: list[Message] = []
    try:
        wait_state(cfg, "mic0", "running", 15)
        assert status(cfg)["speech"]["state"] == "on"
        for i, (voice, wpm, sentence, words, _) in enumerate(SAID):
            t0 = time.time()
            pulse.play(spoken(tmp_path / f"{i}.wav", voice, wpm, sentence))
            spans[sentence] = (t0, time.time())
            deadline = time.monotonic() + 60  # the first transcription also compiles the model
            while sentence not in heard and time.monotonic() < deadline:
                msg = sub.recv(timeout=1.0)
                if msg is not None and all(w in (msg.text or "").lower() for w in words):
                    heard[sentence] = msg
        before = status(cfg)["speech"]
        for name, clip in (("tone", tone(3.0)), ("noise", noise(3.0))):
            pulse.play(write_wav(tmp_path / f"{name}.wav", clip, 48000))
        collect(sub, 4.0, sounds)  # and silence
        after = status(cfg)["speech"]
        wait_stored(cfg, heard.values())
        hits = {q: query(cfg_path, q, "--modality", "text", "-k", "3") for *_, q in SAID}
        tail = sensorium("--config", str(cfg_path), "tail", "emb.text", "--since", "10m", "-n", "2", "--timeout", "10")
    finally:
        sub.close()
        stop_daemon(proc, tmp_path)

    assert set(heard) == {s for _, _, s, _, _ in SAID}, {s: m.text for s, m in heard.items()}
    for voice, _, sentence, _, q in SAID:
        msg, (t0, t1) = heard[sentence], spans[sentence]
        start, end = float(msg.extra["start"]), float(msg.extra["end"])
        assert t0 - 0.5 <= start < end <= t1 + 1.0, (sentence, msg.extra, spans[sentence])
        assert msg.extra["language"] == voice[:2] and 0 < float(msg.extra["confidence"]) <= 1, msg.extra
        top = hits[q][0]
        assert top["id"] == msg.id and top["text"] == msg.text and t0 - 0.5 <= top["ts"] <= t1, (q, hits[q])
    assert sounds == [] and after["memories"] == before["memories"], (sounds, before, after)
    assert after["utterances"] == before["utterances"]  # the VAD heard no speech in them
    assert any(words[0] in line.lower() for _, _, _, words, _ in SAID for line in tail.stdout.splitlines())
    assert raw_audio_in(cfg.daemon.data_dir) == []
