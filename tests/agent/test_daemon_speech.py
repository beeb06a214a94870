"""Speech in the daemon: a microphone the test drives (espeak-ng speech cut into windows as the microphone cuts
them, posted in real time), the real audio model and, when it is built, the real speech model: transcripts on
the bus and in memory, found by query with their times; a pause drops the utterance still open; a missing or
broken speech model turns speech off, not the daemon."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from agent import config
from agent.daemon import Daemon
from agent.pipeline.mailbox import Mailboxes
from agent.sources.microphone import dbfs
from encoders.modelstore import ModelStore
from encoders.records import Frame
from sinks.bus.wire import Message
from sinks.client import Subscriber, query, request
from tests.agent.test_daemon import HandSource, until
from tests.support.env import IN_CI

RATE, WINDOW, HOP = 16000, 15360, 7680
NS = 1_000_000_000
SPEECH_MODEL = "whisper-tiny-en"  # the small one: these tests are about the wiring


class HandMic(HandSource):
    """A microphone the test speaks into: 0.96 s windows every 0.48 s, quiet ones dropped, as MicrophoneSource."""

    modality = "audio"

    def emit(self, data: np.ndarray, ts_ns: int | None = None, mono_ns: int | None = None) -> Frame:
        frame = Frame(self.name, "audio", data, ts_ns or time.time_ns(), mono_ns or time.monotonic_ns())
        self.captured += 1
        self._post(frame)
        return frame

    def say(self, audio: np.ndarray, until_s: float | None = None) -> tuple[float, float]:
        """Post the windows of `audio` as they would be captured from now on (each when its last sample is
        in), up to `until_s` into it; returns the wall-clock (start, end) of what was posted."""
        ts0, mono0 = time.time_ns(), time.monotonic_ns()
        end = len(audio) if until_s is None else round(until_s * RATE)
        for start in range(0, end - WINDOW + 1, HOP):
            ready = mono0 + (start + WINDOW) * NS // RATE
            time.sleep(max(0.0, (ready - time.monotonic_ns()) / NS))
            window = audio[start : start + WINDOW]
            if dbfs(window) >= -50.0:
                off = start * NS // RATE
                self.emit(window.copy(), ts0 + off, mono0 + off)
        return ts0 / NS, ts0 / NS + end / RATE


def sentence(tmp_path: Path, text: str) -> np.ndarray:
    """`text` spoken by espeak-ng at 16 kHz, with a second of silence after it."""
    import soxr

    from demo.standins import speech
    from tests.encoders.test_audio import load_wav

    samples, rate = load_wav(speech(tmp_path / f"{abs(hash(text))}.wav", text))
    return np.r_[soxr.resample(samples, rate, RATE).astype(np.float32), np.zeros(RATE, np.float32)]


def start(tmp_path: Path, cache: Path, extra: str = "") -> tuple[Daemon, HandMic]:
    path = tmp_path / "cfg.toml"
    path.write_text(
        f'[daemon]\ndata_dir = "{tmp_path / "data"}"\ncache_dir = "{cache}"\nruntime_dir = "{tmp_path / "run"}"\n'
        f'[device]\nname = "CPU"\n[store]\nflush_s = 0.2\n[metrics]\nenabled = false\n'
        f'[models]\nspeech = "{SPEECH_MODEL}"\n' + extra
    )
    mics: list[HandMic] = []

    def sources(boxes: dict[str, Mailboxes]) -> list[HandMic]:
        mics.append(HandMic("mic0", boxes["audio"].put))
        return mics

    daemon = Daemon(config.load(path), sources=sources)  # type: ignore[arg-type]
    daemon.start()
    return daemon, mics[0]


def without(model_cache: Path, tmp_path: Path, prefix: str) -> Path:
    """A model cache with every built model but those whose folder starts with `prefix`."""
    cache = tmp_path / "cache"
    (cache / "models").mkdir(parents=True)
    for built in (model_cache / "models").iterdir():
        if not built.name.startswith(prefix):
            (cache / "models" / built.name).symlink_to(built)
    return cache


def speech_model(model_cache: Path) -> Path:
    """The built speech model; skipped (failed under CI) when the cache does not have it."""
    store = ModelStore(model_cache)
    if not store.is_built(SPEECH_MODEL):
        msg = f"{SPEECH_MODEL} is not built in {model_cache}"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return store.path(SPEECH_MODEL)


def test_a_missing_speech_model_turns_speech_off_and_the_daemon_runs(tmp_path: Path, model_cache: Path) -> None:
    daemon, mic = start(tmp_path, without(model_cache, tmp_path, "whisper-"))
    try:
        st = daemon.status()
        assert st.speech.state.startswith("off: ") and st.to_dict()["speech"]["state"] == st.speech.state
        assert daemon.speech is None and daemon.encoders["audio"].on_speech is None  # type: ignore[attr-defined]
        mic.say(sentence(tmp_path, "The audio vectors are stored anyway."), until_s=1.5)
        until(lambda: daemon.status().memory.stored >= 2, 30, "the window's vectors stored")
    finally:
        daemon.stop()


def test_speech_is_off_when_the_config_says_so(tmp_path: Path, model_cache: Path) -> None:
    daemon, _ = start(tmp_path, model_cache, "[speech]\nenabled = false\n")
    try:
        assert daemon.speech is None and daemon.status().speech.state == "off"
    finally:
        daemon.stop()


def test_a_corrupt_speech_model_turns_speech_off(tmp_path: Path, model_cache: Path) -> None:
    built = speech_model(model_cache)
    cache = without(model_cache, tmp_path, "whisper-")
    broken = cache / "models" / built.name
    broken.mkdir()
    for f in built.iterdir():
        if f.name == "decoder.bin":
            (broken / f.name).write_bytes(b"\0" * 100)  # truncated weights
        else:
            (broken / f.name).symlink_to(f)
    daemon, _ = start(tmp_path, cache)
    try:
        state = daemon.status().speech.state
        assert state.startswith("off: ") and "decoder" in state, state
    finally:
        daemon.stop()


def test_what_is_said_is_published_stored_and_found_and_a_pause_drops_the_rest(
    tmp_path: Path, model_cache: Path
) -> None:
    speech_model(model_cache)
    first = sentence(tmp_path, "The budget meeting moved to Thursday afternoon.")
    second = sentence(tmp_path, "Please send the slides to Maria before lunch.")
    daemon, mic = start(tmp_path, model_cache)
    sub = Subscriber(config.bus_endpoint(daemon.cfg), "emb.text.mic0")
    endpoint = config.query_endpoint(daemon.cfg)
    try:
        assert daemon.status().speech.state == "on"
        time.sleep(0.5)  # the subscription is through
        said = mic.say(first)
        msg: Message | None = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (msg and "budget" in (msg.text or "").lower()):
            msg = sub.recv(timeout=1.0)
        assert msg is not None and "thursday" in (msg.text or "").lower(), msg
        assert msg.topic == "emb.text.mic0" and msg.header["modality"] == "text" and msg.id.startswith("mic0#text-")
        start_s, end_s = float(msg.extra["start"]), float(msg.extra["end"])
        assert said[0] - 0.001 <= start_s < end_s <= said[1] + 0.5 and msg.extra["language"] == "en"  # ms strings
        assert msg.header["ts"] == pytest.approx(start_s, abs=1e-3)
        until(lambda: daemon.status().memory.stored >= 1 + 2 * mic.captured, 30, "stored")
        hits = query(endpoint, "when is the budget meeting", k=3, modality="text", timeout=30)
        assert hits and hits[0]["id"] == msg.id and hits[0]["extra"] == msg.extra, hits
        st = daemon.status().speech
        assert (st.transcribed, st.memories, st.errors) == (1, 1, 0) and st.lag_p50_ms is not None

        mic.say(second, until_s=1.5)  # mid-sentence: the utterance is open
        request(endpoint, {"op": "pause", "source": "mic0"})
        time.sleep(3.0)  # longer than it would take to end and transcribe it
        assert sub.recv(timeout=0.5) is None
        st = daemon.status().speech
        assert st.discarded >= 1 and st.transcribed == 1
    finally:
        sub.close()
        daemon.stop()
