"""Speech transcripts: utterances from the microphone's VAD, transcribed on a thread of their own, as text memories.

A derived sense (DESIGN), like screen text (agent/text/imagetext.py):
- `hear` is the audio encoder's `on_speech` hook: on the audio dispatcher's thread, with each encoded window's
  chunk probabilities. Segmentation runs right there (agent/speech/segment.py): it is a few comparisons over
  the window's 15 new chunks and one copy of its 0.48 s of new samples (tens of microseconds; a window with
  no speech and none open is one array append), cheaper than handing every window to another thread. The
  dispatcher never waits on a transcription: the lock it takes is only ever held for such bookkeeping.
- Finished utterances wait in a bounded queue (`queue`, 4 by default). When it is full the *oldest* waiting
  utterance is dropped (counted): the transcriber is then slower than speech, so some speech is lost either
  way, and dropping the oldest keeps what is stored close to now (the delay stays at most `queue` utterances)
  and matches the audio mailbox, which drops its oldest window too.
- The worker thread transcribes one utterance at a time (the `Transcriber`: encoders.asr.Whisper), gates the
  transcript (agent/speech/gates.py: silence, garbage, loops, known hallucinations; counted per reason),
  then makes it a text memory with the code screen text uses (agent/text/memories.py: redaction, MiniLM)
  and puts it to the result stage, which publishes it on emb.text.<mic> and stores it. It also runs the
  segmenters' timers: an utterance whose trailing windows were dropped as silent is ended when its
  deadline passes (it sleeps until the nearest deadline; with nothing open it sleeps until woken).
- Raw audio is never stored: the result's Frame carries no samples (the sinks read only its source, id and
  times); the utterance's samples live only until it is transcribed.
- A pause `cut`s the source (its open and waiting utterances are dropped; one being transcribed is dropped
  by the result stage as stale, since it was captured before the pause); `flush` (before a forget) drops what
  is open or waiting and waits for the one in flight; `close` ends the open utterances and transcribes what
  waits for up to `drain_s`.
- Bad audio (NaN, clipping, a DC offset) is counted; clipped audio is still transcribed, a DC offset is
  removed first, non-finite audio is dropped. A transcriber that raises is counted and logged; the worker
  goes on with the next utterance.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from agent.telemetry.metrics import percentile
from agent.text.memories import Embedder, memories
from agent.text.redact import Redactor
from encoders.records import Encoded, Frame

from .gates import REASONS, Thresholds, Transcript, judge
from .segment import SegmentCfg, Segmenter, Utterance

log = logging.getLogger(__name__)

RECENT = 64  # transcription times and lags kept for status p50/p95
NO_AUDIO = np.zeros(0, np.float32)  # a transcript's frame: the sinks never see the samples
CLIP_LEVEL = 0.99  # |sample| at or above this is at full scale
CLIPPED_SHARE = 0.001  # ... and more than this share of such samples is clipped audio
DC_LEVEL = 0.01  # a mean beyond this is a DC offset (removed before transcribing)


class Transcriber(Protocol):
    """Float32 mono audio at `sample_rate`, at most 30 s, to words (encoders.asr.Whisper). An English-only model
    (`multilingual` False) transcribes English only; a multilingual one may list its language codes (`languages`)."""

    name: str
    device: str
    sample_rate: int
    multilingual: bool

    def transcribe(self, audio: np.ndarray, language: str | None = None) -> Transcript: ...


def condition(audio: np.ndarray) -> tuple[np.ndarray | None, list[str]]:
    """Audio fit for the model, and what was wrong with it: None for audio with NaN or inf ("bad_audio");
    "clipped" (kept as it is), "dc_offset" (the mean is removed)."""
    if not np.isfinite(audio).all():
        return None, ["bad_audio"]
    flags = []
    if audio.size and float(np.mean(np.abs(audio) >= CLIP_LEVEL)) > CLIPPED_SHARE:
        flags.append("clipped")
    mean = float(audio.mean()) if audio.size else 0.0
    if abs(mean) > DC_LEVEL:
        flags.append("dc_offset")
        audio = audio - np.float32(mean)
    return np.clip(audio, -1.0, 1.0).astype(np.float32, copy=False), flags


def seconds(ns: int) -> str:
    """A time as the bus header's `ts` has it (unix seconds), to the millisecond, as a string."""
    return f"{ns / 1e9:.3f}"


