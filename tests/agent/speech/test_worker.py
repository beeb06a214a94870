"""The speech worker with a scripted transcriber (a real object that returns given transcripts and records what
it was given), the real MiniLM and the real redactor: what reaches the result stage, what is dropped and
counted, and that nothing stops it."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from agent.speech.segment import NS, SegmentCfg, Utterance
from agent.speech.worker import SpeechText
from agent.text.redact import Redactor
from encoders.records import Encoded, Frame
from tests.agent.speech.helpers import Heard, Scripted

RATE = 16000


def utterance(start_s: float = 100.0, seconds: float = 2.0, source: str = "mic0", level: float = 0.1) -> Utterance:
    t = np.arange(round(seconds * RATE)) / RATE
    audio = (level * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return Utterance(source, audio, RATE, 1_700_000_000 * NS + int(start_s * NS), int(start_s * NS), "silence")


def worker(minilm, answers, out: list[Encoded], **kw) -> tuple[SpeechText, Scripted]:
    model = Scripted(list(answers), gate=kw.pop("gate", None))
    return SpeechText(model, minilm, Redactor(), out.append, rate=RATE, **kw), model


def test_a_transcript_becomes_a_text_memory_without_audio(minilm) -> None:
    out: list[Encoded] = []
    w, model = worker(minilm, [Heard("The budget meeting moved to Thursday.", avg_logprob=-0.2)], out)
    u = utterance()
    item = w.transcribe(u)
    assert item is not None and out == [item]
    assert item.frame.data.size == 0 and item.frame.source == "mic0" and item.frame.ts_ns == u.start_ns
    (e,) = item.embeddings
    assert e.modality == "text" and e.source == "mic0" and e.space == "minilm-l6/384"
    assert e.text == "The budget meeting moved to Thursday." and e.id == f"mic0#text-{u.start_ns + 1}"
    assert abs(float(np.linalg.norm(e.vector)) - 1) < 1e-4
    assert float(e.vector @ minilm.encode("when is the budget meeting")) > 0.5
    assert e.extra == {
        "start": f"{u.start_ns / 1e9:.3f}",
        "end": f"{(u.start_ns + 2 * NS) / 1e9:.3f}",
        "language": "en",
        "confidence": "0.819",  # exp(-0.2)
    }
    assert all(isinstance(v, str) for v in e.extra.values())
    ((audio, language),) = model.calls
    np.testing.assert_array_equal(audio, u.audio)
    assert language is None  # "" = let the model detect it
    st = w.stats()
    assert (st["transcribed"], st["memories"], st["audio_s"], st["errors"]) == (1, 1, 2.0, 0)
    assert st["p50_ms"] is not None and st["lag_p50_ms"] is not None


def test_the_configured_language_is_passed_on(minilm) -> None:
    out: list[Encoded] = []
    w, model = worker(minilm, [Heard("Die Sitzung ist am Donnerstag.", language="")], out, language="de")
    (e,) = w.transcribe(utterance()).embeddings  # type: ignore[union-attr]
    assert model.calls[0][1] == "de" and e.extra["language"] == "de"


def test_secrets_are_redacted_before_they_are_embedded(minilm) -> None:
    out: list[Encoded] = []
    w, _ = worker(minilm, [Heard("my card is 4111 1111 1111 1111 thanks")], out)
    (e,) = w.transcribe(utterance()).embeddings  # type: ignore[union-attr]
    assert "4111" not in e.text and "[redacted:card]" in e.text and w.stats()["redacted"] == 1


def test_gated_transcripts_are_counted_by_reason_and_not_stored(minilm) -> None:
    out: list[Encoded] = []
    answers = [
        Heard(""),
        Heard("Thank you.", no_speech_prob=0.4, audio_s=1.2),
        Heard("um", avg_logprob=-1.3, no_speech_prob=0.8),
        Heard("Thank you. Thank you. Thank you. Thank you."),
        Heard("Call me at noon. Call me. Call me. Call me."),
    ]
    w, _ = worker(minilm, answers, out)
    results = [w.transcribe(utterance(start_s=i)) for i in range(5)]
    assert results[:4] == [None] * 4 and len(out) == 1
    assert out[0].embeddings[0].text == "Call me at noon. Call me."
    st = w.stats()
    assert st["gated"] == {
        "empty": 1, "no_speech": 1, "low_logprob": 0, "loop": 1, "compression": 0, "hallucination": 1
    }  # fmt: skip
    assert st["trimmed"] == 1 and st["transcribed"] == 5 and st["memories"] == 1


def test_bad_audio_is_counted_and_never_crashes(minilm) -> None:
    out: list[Encoded] = []
    w, model = worker(minilm, [Heard("Hello there.")], out)
    nan = utterance()
    nan.audio[100] = np.nan
    assert w.transcribe(nan) is None and not model.calls
    loud = utterance(level=3.0)  # clipped at full scale by the sound card: still transcribed
    loud = Utterance(loud.source, np.clip(loud.audio, -1, 1), RATE, loud.start_ns, loud.start_mono, "silence")
    assert w.transcribe(loud) is not None
    shifted = utterance()
    dc = Utterance("mic0", shifted.audio + np.float32(0.3), RATE, shifted.start_ns, shifted.start_mono, "silence")
    assert w.transcribe(dc) is not None
    assert abs(float(model.calls[-1][0].mean())) < 1e-4  # the offset was removed before the model heard it
    st = w.stats()
    assert (st["bad_audio"], st["clipped"], st["dc_offset"], st["memories"]) == (1, 1, 1, 2)


def wait(pred, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_failing_model_is_counted_and_the_worker_goes_on(minilm) -> None:
    out: list[Encoded] = []
    w, model = worker(minilm, [RuntimeError("device lost\nmore"), Heard("Second try works.")], out)
    w.start()
    try:
        w.offer(utterance(1.0))
        w.offer(utterance(5.0))
        wait(lambda: len(out) == 1)
        st = w.stats()
        assert st["errors"] == 1 and st["last_error"] == "RuntimeError: device lost" and len(model.calls) == 2
        assert out[0].embeddings[0].text == "Second try works."
    finally:
        w.close()


def test_a_full_queue_drops_the_oldest_waiting_utterance(minilm) -> None:
    out: list[Encoded] = []
    gate = threading.Event()
    w, _ = worker(minilm, [Heard("words")], out, queue=2, gate=gate)
    w.start()
    try:
        us = [utterance(float(i)) for i in range(5)]
        w.offer(us[0])
        wait(lambda: w.stats()["waiting"] == 0)  # the first is being transcribed (held at the gate)
        for u in us[1:]:
            w.offer(u)
        st = w.stats()
        assert (st["utterances"], st["dropped"], st["waiting"]) == (5, 2, 2)
        gate.set()
        wait(lambda: len(out) == 3)
        assert [o.frame.ts_ns for o in out] == [us[0].start_ns, us[3].start_ns, us[4].start_ns]
    finally:
        gate.set()
        w.close()


def window(start_s: float, probs: float, mono0: int) -> tuple[Frame, np.ndarray]:
    """A 0.96 s window of a sine starting `start_s` after `mono0`, every chunk `probs` likely speech."""
    t = np.arange(15360) / RATE
    off = int(start_s * NS)
    data = (0.1 * np.sin(2 * np.pi * 220 * (t + start_s))).astype(np.float32)
    return Frame("mic0", "audio", data, 1_700_000_000 * NS + off, mono0 + off), np.full(30, probs)


def test_windows_in_utterance_out_ended_by_the_timer_on_the_worker_thread(minilm) -> None:
    """The audio dispatcher's side: windows with speech, then none (the microphone dropped the silent ones):
    the worker's timer ends the utterance, transcribes it, and the memory spans the windows' time."""
    out: list[Encoded] = []
    w, model = worker(minilm, [Heard("Meet me by the river.")], out)
    mono0 = time.monotonic_ns() - 5 * NS  # captured a moment ago: its deadline has passed when the worker starts
    for i in range(6):
        w.hear(*window(0.48 * i, 0.9, mono0))
    w.start()
    try:
        wait(lambda: len(out) == 1)
        ((audio, _),) = model.calls
        assert len(audio) == round((0.48 * 5 + 0.96) * RATE)  # every sample once, no post-roll (never came)
        e = out[0].embeddings[0]
        assert float(e.extra["end"]) - float(e.extra["start"]) == pytest.approx(3.36, abs=1e-3)
        assert w.stats()["windows"] == 6
    finally:
        w.close()


def test_the_worker_sleeps_until_an_open_utterances_deadline(minilm) -> None:
    """A window heard while the worker waits with nothing open sets a deadline in the future; the worker wakes
    for it (not before: the utterance is still open right after the window)."""
    out: list[Encoded] = []
    w, _ = worker(minilm, [Heard("One more thing.")], out)
    w.start()
    try:
        mono0 = time.monotonic_ns() - round(0.66 * NS)  # the window ends 0.3 s from now, its deadline 0.8 s later
        w.hear(*window(0.0, 0.9, mono0))
        assert w.stats()["utterances"] == 0
        wait(lambda: len(out) == 1)
        assert time.monotonic_ns() >= mono0 + round((0.96 + 0.8) * NS)
    finally:
        w.close()


def test_a_pause_cuts_the_source_and_flush_drops_what_waits(minilm) -> None:
    out: list[Encoded] = []
    gate = threading.Event()
    w, model = worker(minilm, [Heard("words")], out, gate=gate)
    w.start()
    try:
        w.offer(utterance(0.0))
        wait(lambda: w.stats()["waiting"] == 0)  # busy with it
        w.offer(utterance(1.0))
        w.offer(utterance(2.0, source="mic1"))
        mono0 = time.monotonic_ns() - 60 * NS
        for i in range(3):
            w.hear(*window(0.48 * i, 0.9, mono0))  # an utterance open on mic0
        assert w.cut("mic0") == 2  # the waiting one and the open one; mic1's stays
        late = window(0.48 * 3, 0.9, mono0)
        w.hear(*late)  # encoded after the pause, captured before it: ignored
        st = w.stats()
        assert (st["waiting"], st["discarded"]) == (1, 2)
        gate.set()
        wait(lambda: len(out) == 2)
        assert [o.frame.source for o in out] == ["mic0", "mic1"]  # the one in flight is the result stage's to drop
        gate.clear()
        w.offer(utterance(3.0))
        wait(lambda: w.stats()["waiting"] == 0)
        w.offer(utterance(4.0))
        threading.Timer(0.2, gate.set).start()
        assert w.flush()  # the waiting one is dropped; returns once the busy one has been put
        assert len(out) == 3 and w.stats()["discarded"] == 3
    finally:
        gate.set()
        w.close()
    assert len(model.calls) == 3


def test_close_ends_the_open_utterance_and_transcribes_what_waits(minilm) -> None:
    out: list[Encoded] = []
    w, _ = worker(minilm, [Heard("last words")], out, segment=SegmentCfg(wait_s=60.0))
    w.start()
    mono0 = time.monotonic_ns()
    for i in range(4):
        w.hear(*window(0.48 * i, 0.9, mono0))
    w.close()
    assert len(out) == 1 and w.stats()["waiting"] == 0


def test_the_model_must_take_the_windows_rate_and_the_language(minilm) -> None:
    with pytest.raises(ValueError, match="16000 Hz"):
        SpeechText(Scripted([Heard("x")]), minilm, None, lambda item: None, rate=8000)
    english = Scripted([Heard("x")], multilingual=False)
    with pytest.raises(ValueError, match="does not know language 'de'"):
        SpeechText(english, minilm, None, lambda item: None, rate=RATE, language="de")
    SpeechText(english, minilm, None, lambda item: None, rate=RATE, language="en")
