"""The spoken test set: what it covers, that espeak-ng speaks every sentence at a plausible length, and that the
non-speech clips are what their names say (measured on their spectra, not trusted)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from demo.speech import (
    CHORD_HZ,
    CLIP_S,
    CLIPS,
    MAX_WPM,
    MIN_WPM,
    RATE,
    SENTENCES,
    clip,
    english,
    main,
    read_wav,
    sentence,
    speak,
    synthesise,
    windows,
)
from tests.support.env import require


@pytest.fixture(scope="module", autouse=True)
def espeak() -> None:
    require("espeak-ng")


def rms(a: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(a, dtype=np.float64))))


def spectrum(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies and power of `a` (Hann window)."""
    p = np.abs(np.fft.rfft(a * np.hanning(a.size))) ** 2
    return np.fft.rfftfreq(a.size, 1 / RATE), p


def band(a: np.ndarray, lo: float, hi: float) -> float:
    f, p = spectrum(a)
    return float(p[(f >= lo) & (f < hi)].sum())


def peaks(a: np.ndarray, n: int) -> list[float]:
    """The `n` strongest spectral peaks (local maxima), in Hz, ascending."""
    f, p = spectrum(a)
    local = np.flatnonzero((p[1:-1] > p[:-2]) & (p[1:-1] >= p[2:])) + 1
    top = local[np.argsort(p[local])[-n:]]
    return sorted(float(f[i]) for i in top)


def test_the_set_covers_languages_voices_speeds_and_lengths() -> None:
    en = english()
    short_en = [s for s in en if not s.long]
    assert len(short_en) >= 24
    assert all(4 <= s.words <= 15 for s in SENTENCES if not s.long), [s.name for s in SENTENCES if s.words > 15]
    other = [s for s in SENTENCES if s.lang in ("de", "es")]
    assert len(other) >= 8 and {s.lang for s in other} == {"de", "es"}
    assert len({s.voice for s in en}) >= 4 and len({s.voice for s in other}) >= 3
    assert all(MIN_WPM <= s.wpm <= MAX_WPM for s in SENTENCES)
    assert len({s.wpm for s in SENTENCES}) >= 6
    assert sum(s.long for s in en) >= 2 and any(s.long for s in other)
    assert len({s.name for s in SENTENCES}) == len(SENTENCES)
    assert len({s.text for s in SENTENCES}) == len(SENTENCES)
    text = " ".join(s.text for s in en).lower()
    for topic in ("meeting", "budget", "friday", "march", "percent", "dollars", "sarah", "server", "database"):
        assert topic in text, topic  # meetings, money, dates, numbers, names, technical talk
    assert any(ch.isdigit() for ch in text)


def test_every_sentence_is_spoken_at_a_plausible_length() -> None:
    for s in SENTENCES:
        a = synthesise(s)
        assert a.dtype == np.float32 and a.ndim == 1, s.name
        seconds = a.size / RATE
        expected = s.words * 60 / s.wpm  # espeak-ng's speed is words per minute
        assert 0.5 * expected < seconds < 1.6 * expected, (s.name, seconds, expected)
        assert seconds < 30, s.name  # Whisper's window: an utterance the segmenter would send whole
        if s.long:
            assert seconds > 15, (s.name, seconds)
        assert rms(a) > 0.02 and np.abs(a).max() <= 1.0, s.name
        # speech energy sits below 4 kHz (voicing and formants)
        assert band(a, 100, 4000) > 5 * band(a, 4000, 8000), s.name
        # not one continuous sound: the loudness of 100 ms frames varies (syllables and pauses)
        frames = a[: a.size // 1600 * 1600].reshape(-1, 1600)
        loud = np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1))
        assert loud.min() < 0.2 * loud.max(), s.name


def test_synthesis_is_deterministic_and_cached_read_only() -> None:
    s = sentence("call-back")
    a = synthesise(s)
    assert synthesise("call-back") is a
    assert not a.flags.writeable
    again = speak(s.text, s.voice, s.wpm)
    assert np.array_equal(a, again)


def test_voices_and_speeds_change_the_audio() -> None:
    text = "The meeting starts at ten."
    slow, fast = speak(text, "en-us", 130), speak(text, "en-us", 190)
    assert slow.size > 1.2 * fast.size
    us, female = speak(text, "en-us", 160), speak(text, "en+f3", 160)
    assert us.size != female.size or not np.allclose(us, female)