class SpeechText:
    def __init__(
        self,
        transcriber: Transcriber,
        embedder: Embedder,
        redactor: Redactor | None,
        put: Callable[[Encoded], None],
        *,
        rate: int,
        language: str = "",
        queue: int = 4,
        segment: SegmentCfg | None = None,
        thresholds: Thresholds | None = None,
        drain_s: float = 5.0,
        clock: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        """`rate`: the audio encoder's sample rate (the windows'); the transcriber must take the same."""
        if int(transcriber.sample_rate) != rate:
            raise ValueError(f"the speech model takes {transcriber.sample_rate} Hz audio, the windows are {rate} Hz")
        if queue < 1:
            raise ValueError(f"queue must be >= 1, got {queue}")
        known = getattr(transcriber, "languages", None) if transcriber.multilingual else ("en",)
        if language and known and language not in known:
            raise ValueError(f"{transcriber.name} does not know language {language!r}")
        self.transcriber, self.embedder, self.redactor, self.put = transcriber, embedder, redactor, put
        self.rate, self.language, self.maxlen = rate, language, queue
        self.segment, self.thresholds = segment or SegmentCfg(), thresholds or Thresholds()
        self.drain_s, self.clock = drain_s, clock
        self._cond = threading.Condition()
        self._queue: deque[Utterance] = deque()
        self._segmenters: dict[str, Segmenter] = {}
        self._busy: Utterance | None = None
        self._closing: float | None = None  # monotonic s until which close() lets the queue drain
        self._thread = threading.Thread(target=self._run, name="speech-text", daemon=True)
        self._recent_ms: deque[float] = deque(maxlen=RECENT)  # transcription of one utterance
        self._lag_ms: deque[float] = deque(maxlen=RECENT)  # end of an utterance → its memory to the result stage
        self._logged = False
        self.counts = dict.fromkeys(
            ("utterances", "dropped", "discarded", "transcribed", "memories", "redacted", "trimmed", "errors",
             "bad_audio", "clipped", "dc_offset"),
            0,
        )  # fmt: skip
        self.gated = dict.fromkeys(REASONS, 0)
        self.audio_s = 0.0
        self.last_error: str | None = None

    # -- the audio dispatcher's side ----------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def hear(self, frame: Frame, probs: np.ndarray) -> None:
        """An encoded window's chunk speech probabilities (AudioEncoder's `on_speech`); never waits on the model."""
        with self._cond:
            seg = self._segmenters.get(frame.source)
            if seg is None:
                seg = self._segmenters[frame.source] = Segmenter(frame.source, self.rate, self.segment)
            try:
                done = seg.feed(frame, probs)
            except Exception as e:  # a bug here must not cost the window its audio vectors
                self._error(e, f"segmenting {frame.id}")
                seg.drop()
                return
            for u in done:
                self._offer(u)
            if done or seg.open:
                self._cond.notify()  # an utterance to transcribe, or a new deadline for the timer

    def offer(self, u: Utterance) -> None:
        """Queue an utterance for transcription (the oldest waiting one is dropped when the queue is full)."""
        with self._cond:
            self._offer(u)
            self._cond.notify()

    def _offer(self, u: Utterance) -> None:
        self.counts["utterances"] += 1
        if len(self._queue) >= self.maxlen:
            self._queue.popleft()
            self.counts["dropped"] += 1
        self._queue.append(u)

    # -- control ---------------------------------------------------------------------------------------------
    def cut(self, source: str) -> int:
        """`source` was paused: drop its open and waiting utterances (and windows it captured before now that
        are still being encoded); returns how many utterances were dropped."""
        now = self.clock()
        with self._cond:
            seg = self._segmenters.get(source)
            if seg is None:
                seg = self._segmenters[source] = Segmenter(source, self.rate, self.segment)
            n = seg.cut(now)
            keep = deque(u for u in self._queue if u.source != source)
            n += len(self._queue) - len(keep)
            self.counts["discarded"] += len(self._queue) - len(keep)  # the open one is counted by its segmenter
            self._queue = keep
            return n

    def flush(self, timeout: float = 10.0) -> bool:
        """Before a forget: drop what is open or waiting, and wait for the utterance being transcribed to reach
        the result stage (False after `timeout`)."""
        with self._cond:
            for seg in self._segmenters.values():
                seg.drop()
            self.counts["discarded"] += len(self._queue)
            self._queue.clear()
            return self._cond.wait_for(lambda: self._busy is None, timeout)

    def close(self) -> None:
        """End the open utterances, transcribe what waits for up to `drain_s`, then stop."""
        with self._cond:
            for seg in self._segmenters.values():
                for u in seg.finish():
                    self._offer(u)
            self._closing = time.monotonic() + self.drain_s
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=self.drain_s + 60)  # one transcription may still be running at the deadline

    # -- the worker thread ---------------------------------------------------------------------------------
    def tick(self) -> None:
        """Run the segmenters' timers: utterances whose trailing windows never came end now."""
        now = self.clock()
        with self._cond:
            for seg in self._segmenters.values():
                for u in seg.tick(now):
                    self._offer(u)

    def _next(self) -> Utterance | None:
        """The oldest waiting utterance; None when closing and done."""
        with self._cond:
            while True:
                if self._closing is not None:
                    if self._queue and time.monotonic() < self._closing:
                        self._busy = self._queue.popleft()
                        return self._busy
                    self.counts["discarded"] += len(self._queue)
                    self._queue.clear()
                    return None
                now = self.clock()
                for seg in self._segmenters.values():
                    for u in seg.tick(now):
                        self._offer(u)
                if self._queue:
                    self._busy = self._queue.popleft()
                    return self._busy
                deadlines = [d for seg in self._segmenters.values() if (d := seg.deadline()) is not None]
                self._cond.wait(timeout=max(0.0, (min(deadlines) - now) / 1e9) + 0.001 if deadlines else None)

    def _run(self) -> None:
        while (u := self._next()) is not None:
            try:
                self.transcribe(u)
            except Exception as e:  # the model or the embedder failed: this utterance is lost, the worker goes on
                self._error(e, f"transcribing {u.seconds:.1f} s from {u.source}")
            finally:
                with self._cond:
                    self._busy = None
                    self._cond.notify_all()

    def transcribe(self, u: Utterance) -> Encoded | None:
        """Transcribe `u`, gate it, and put its text memory to the result stage (None when nothing is stored)."""
        audio, flags = condition(u.audio)
        self._count(**dict.fromkeys(flags, 1))
        if audio is None:
            return None
        t0 = time.perf_counter()
        t = self.transcriber.transcribe(audio, self.language or None)
        ms = (time.perf_counter() - t0) * 1000
        verdict = judge(t, self.thresholds)
        with self._cond:
            self.counts["transcribed"] += 1
            self.audio_s += u.seconds
            self._recent_ms.append(ms)
            if verdict.reason is not None:
                self.gated[verdict.reason] += 1
            elif verdict.trimmed:
                self.counts["trimmed"] += 1
        if verdict.reason is not None:
            return None
        frame = Frame(u.source, "audio", NO_AUDIO, u.start_ns, u.start_mono)
        extra = {
            "start": seconds(u.start_ns),
            "end": seconds(u.end_ns),
            "language": t.language or self.language,
            # the geometric mean of the words' token probabilities
            "confidence": f"{math.exp(min(0.0, t.avg_logprob)):.3f}",
        }
        embs, redacted = memories(frame, [verdict.text], self.embedder, self.redactor, extra)
        self._count(redacted=redacted, memories=len(embs))
        if not embs:  # nothing left once redacted
            return None
        item = Encoded(frame, tuple(embs), infer_ms=ms)
        self.put(item)
        with self._cond:
            self._lag_ms.append((self.clock() - u.end_mono) / 1e6)
        return item

    def _count(self, **n: int) -> None:
        with self._cond:
            for key, v in n.items():
                self.counts[key] += v

    def _error(self, e: Exception, what: str) -> None:
        with self._cond:
            self.counts["errors"] += 1
            self.last_error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".rstrip(": ")
            first, self._logged = not self._logged, True
        if first:
            log.error("speech: %s failed (counted; later ones are logged as warnings)", what, exc_info=e)
        else:
            log.warning("speech: %s failed: %s", what, self.last_error)

    def idle(self) -> bool:
        """Nothing open, waiting or being transcribed."""
        with self._cond:
            return not self._queue and self._busy is None and not any(s.open for s in self._segmenters.values())

    def stats(self) -> dict[str, Any]:
        with self._cond:
            seg: dict[str, int] = {}
            for s in self._segmenters.values():
                for k, v in s.counts.items():
                    seg[k] = seg.get(k, 0) + v
            recent, lag = list(self._recent_ms), list(self._lag_ms)
            out = {
                **self.counts,
                "discarded": self.counts["discarded"] + seg.get("discarded", 0),
                "gated": dict(self.gated),
                "waiting": len(self._queue),
                "audio_s": round(self.audio_s, 1),
                "last_error": self.last_error,
                "windows": seg.get("windows", 0),
                "gaps": seg.get("gaps", 0),
                "short": seg.get("short", 0),
                "max_cuts": seg.get("max_cuts", 0),
            }
        return out | {
            "p50_ms": percentile(recent, 50),
            "p95_ms": percentile(recent, 95),
            "lag_p50_ms": percentile(lag, 50),
            "lag_p95_ms": percentile(lag, 95),
        }
