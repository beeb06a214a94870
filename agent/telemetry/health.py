"""Encoder health: does each model still tell its inputs apart? A sink that watches every vector, off the
capture path, and reports per stream (modality and space, e.g. "image:effnet-lite0/1280") one state:

- "nan": a vector among the last WINDOW had NaN/inf or zero norm (encoders refuse these already and count
  them as errors; this catches what slips past, e.g. an imported model's sink path);
- "constant": RUN consecutive pairs of vectors that are identical (max |a-b| <= IDENTICAL) although their
  inputs differ — a broken model that maps every image to one vector;
- "collapsed": the mean pairwise cosine of recent vectors of clearly different inputs is above COLLAPSED
  (measured healthy, tests/agent/telemetry/test_health.py with -s: effnet-lite0 features of 17 photos 0.16,
  MiniLM of 8 different screen texts 0.19, log-mel of noise vs tones -0.05) — a model whose outputs barely
  move;
- "ok" otherwise. A log WARNING is written when a stream enters a bad state, INFO when it recovers.

"Inputs differ" must not be fooled by a static scene: the change gate skips unchanged frames, but forced
keeps of a static screen are the same pixels and rightly give the same vector; a static camera's frames
differ only by sensor noise, which moves a healthy model's vector a little (effnet-lite0 cosine 0.9997 at
σ=1 grey level, ConSE 0.99999). So:
- identity of an input: a hash of a strided sample of its pixels or samples (a text memory: its words; a
  ConSE vector — labels' text embeddings weighted by their scores, in the text model's space — its labels
  and scores, because equal labels and scores rightly give the same vector; scores count as different
  beyond SCORE_EPS only, since a speech probability moving from 0.99994 to 0.99995 rightly barely moves
  it). Only pairs with different identities count for "constant", and "identical" means equal to float
  precision, not merely close (noise σ=1 still moves effnet by 4.5e-3 and ConSE by 7.7e-4).
- "clearly different" for the spread: an image's 12×16 grey sample differs by more than 12 grey levels RMS
  (sensor noise of σ=2 gives ~3), an audio window's 16 log band energies by more than 0.3 RMS (3 dB), a
  text memory's words differ. ConSE vectors are left out of the spread: the audio ones mix only three labels
  (speech, music, noise), so an hour of talk is legitimately one vector; a broken text tower still shows
  as "constant" there and in the text memories.

Results arrive through a small bounded queue (a full queue drops, counted in `dropped`: status
"health_dropped") and are judged on this module's thread; the spread is recomputed every CHECK_EVERY
vectors of a stream (a 64×64 Gram matrix).
"""

from __future__ import annotations

import logging
import queue
import threading
import zlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from encoders.records import Encoded

log = logging.getLogger(__name__)

WINDOW = 64  # recent vectors per stream
RUN = 8  # consecutive identical pairs of different inputs → "constant"
IDENTICAL = 1e-6  # max |a - b| of two float32 unit vectors called identical
COLLAPSED = 0.98  # mean pairwise cosine of clearly different inputs above this → "collapsed"
MIN_PAIRS = 32  # clearly different pairs needed before the spread is judged
CHECK_EVERY = 16
SCORE_EPS = 0.01  # ConSE inputs differ when a label's score moves by more than this
IMAGE_DIFF = 12.0  # RMS grey-level difference of two clearly different images
AUDIO_DIFF = 0.3  # RMS log10 band-energy difference of two clearly different sounds
QUEUE = 32  # results (each holds its frame's pixels until judged; the thread takes < 1 ms each)
STATES = ("ok", "collapsed", "constant", "nan")  # in order of severity


@dataclass
class _Seen:
    vector: np.ndarray
    ident: object  # equal idents: the same input
    sketch: np.ndarray | str | None  # compared for "clearly different"; None: left out of the spread
    kind: str  # "image" | "audio" | "text"


@dataclass
class StreamHealth:
    state: str = "ok"
    vectors: int = 0
    nan: int = 0  # non-finite or zero-norm vectors
    identical: int = 0  # identical pairs of different inputs
    run: int = 0  # current run of them
    spread: float | None = None  # last mean pairwise cosine of clearly different inputs
    recent: deque = field(default_factory=lambda: deque(maxlen=WINDOW))
    bad_at: int = -(10**9)  # `vectors` when the last NaN was seen
    since_check: int = 0

    def public(self) -> dict[str, object]:
        return {"state": self.state, "vectors": self.vectors, "nan": self.nan, "identical": self.identical,
                "spread": None if self.spread is None else round(self.spread, 4)}  # fmt: skip


