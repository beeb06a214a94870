"""Utterances from the speech probabilities the audio encoder already computes (silero-vad, one per chunk).

A microphone window is 0.96 s = 30 chunks of 512 samples at 16 kHz and a new one starts every hop (0.48 s),
so each window brings only its last hop of new audio; those chunks' probabilities are also the better ones
(the encoder runs every window from a fresh LSTM state, so a window's first chunks read weaker). A segmenter
keeps one source's audio timeline from them:
- onset/offset hysteresis as silero's own `get_speech_timestamps`: speech starts at a chunk >= `onset`, a
  silence run starts at the first chunk < `offset` after it and is reset by a chunk >= `onset` (chunks in
  between neither start nor end one); the utterance ends `min_silence_s` into a silence run, `pad_s` after
  its start (post-roll), and begins `pad_s` before the onset (pre-roll, when that audio is at hand);
- windows the microphone dropped as silent (or lost) never arrive, so a jump in capture time is silence:
  a short one inside an utterance is filled with zeros (time stays linear), a long one ends it, and
  `tick(now)` ends an utterance when no window has come for `wait_s` after the last one's end (and the
  silence is long enough by then);
- an utterance reaching `max_s` is cut at the quietest chunk of its last `seek_s` and the rest goes on as
  the next utterance (Whisper reads at most 30 s);
- speech shorter than `min_speech_s` (a click, a cough read as speech) is dropped and counted.
Not thread-safe: its owner (agent/speech/worker.py) serialises calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from encoders.records import Frame

NS = 1_000_000_000
TOLERANCE_NS = 1_000_000  # window times come from sample counts: closer than this is contiguous
FILL = 512  # samples per piece of a zero-filled gap (silero's chunk)
LATE_S = 0.32  # how late after its last sample a window may still arrive (mailbox, inference, a busy CPU)


@dataclass(frozen=True)
class SegmentCfg:
    onset: float = 0.5  # a chunk at least this likely speech starts (or continues) an utterance
    offset: float = 0.35  # a chunk below this starts a silence run (silero: onset - 0.15)
    min_silence_s: float = 0.6
    max_s: float = 30.0
    pad_s: float = 0.2  # pre-roll and post-roll
    min_speech_s: float = 0.25  # silero's min_speech_duration_ms
    wait_s: float = 0.8  # the microphone's hop (0.48 s) and LATE_S: a window still on its way through inference
    seek_s: float = 2.0  # a cut at max_s goes to the quietest chunk this close to the end


@dataclass(frozen=True)
class Utterance:
    source: str
    audio: np.ndarray  # float32 mono at `rate`, every sample once (windows overlap, the audio does not)
    rate: int
    start_ns: int  # wall clock of the first sample (pre-roll included)
    start_mono: int  # monotonic clock of the first sample
    why: str  # how it ended: "silence", "gap" (no windows), "timer", "max", "close"

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.rate

    @property
    def end_ns(self) -> int:
        return self.start_ns + len(self.audio) * NS // self.rate

    @property
    def end_mono(self) -> int:
        return self.start_mono + len(self.audio) * NS // self.rate


class Segmenter:
    """One source's windows and their chunk probabilities → utterances; see the module docstring."""

    def __init__(self, source: str, rate: int, cfg: SegmentCfg | None = None) -> None:
        self.source, self.rate = source, rate
        self.cfg = cfg = cfg or SegmentCfg()
        if not 0 <= cfg.offset < cfg.onset <= 1:
            raise ValueError(f"need 0 <= offset < onset <= 1, got {cfg.offset}, {cfg.onset}")
        self._pad = round(cfg.pad_s * rate)
        self._min_silence = max(1, round(cfg.min_silence_s * rate))
        self._min_speech = round(cfg.min_speech_s * rate)
        self._max = round(cfg.max_s * rate)
        self._seek = round(cfg.seek_s * rate)
        self._wait_ns = round(cfg.wait_s * NS)
        self._end_mono: int | None = None  # capture time where the audio taken so far ends
        self._cut_mono = -1  # windows captured at or before this are ignored (a pause)
        # the buffer: idle, the last pad_s of audio (pre-roll); open, the utterance so far. Contiguous in time.
        self._pieces: list[np.ndarray] = []
        self._probs: list[float] = []
        self._n = 0
        self._t0 = (0, 0)  # (mono, wall) ns of the buffer's first sample
        self._open = False
        self._onset = 0  # buffer index of the first speech chunk
        self._quiet: int | None = None  # buffer index where the current silence run began
        self.counts = dict.fromkeys(
            ("windows", "late", "stale", "bad", "gaps", "utterances", "short", "max_cuts", "discarded"), 0
        )
        self.gap_s = 0.0

    @property
    def open(self) -> bool:
        return self._open

    # -- input ---------------------------------------------------------------------------------------------
    def feed(self, frame: Frame, probs: np.ndarray) -> list[Utterance]:
        """One encoded window and its chunk probabilities; the utterances this ends."""
        if frame.mono_ns <= self._cut_mono:  # captured before a pause, encoded after it
            self.counts["stale"] += 1
            return []
        data, probs = frame.data, np.asarray(probs, np.float64)
        n = len(data) if isinstance(data, np.ndarray) and data.ndim == 1 else 0
        if not n or probs.ndim != 1 or not len(probs) or n % len(probs) or not np.isfinite(probs).all():
            self.counts["bad"] += 1  # counted; the next good window sees the jump in time as a gap
            return []
        chunk, win_ns = n // len(probs), n * NS // self.rate
        out: list[Utterance] = []
        skip = 0  # samples of this window already taken from the previous one
        if self._end_mono is not None:
            ahead = frame.mono_ns - self._end_mono
            if -ahead >= win_ns - TOLERANCE_NS:  # nothing new in it (a late or repeated window)
                self.counts["late"] += 1
                return out
            skip = min(n, max(0, round(-ahead * self.rate / NS)))
        if not np.isfinite(data[skip:]).all():  # (the audio encoder refuses such windows already)
            self.counts["bad"] += 1
            return []
        self.counts["windows"] += 1
        if self._end_mono is not None and frame.mono_ns - self._end_mono > TOLERANCE_NS:
            out += self._gap(frame.mono_ns - self._end_mono)
        first = skip // chunk
        if not self._open and float(probs[first:].max()) < self.cfg.onset:
            self._idle(data, skip, frame)  # the common case: no speech, none open
        else:
            if not self._n:  # the buffer starts here
                off = skip * NS // self.rate
                self._t0 = (frame.mono_ns + off, frame.ts_ns + off)
            new = np.array(data[skip:], np.float32)  # a copy: the buffer outlives the frame
            cuts = [max(c * chunk, skip) - skip for c in range(first, len(probs) + 1)]
            ps = probs[first:].tolist()
            if self._open and min(ps) >= self.cfg.onset and self._n + len(new) <= self._max:
                self._pieces += [new[lo:hi] for lo, hi in pairwise(cuts)]  # speech goes on
                self._probs += ps
                self._n += len(new)
                self._quiet = None
            else:
                for i, p in enumerate(ps):
                    out += self._piece(new[cuts[i] : cuts[i + 1]], p)
        self._end_mono = frame.mono_ns + win_ns
        return out

    def _idle(self, data: np.ndarray, skip: int, frame: Frame) -> None:
        """Keep only the last pad_s of the audio so far: the pre-roll of an utterance that may start next."""
        n = len(data)
        if not self._pad:
            self._clear()
            return
        if n - skip < self._pad:  # a hop shorter than the pre-roll: the buffer keeps some of its samples
            if not self._n:
                off = skip * NS // self.rate
                self._t0 = (frame.mono_ns + off, frame.ts_ns + off)
            self._append(np.array(data[skip:], np.float32), 0.0)
            self._drop_front(self._n - self._pad)
            return
        off = (n - self._pad) * NS // self.rate
        self._pieces, self._probs, self._n = [np.array(data[n - self._pad :], np.float32)], [0.0], self._pad
        self._t0 = (frame.mono_ns + off, frame.ts_ns + off)

    def tick(self, now_mono: int) -> list[Utterance]:
        """End the open utterance when no window came for `wait_s` (the microphone dropped them as silent)
        and the silence, counted to `now_mono`, is long enough."""
        deadline = self.deadline()
        if deadline is None or now_mono < deadline:
            return []
        quiet = self._n if self._quiet is None else self._quiet
        u = self._close(min(self._n, quiet + self._pad), "timer")
        self._clear()
        return u

    def deadline(self) -> int | None:
        """Monotonic ns from which `tick` ends the open utterance if no window comes first (None: none open)."""
        if not self._open or self._end_mono is None:
            return None
        quiet = self._n if self._quiet is None else self._quiet
        still_ns = max(0, self._min_silence - (self._n - quiet)) * NS // self.rate
        return self._end_mono + max(self._wait_ns, still_ns)

    def finish(self) -> list[Utterance]:
        """End the open utterance now (the daemon stops)."""
        if not self._open:
            return []
        quiet = self._n if self._quiet is None else self._quiet
        u = self._close(min(self._n, quiet + self._pad), "close")
        self._clear()
        return u

    def drop(self) -> int:
        """Discard the open utterance (a forget) and the pre-roll; 1 if one was open."""
        was = int(self._open)
        self.counts["discarded"] += was
        self._clear()
        self._end_mono = None
        return was

    def cut(self, mono_ns: int) -> int:
        """A pause: discard the open utterance, and ignore windows captured at or before `mono_ns`."""
        self._cut_mono = mono_ns
        return self.drop()

    # -- the timeline --------------------------------------------------------------------------------------
    def _piece(self, x: np.ndarray, p: float) -> list[Utterance]:
        """One chunk (or the new part of one) and its speech probability."""
        cfg, out = self.cfg, []
        if not self._open:
            self._append(x, p)
            if p >= cfg.onset:
                self._open, self._quiet = True, None
                self._onset = self._n - len(x)
                self._drop_front(self._onset - self._pad)
            else:
                self._drop_front(self._n - self._pad)
            return out
        if self._n + len(x) > self._max:
            out += self._cut_at_max()
            if not self._open:  # the rest was silence enough to end on its own
                return out + self._piece(x, p)
        self._append(x, p)
        if p >= cfg.onset:
            self._quiet = None
        elif p < cfg.offset and self._quiet is None:
            self._quiet = self._n - len(x)
        if self._quiet is not None and self._n - self._quiet >= self._min_silence:
            out += self._close(min(self._n, self._quiet + self._pad), "silence")
        return out

    def _gap(self, gap_ns: int) -> list[Utterance]:
        """Capture time jumped: windows were dropped as silent (or lost)."""
        self.counts["gaps"] += 1
        self.gap_s += gap_ns / NS
        if not self._open:
            self._clear()  # the pre-roll is not contiguous with what comes next
            return []
        quiet = self._n if self._quiet is None else self._quiet
        missing = gap_ns * self.rate // NS
        if self._n - quiet + missing >= self._min_silence:
            out = self._close(min(self._n, quiet + self._pad), "gap")
            self._clear()
            return out
        out = []
        for lo in range(0, missing, FILL):  # zeros: time stays linear, and they count as silence
            out += self._piece(np.zeros(min(FILL, missing - lo), np.float32), 0.0)
        return out

    def _cut_at_max(self) -> list[Utterance]:
        """The open utterance is full: cut it after its quietest chunk near the end; the rest goes on."""
        ends = np.cumsum([len(x) for x in self._pieces])
        near = [i for i in range(len(self._pieces)) if ends[i] >= self._n - self._seek and ends[i] > self._onset]
        i = min(reversed(near), key=lambda j: self._probs[j])  # the latest of equally quiet ones
        rest = list(zip(self._pieces[i + 1 :], self._probs[i + 1 :], strict=True))
        cut = int(ends[i])
        self.counts["max_cuts"] += 1
        out = [self._utterance(np.concatenate(self._pieces[: i + 1]), "max")]
        self._shift(cut)
        self._pieces, self._probs, self._n = [], [], 0
        self._onset, self._quiet = 0, None  # the next part starts in speech: no pre-roll, no duplicate audio
        for x, p in rest:
            out += self._piece(x, p)
        return out

    def _close(self, end: int, why: str) -> list[Utterance]:
        """End the open utterance at buffer index `end`; what follows stays as pre-roll."""
        audio = np.concatenate(self._pieces) if self._pieces else np.zeros(0, np.float32)
        speech = (self._n if self._quiet is None else self._quiet) - self._onset
        out = []
        if speech >= self._min_speech:
            out.append(self._utterance(audio[:end], why))
        else:
            self.counts["short"] += 1
        rest = audio[end:]
        self._shift(end)
        self._pieces, self._probs, self._n = ([rest], [0.0], len(rest)) if len(rest) else ([], [], 0)
        self._open, self._quiet = False, None
        self._drop_front(self._n - self._pad)
        return out

    def _utterance(self, audio: np.ndarray, why: str) -> Utterance:
        self.counts["utterances"] += 1
        mono, wall = self._t0
        return Utterance(self.source, np.ascontiguousarray(audio, np.float32), self.rate, wall, mono, why)

    # -- the buffer --------------------------------------------------------------------------------------
    def _append(self, x: np.ndarray, p: float) -> None:
        if len(x):
            self._pieces.append(x)
            self._probs.append(p)
            self._n += len(x)

    def _drop_front(self, k: int) -> None:
        """Drop the first `k` samples (k <= 0: nothing); the buffer's start time moves with them."""
        if k <= 0:
            return
        self._shift(k)
        self._n -= k
        if self._open:
            self._onset = max(0, self._onset - k)
            self._quiet = None if self._quiet is None else max(0, self._quiet - k)
        while k and self._pieces:
            first = self._pieces[0]
            if len(first) <= k:
                k -= len(first)
                self._pieces.pop(0)
                self._probs.pop(0)
            else:
                self._pieces[0] = first[k:]
                k = 0

    def _shift(self, k: int) -> None:
        off = k * NS // self.rate
        self._t0 = (self._t0[0] + off, self._t0[1] + off)

    def _clear(self) -> None:
        self._pieces, self._probs, self._n = [], [], 0
        self._open, self._quiet, self._onset = False, None, 0