def test_bad_input_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="voice"):
        speak("hello there", "xx-nope", 160)
    with pytest.raises(ValueError, match="nothing"):
        speak("   ")
    with pytest.raises(KeyError, match="no sentence"):
        sentence("nope")
    with pytest.raises(KeyError, match="no clip"):
        clip("nope")


def test_non_speech_clips_are_what_their_names_say() -> None:
    n = int(CLIP_S * RATE)
    got = {name: clip(name) for name in CLIPS}
    for name, a in got.items():
        assert a.dtype == np.float32 and a.shape == (n,), name
        assert np.abs(a).max() <= 1.0, name
        assert np.array_equal(a, clip(name)), name  # seeded: the same clip every time
    assert not got["silence"].any()
    assert 0.0005 < rms(got["room"]) < 0.002  # about -60 dBFS
    assert abs(peaks(got["tone"], 1)[0] - 440) < 1
    top = peaks(got["chord"], 3)
    assert all(abs(a - b) < 1 for a, b in zip(top, CHORD_HZ, strict=True)), top
    # white noise: as much power per Hz high as low; pink noise: per octave, so 16× more per Hz at 1/16 the
    # frequency
    w, p = got["white-noise"], got["pink-noise"]
    assert 0.8 < band(w, 250, 500) / band(w, 4000, 4250) < 1.25
    per_hz_low, per_hz_high = band(p, 200, 300) / 100, band(p, 3200, 4800) / 1600
    assert 10 < per_hz_low / per_hz_high < 25
    assert 0.09 < rms(w) < 0.11 and 0.09 < rms(p) < 0.11


def test_music_is_notes_that_change() -> None:
    a = clip("music")
    win = RATE // 4  # one eighth note at 120 bpm
    pitches = []
    for k in range(a.size // win):
        seg = a[k * win : (k + 1) * win]
        f, pw = spectrum(seg)
        hi = f > 400  # above the bass line: the melody's fundamentals
        pitches.append(round(float(f[hi][np.argmax(pw[hi])])))
    assert len(set(pitches)) >= 5, pitches  # a tune, not a held tone
    # plucked notes: each eighth starts loud and decays, so the envelope rises again at every note
    env = np.abs(a[: a.size // 800 * 800]).reshape(-1, 800).max(axis=1)  # 50 ms frames
    rises = int(np.sum(env[1:] > 1.5 * env[:-1]))
    assert rises >= 0.6 * (a.size // win), rises


def test_the_set_is_written_as_wav_files(tmp_path: Path) -> None:
    main([str(tmp_path)])
    for s in SENTENCES[:3]:
        a, rate = read_wav(tmp_path / f"{s.name}.wav")
        assert rate == RATE and a.size == synthesise(s).size
        assert (tmp_path / f"{s.name}.txt").read_text(encoding="utf-8").strip() == s.text
    a, rate = read_wav(tmp_path / "tone.wav")
    assert rate == RATE and a.size == int(CLIP_S * RATE)


def test_windows_pack_sentences_of_one_language_in_order_up_to_the_limit() -> None:
    chosen = [sentence(n) for n in ("budget-report", "de-budget", "marketing-cut", "launch-summary", "es-gastos")]
    got = windows(chosen, max_s=25.0, gap_s=0.5)
    assert [w.sentences for w in got] == [
        ("budget-report", "marketing-cut"),  # the long one does not fit after them
        ("launch-summary",),
        ("de-budget",),
        ("es-gastos",),
    ]
    assert [w.name for w in got] == ["en-1", "en-2", "de-1", "es-1"]
    first = got[0]
    a, b = synthesise("budget-report"), synthesise("marketing-cut")
    assert first.audio.size == a.size + int(0.5 * RATE) + b.size  # a gap between, none after
    assert np.array_equal(first.audio[: a.size], a) and not first.audio[a.size : a.size + 8000].any()
    assert first.text == f"{sentence('budget-report').text} {sentence('marketing-cut').text}"
    assert first.lang == "en" and got[2].lang == "de"
    assert all(w.audio.size <= 25.0 * RATE for w in got)
    with pytest.raises(ValueError, match="longer than a window"):
        windows([sentence("launch-summary")], max_s=10.0)