class Health:
    def __init__(self, derived_spaces: Iterable[str] = (), queue_size: int = QUEUE) -> None:
        """`derived_spaces`: spaces where non-text vectors are ConSE (the text model's space)."""
        self.derived = set(derived_spaces)
        self._q: queue.Queue[Encoded | None] = queue.Queue(maxsize=queue_size)
        self._streams: dict[str, StreamHealth] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="health", daemon=True)
        self.dropped = 0

    def start(self) -> None:
        self._thread.start()

    def put(self, item: Encoded, thumb: str | None = None) -> None:
        try:
            self._q.put_nowait(item)
        except queue.Full:
            self.dropped += 1

    def close(self) -> None:
        if self._thread.is_alive():
            self._q.put(None)
            self._thread.join(timeout=5)

    def flush(self, timeout: float = 5.0) -> None:
        """Until what was put has been judged (tests)."""
        done = threading.Event()
        self._q.put(done)  # type: ignore[arg-type]
        done.wait(timeout)

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            try:
                self.observe(item)
            except Exception:
                log.exception("encoder health check failed")

    def observe(self, item: Encoded) -> None:
        """Judge one result's vectors (on the health thread; tests may call it directly)."""
        frame_sketch: tuple[object, np.ndarray | None] | None = None
        for e in item.embeddings:
            if e.text:
                seen = _Seen(e.vector, ("text", e.text), e.text, "text")
            elif e.space in self.derived:
                seen = _Seen(e.vector, ("conse", e.labels, e.scores), None, e.modality)
            else:
                if frame_sketch is None:
                    frame_sketch = _sketch(item.frame.data, item.frame.modality)
                seen = _Seen(e.vector, frame_sketch[0], frame_sketch[1], item.frame.modality)
            self._judge(f"{e.modality}:{e.space}", seen)

    def _judge(self, key: str, seen: _Seen) -> None:
        with self._lock:
            s = self._streams.setdefault(key, StreamHealth())
        s.vectors += 1
        v = seen.vector
        if not np.isfinite(v).all() or float(np.linalg.norm(v)) < 1e-6:
            s.nan += 1
            s.bad_at = s.vectors
            self._set(key, s)
            return
        prev = s.recent[-1] if s.recent else None
        if prev is not None and _differ(prev.ident, seen.ident) and prev.vector.shape == v.shape:
            if float(np.abs(prev.vector - v).max()) <= IDENTICAL:
                s.identical += 1
                s.run += 1
            else:
                s.run = 0
        s.recent.append(seen)
        s.since_check += 1
        if s.since_check >= CHECK_EVERY:
            s.since_check = 0
            s.spread = _spread(list(s.recent))
        self._set(key, s)

    def _set(self, key: str, s: StreamHealth) -> None:
        if s.vectors - s.bad_at < WINDOW:
            state = "nan"
        elif s.run >= RUN:
            state = "constant"
        elif s.spread is not None and s.spread > COLLAPSED:
            state = "collapsed"
        else:
            state = "ok"
        if state == s.state:
            return
        old, s.state = s.state, state
        if state == "ok":
            log.info("encoder health %s: ok again (was %s)", key, old)
        else:
            log.warning(
                "encoder health %s: %s (nan %d, identical pairs of different inputs %d, spread %s over %d vectors)",
                key, state, s.nan, s.identical, s.spread, s.vectors,
            )  # fmt: skip

    def stats(self) -> dict[str, dict[str, object]]:
        with self._lock:
            return {k: s.public() for k, s in sorted(self._streams.items())}


def _differ(a: object, b: object) -> bool:
    """Whether two inputs differ; ConSE inputs only when their labels or scores do by more than SCORE_EPS
    (a score moving by 1e-5 moves the vector by ~1e-6, as little as a float's rounding)."""
    if isinstance(a, tuple) and isinstance(b, tuple) and a[:1] == b[:1] == ("conse",):
        _, labels_a, scores_a = a
        _, labels_b, scores_b = b
        if labels_a != labels_b or len(scores_a) != len(scores_b):
            return True
        return any(abs(x - y) > SCORE_EPS for x, y in zip(scores_a, scores_b, strict=True))
    return a != b


def _sketch(data: np.ndarray, modality: str) -> tuple[object, np.ndarray | None]:
    """(identity, sketch) of a frame's input: a CRC of a strided sample, and a small grey image or band energies."""
    if modality == "image" and data.ndim >= 2:
        h, w = data.shape[:2]
        sample = np.ascontiguousarray(data[:: max(1, h // 64), :: max(1, w // 64)])
        rows, cols = np.linspace(0, h - 1, 12).astype(int), np.linspace(0, w - 1, 16).astype(int)
        grey = data[np.ix_(rows, cols)].astype(np.float32)
        grey = grey.mean(axis=-1) if grey.ndim == 3 else grey
        return zlib.crc32(sample.tobytes()), grey.ravel()
    flat = np.ascontiguousarray(data).ravel()
    ident = zlib.crc32(flat[:: max(1, flat.size // 4096)].tobytes())
    if modality != "audio" or flat.size < 64:
        return ident, None
    power = np.abs(np.fft.rfft(flat.astype(np.float32))) ** 2
    bands = np.array([b.mean() for b in np.array_split(power[1:], 16)])
    return ident, np.log10(bands + 1e-12)


def _spread(recent: list[_Seen]) -> float | None:
    """Mean cosine over pairs of clearly different inputs; None when there are fewer than MIN_PAIRS."""
    usable = [s for s in recent if s.sketch is not None]
    if len(usable) < 2:
        return None
    vecs = np.stack([s.vector for s in usable])
    gram = vecs @ vecs.T
    n = len(usable)
    iu = np.triu_indices(n, 1)
    if isinstance(usable[0].sketch, str):
        texts = [s.sketch for s in usable]
        differ = np.array([texts[i] != texts[j] for i, j in zip(*iu, strict=True)])
    else:
        sk = np.stack([np.asarray(s.sketch, dtype=np.float32) for s in usable])
        if sk.ndim != 2 or len({s.kind for s in usable}) != 1:
            return None
        limit = IMAGE_DIFF if usable[0].kind == "image" else AUDIO_DIFF
        sq = (sk * sk).sum(axis=1)
        rms = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * (sk @ sk.T), 0) / sk.shape[1])  # one matmul
        differ = rms[iu] > limit
    if int(differ.sum()) < MIN_PAIRS:
        return None
    return float(gram[iu][differ].mean())


def health_of(stats: dict[str, dict[str, object]]) -> str:
    """One word for all streams: the worst state (for a status line)."""
    states = [str(s["state"]) for s in stats.values()]
    return max(states, key=STATES.index) if states else "ok"
