"""Spoken test set: sentences a laptop user might say or hear (meetings, budgets, dates, numbers, names, technical
talk), each with the espeak-ng voice and speed that speaks it, and non-speech clips (silence, a tone, a chord,
noise, a few notes of music) that must produce no transcript.

The ASR benchmark (bench/asr.py) scores Whisper against the text, and the demo and e2e tests play the same
audio into a PulseAudio null sink. The set is data in code, like demo/textpages.py: the truth is the `text`
of each `Sentence`, written the way a careful transcriber would (digits where Whisper writes digits).
Synthesis is deterministic for a given espeak-ng; the non-speech clips are seeded.

All audio is float32 mono at 16 kHz (`RATE`), what Whisper and the daemon's microphone path take.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from demo.standins import which, write_wav

RATE = 16000
MIN_WPM, MAX_WPM = 130, 190


@dataclass(frozen=True)
class Sentence:
    """One utterance: its exact words, the language Whisper should detect, and how espeak-ng says it."""

    name: str
    lang: str  # ISO 639-1 code, as Whisper names languages
    text: str
    voice: str  # espeak-ng voice, with an optional +variant (en+f3)
    wpm: int  # espeak-ng speed (-s), words per minute
    long: bool = False  # a long utterance (~20 s), beyond the 4–15 words of the others

    @property
    def words(self) -> int:
        return len(self.text.split())


def _s(name: str, lang: str, voice: str, wpm: int, text: str, long: bool = False) -> Sentence:
    return Sentence(name, lang, text, voice, wpm, long)


# fmt: off
SENTENCES: tuple[Sentence, ...] = (
    # --- English: meetings, budget, dates, numbers, names, technical ---
    _s("budget-report", "en", "en-us", 160, "Please send the quarterly budget report to Sarah before Friday."),
    _s("marketing-cut", "en", "en+f3", 150, "We need to cut the marketing budget by 10 percent next year."),
    _s("design-meeting", "en", "en-gb", 170, "The meeting with the design team starts tomorrow morning."),
    _s("hiring-plan", "en", "en+m3", 140, "Daniel will present the new hiring plan on the 4th of March."),
    _s("server-costs", "en", "en-us", 150, "Our server costs went up to 4500 dollars a month."),
    _s("migration", "en", "en-gb-x-rp", 165, "The database migration failed because the disk was full."),
    _s("container-logs", "en", "en+f3", 175, "Restart the container and check the logs for a timeout error."),
    _s("travel-expenses", "en", "en-us", 145,
       "Maria from finance approved the travel expenses for the conference in Berlin."),
    _s("product-review", "en", "en+m3", 160, "Let's schedule the product review for the 22nd of October."),
    _s("laptop", "en", "en-gb", 155, "The new laptop has 16 gigabytes of memory and a fast processor."),
    _s("call-back", "en", "en-us", 180, "Can you call me back after lunch?"),
    _s("grant-deadline", "en", "en-gb-scotland", 150,
       "Thomas said the deadline for the grant proposal is the end of June."),
    _s("password", "en", "en+f3", 165, "Please change the password of the shared account by Monday."),
    _s("train", "en", "en-gb-x-rp", 140, "The train to London leaves at a quarter past 7 from platform 2."),
    _s("network-driver", "en", "en+m3", 185, "I think the bug is in the network driver, not in the kernel."),
    _s("revenue", "en", "en-us", 150, "Revenue grew by 12 percent in the 3rd quarter."),
    _s("plants", "en", "en-gb", 170, "Remind me to water the plants and buy milk on the way home."),
    _s("forecast", "en", "en+f3", 155, "The weather forecast says heavy rain and strong wind for the weekend."),
    _s("new-engineers", "en", "en-us", 190, "We hired 2 new engineers and 1 designer this month."),
    _s("refund", "en", "en-gb-x-rp", 160, "The customer wants a refund because the package arrived damaged."),
    _s("lights", "en", "en+m3", 145, "Turn off the lights in the conference room when you leave."),
    _s("flight", "en", "en-gb-scotland", 165, "Our flight to Tokyo was delayed by almost 3 hours."),
    _s("mobile-app", "en", "en+f3", 150, "James and Emma are working on the mobile app redesign."),
    _s("backup", "en", "en-us", 170, "The backup runs every night at 2 in the morning."),
    _s("good-morning", "en", "en-gb", 160, "Good morning everyone, let's get started."),
    _s("office-rent", "en", "en+m3", 155, "The rent for the new office is 1200 euros per month."),
    _s("pull-request", "en", "en-us", 175, "Please review the pull request before we merge it into the main branch."),
    _s("server-room", "en", "en+f3", 140, "The temperature in the server room reached 35 degrees."),
    _s("launch-summary", "en", "en-us", 130,
       "Before we close the meeting, let me summarize the decisions: the launch moves to the 2nd week of May, "
       "the budget for advertising stays the same, and Sarah will send everyone the updated schedule and the "
       "list of open questions by Wednesday, so that we can all prepare for the next review.", long=True),
    _s("memory-leak", "en", "en-gb", 130,
       "The engineering team spent most of the week chasing a memory leak in the image service, and in the end "
       "it turned out that a cache was never cleared, so every request kept a few kilobytes until the process "
       "ran out of memory, which is why the service had to be restarted every few hours since the last release.",
       long=True),
    # --- German ---
    _s("de-rechnung", "de", "de", 150, "Bitte schicken Sie mir die Rechnung bis Ende der Woche."),
    _s("de-budget", "de", "de+f2", 160, "Das Budget für das nächste Jahr wurde gestern genehmigt."),
    _s("de-server", "de", "de", 170, "Der Server im Keller muss dringend neu gestartet werden."),
    _s("de-mittagessen", "de", "de+m3", 145, "Wir treffen uns nach dem Mittagessen im großen Besprechungsraum."),
    _s("de-projekt", "de", "de+f2", 155, "Frau Schneider übernimmt ab Montag die Leitung des Projekts."),
    _s("de-version", "de", "de", 130,
       "Nach der langen Diskussion haben wir beschlossen, die neue Version erst im Herbst zu veröffentlichen, "
       "weil die Tests noch nicht fertig sind und das Team mehr Zeit für die Dokumentation und die Schulung der "
       "Kunden braucht, bevor wir die neue Version an alle Nutzer ausliefern.", long=True),
    # --- Spanish ---
    _s("es-reunion", "es", "es", 150, "La reunión con el cliente se cambió al jueves por la tarde."),
    _s("es-gastos", "es", "es-419", 160, "Necesitamos reducir los gastos de viaje este trimestre."),
    _s("es-informe", "es", "es+f3", 145, "El informe de ventas está en la carpeta compartida."),
    _s("es-servidor", "es", "es", 170, "Por favor, reinicia el servidor antes de las pruebas."),
)
# fmt: on
BY_NAME: dict[str, Sentence] = {s.name: s for s in SENTENCES}


def english() -> list[Sentence]:
    return [s for s in SENTENCES if s.lang == "en"]


def sentence(name: str) -> Sentence:
    if name not in BY_NAME:
        raise KeyError(f"no sentence {name!r}; there are {', '.join(BY_NAME)}")
    return BY_NAME[name]


# --- synthesis ----------------------------------------------------------------------------------------------


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """A 16-bit PCM WAV file as float32 in [-1, 1] (channels averaged) and its sample rate."""
    with wave.open(str(path)) as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: {8 * w.getsampwidth()}-bit samples, expected 16-bit PCM")
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.float32) / 32768.0
        ch = w.getnchannels()
        return (pcm.reshape(-1, ch).mean(axis=1) if ch > 1 else pcm), w.getframerate()


def speak(text: str, voice: str = "en-us", wpm: int = 160) -> np.ndarray:
    """`text` spoken by espeak-ng with `voice` at `wpm`, as float32 mono 16 kHz (resampled with soxr)."""
    import soxr

    if not text.strip():
        raise ValueError("nothing to say")
    with tempfile.TemporaryDirectory(prefix="speech-") as tmp:
        wav = Path(tmp) / "s.wav"
        cmd = [which("espeak-ng"), "-v", voice, "-s", str(wpm), "-w", str(wav), "--", text]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if out.returncode != 0 or not wav.is_file():
            raise ValueError(f"espeak-ng -v {voice} failed (exit {out.returncode}): {out.stderr.strip()}")
        samples, rate = read_wav(wav)
    if not samples.size:
        raise ValueError(f"espeak-ng -v {voice} wrote no audio for {text!r}")
    out = soxr.resample(samples, rate, RATE, quality="HQ")  # the filter can overshoot full scale a little
    return np.ascontiguousarray(np.clip(out, -1.0, 1.0), dtype=np.float32)


@lru_cache(maxsize=64)
def _synth(text: str, voice: str, wpm: int) -> np.ndarray:
    a = speak(text, voice, wpm)
    a.setflags(write=False)  # shared between callers through the cache
    return a


def synthesise(s: Sentence | str) -> np.ndarray:
    """A sentence of the set (or its name) as float32 mono 16 kHz audio (read-only, cached)."""
    s = sentence(s) if isinstance(s, str) else s
    return _synth(s.text, s.voice, s.wpm)


@dataclass(frozen=True)
class Window:
    """Sentences of one language said back to back: long speech as Whisper takes it, a full window at a time."""

    name: str
    lang: str
    text: str
    audio: np.ndarray
    sentences: tuple[str, ...]


def windows(sentences: Sequence[Sentence], max_s: float = 29.0, gap_s: float = 0.5) -> list[Window]:
    """`sentences` (kept in order, grouped by language) packed into windows of at most `max_s` seconds, with
    `gap_s` of silence between sentences; a window is closed when the next sentence would not fit."""
    gap = int(gap_s * RATE)
    groups: list[list[Sentence]] = []  # each: one language, fits max_s
    for lang in dict.fromkeys(s.lang for s in sentences):
        used = -1.0  # samples in the open group, with the gaps between its sentences
        for s in (s for s in sentences if s.lang == lang):
            n = synthesise(s).size
            if n > max_s * RATE:
                raise ValueError(f"{s.name} alone is longer than a window ({n / RATE:.1f} s > {max_s} s)")
            if used < 0 or used + gap + n > max_s * RATE:
                groups.append([])
                used = -gap
            groups[-1].append(s)
            used += gap + n
    out: list[Window] = []
    for g in groups:
        pause = np.zeros(gap, np.float32)
        audio = np.concatenate([x for s in g for x in (pause, synthesise(s))][1:])
        name = f"{g[0].lang}-{sum(w.lang == g[0].lang for w in out) + 1}"
        text = " ".join(s.text for s in g)
        out.append(Window(name, g[0].lang, text, audio, tuple(s.name for s in g)))
    return out


# --- non-speech clips ---------------------------------------------------------------------------------------

CLIP_S = 6.0  # seconds per clip


def _t(seconds: float) -> np.ndarray:
    return np.arange(int(seconds * RATE)) / RATE


def silence(seconds: float = CLIP_S) -> np.ndarray:
    """Digital silence (what a muted input delivers)."""
    return np.zeros(int(seconds * RATE), np.float32)


def room(seconds: float = CLIP_S, seed: int = 1) -> np.ndarray:
    """A quiet room: faint white noise at about -60 dBFS (what an open microphone in a quiet room hears)."""
    return (0.001 * np.random.default_rng(seed).standard_normal(int(seconds * RATE))).astype(np.float32)


def tone(seconds: float = CLIP_S, freq: float = 440.0, amp: float = 0.3) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * _t(seconds))).astype(np.float32)


CHORD_HZ = (261.63, 329.63, 392.00)  # C major: C4, E4, G4


def _note(freq: float, seconds: float, amp: float) -> np.ndarray:
    """A plucked-string-like note: fundamental plus decaying harmonics, with a short attack and release."""
    t = _t(seconds)
    wave_ = sum(np.sin(2 * np.pi * k * freq * t) / k**1.5 for k in range(1, 6))
    env = np.minimum(1.0, t / 0.01) * np.exp(-6.0 * t)
    rel = int(0.02 * RATE)
    env[-rel:] *= np.linspace(1, 0, rel)
    return amp * wave_ * env


def chord(seconds: float = CLIP_S, amp: float = 0.15) -> np.ndarray:
    """C major held: three sines with a few harmonics, no envelope (an organ)."""
    t = _t(seconds)
    out = sum(np.sin(2 * np.pi * k * f * t) / k for f in CHORD_HZ for k in (1, 2, 3))
    return (amp * out / 3).astype(np.float32)


def white_noise(seconds: float = CLIP_S, amp: float = 0.1, seed: int = 2) -> np.ndarray:
    """Gaussian white noise with RMS `amp`, clipped to [-1, 1]."""
    return np.clip(amp * np.random.default_rng(seed).standard_normal(int(seconds * RATE)), -1, 1).astype(np.float32)


def pink_noise(seconds: float = CLIP_S, amp: float = 0.1, seed: int = 3) -> np.ndarray:
    """1/f noise (power falls 3 dB per octave, like fans, rain and traffic), RMS `amp`: white noise shaped in the
    frequency domain."""
    n = int(seconds * RATE)
    spec = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / RATE)
    spec[1:] /= np.sqrt(f[1:])
    spec[0] = 0
    x = np.fft.irfft(spec, n)
    return np.clip(amp * x / np.sqrt(np.mean(x**2)), -1, 1).astype(np.float32)


# a tune (MIDI note numbers, in eighths at 120 bpm) over a bass line: eight notes per bar, two bars, twice
MELODY = (72, 74, 76, 79, 77, 76, 74, 72, 71, 72, 74, 76, 74, 72, 71, 67)
BASS = (48, 48, 53, 53, 55, 55, 48, 48)
EIGHTH_S = 0.25


def midi_hz(note: int) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def music(seconds: float = CLIP_S) -> np.ndarray:
    """A few bars of a synthesised tune: melody notes over a bass line, each a plucked note with harmonics."""
    n = int(seconds * RATE)
    out = np.zeros(n)
    step = int(EIGHTH_S * RATE)
    for i in range(n // step):
        a = i * step
        m = _note(midi_hz(MELODY[i % len(MELODY)]), EIGHTH_S, 0.25)
        out[a : a + m.size] += m[: n - a]
        if i % 2 == 0:  # the bass plays quarter notes
            b = _note(midi_hz(BASS[(i // 2) % len(BASS)]), 2 * EIGHTH_S, 0.2)
            out[a : a + b.size] += b[: n - a]
    return (0.8 * out / max(1e-9, np.abs(out).max())).astype(np.float32)


CLIPS: dict[str, Callable[[], np.ndarray]] = {
    "silence": silence,
    "room": room,
    "tone": tone,
    "chord": chord,
    "white-noise": white_noise,
    "pink-noise": pink_noise,
    "music": music,
}


def clip(name: str) -> np.ndarray:
    """One non-speech clip by name, float32 mono 16 kHz, `CLIP_S` long."""
    if name not in CLIPS:
        raise KeyError(f"no clip {name!r}; there are {', '.join(CLIPS)}")
    return CLIPS[name]()


def clips() -> dict[str, np.ndarray]:
    return {name: make() for name, make in CLIPS.items()}


# --- files --------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m demo.speech", description="Write the spoken set as WAV files.")
    ap.add_argument("out", type=Path, help="directory for <name>.wav (16 kHz) and, for sentences, <name>.txt")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for s in SENTENCES:
        path = write_wav(args.out / f"{s.name}.wav", synthesise(s), RATE)
        path.with_suffix(".txt").write_text(s.text + "\n", encoding="utf-8")
        print(path)
    for name, audio in clips().items():
        print(write_wav(args.out / f"{name}.wav", audio, RATE))


if __name__ == "__main__":
    main()
