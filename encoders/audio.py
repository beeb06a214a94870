"""Audio windows to vectors: silero-vad for speech, a log-mel descriptor for everything else, one inference.

Each 0.96 s window at 16 kHz gives two embeddings with the same labels and scores:
- `logmel/128`: mean and std over time of a 64-band log-mel spectrogram, for "sounds like this" search;
- `minilm-l6/384`: ConSE, the label-description text embeddings weighted by the label scores, so text
  queries ("someone talking") find audio moments.

The VAD is silero-vad's recurrent step model turned at build time into one static-shape IR per
window (`encoders.build.silero_vad.window_ir`): zero context prepended, 30 overlapping chunks of
512 + 64 samples, the LSTM run over them from zero state, one speech probability per chunk, exactly as
silero's own `OnnxWrapper.audio_forward` does. The same IR computes the log-mel descriptor and the
spectral flatness (`encoders.build.silero_vad.logmel_outputs`), so Python only turns probabilities and
flatness into labels and the ConSE vector. One inference a window leaves nothing for an
AsyncInferQueue to overlap: `submit` runs it synchronously on one infer request on the caller's
thread (the audio dispatcher; windows come at ~2/s, a window takes about a millisecond) and calls
`on_result` before returning. Resetting state and context per window makes a window's vector depend
on that window only (dropped windows, several sources and replays cannot leak into it), at the cost
of a weaker first chunk, which the top-k aggregation below ignores. Only numpy and OpenVINO are imported here.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .image import BadFrame
from .records import Embedding, Encoded, Frame
from .runtime import Runtime

log = logging.getLogger(__name__)

# Speech score = mean of the 8 highest chunk probabilities (8 × 32 ms ≈ 250 ms, silero's default
# min_speech_duration_ms): a window with a short phrase and a pause still reads as speech.
SPEECH_TOPK = 8
# Non-speech is split between Music and Noise by spectral flatness F (geometric / arithmetic mean of
# the power spectrum over 125–7500 Hz, energy-weighted over frames): noise share =
# sigmoid(log10(F / FLAT_MID) / FLAT_WIDTH). Measured F: pure or harmonic tones, chords 1e-8–1e-3;
# brown noise ≈ 0.05, pink ≈ 0.34, white ≈ 0.57 (exp(-γ) for a noise periodogram, not 1).
# FLAT_MID sits between the two groups in log scale; FLAT_WIDTH (decades) keeps the step smooth.
FLAT_MID = 0.01
FLAT_WIDTH = 0.3
# The window IR's outputs (`window` [1, window_samples] in).
OUTPUTS = ("probs", "descriptor", "flatness", "mel_peak", "descriptor_norm")


def check_audio(data: np.ndarray, length: int) -> None:
    if not isinstance(data, np.ndarray) or data.dtype != np.float32 or data.ndim != 1:
        raise BadFrame(
            f"expected 1-D float32 mono audio, got {getattr(data, 'dtype', type(data))} {getattr(data, 'shape', '')}"
        )
    if data.shape[0] != length:
        raise BadFrame(f"expected {length} samples, got {data.shape[0]}")
    if not np.isfinite(data).all():
        raise BadFrame("audio contains NaN or inf")


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def label_scores(speech: float, flatness: float) -> np.ndarray:
    """[Speech, Music, Noise] scores summing to 1."""
    z = math.log10(max(flatness, 1e-12) / FLAT_MID) / FLAT_WIDTH
    noisy = 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))
    return np.array([speech, (1 - speech) * (1 - noisy), (1 - speech) * noisy], np.float64)


class AudioEncoder:
    """The window IR (silero-vad + log-mel); mirrors ImageEncoder's surface but runs synchronously."""

    modality = "audio"

    def __init__(self, runtime: Runtime, model_dir: Path, on_result: Callable[[Encoded], None]) -> None:
        meta = json.loads((model_dir / "meta.json").read_text())
        self.name: str = meta["name"]
        self.sample_rate = int(meta["sample_rate"])
        self.window_samples = int(meta["window_samples"])
        self.spaces: dict[str, str] = meta["spaces"]  # "embedding" | "conse" -> space
        self.labels: list[str] = json.loads((model_dir / meta["labels"]).read_text())
        self.label_emb = np.load(model_dir / meta["label_emb"]).astype(np.float32)
        if self.labels != ["Speech", "Music", "Noise"] or self.label_emb.shape[0] != 3:
            raise ValueError(f"unexpected audio labels {self.labels} / {self.label_emb.shape}")
        self.compiled = runtime.compile(model_dir / "model.xml")
        self.device = self.compiled.device
        self.requests = 1  # one synchronous request: windows come at ~2/s
        self.request = self.compiled.model.create_infer_request()
        if list(self.request.get_tensor("window").shape) != [1, self.window_samples]:
            raise ValueError(f"{model_dir / 'model.xml'} does not take {self.window_samples}-sample windows")
        missing = set(OUTPUTS) - {name for o in self.compiled.model.outputs for name in o.get_names()}
        if missing:
            raise ValueError(f"{model_dir / 'model.xml'} lacks outputs {sorted(missing)}: rebuild it")
        self._on_result = on_result
        self._lock = threading.Lock()  # one window at a time; guards stats and latencies
        self.stats = {"submitted": 0, "completed": 0, "bad_frames": 0, "errors": 0}
        self.latency_ms: deque[float] = deque(maxlen=256)  # recent per-window encode times

    def infer(self, window: np.ndarray) -> dict[str, np.ndarray]:
        """The IR's OUTPUTS for one window: `probs` per 512-sample chunk [30] (fresh state and zero
        context per window), `descriptor` [128], and scalar `flatness`, `mel_peak`, `descriptor_norm`."""
        req = self.request
        req.get_tensor("window").data[0] = window  # the request's own tensor: no wrapping per call
        req.infer()
        return {name: req.get_tensor(name).data.copy() for name in OUTPUTS}

    def encode(self, frame: Frame) -> tuple[Embedding, ...]:
        """Both embeddings of one window (BadFrame for unusable audio)."""
        check_audio(frame.data, self.window_samples)
        out = self.infer(frame.data)
        if not out["mel_peak"] > 0:
            raise BadFrame("no signal in the analysed band (digital silence)")
        if not out["descriptor_norm"] > 0:  # every band the same and steady: no shape to describe
            raise BadFrame("no spectral shape in the analysed band")
        descriptor, flatness = out["descriptor"], float(out["flatness"])
        speech = float(np.sort(out["probs"])[-SPEECH_TOPK:].mean())
        scores = label_scores(speech, flatness)
        order = np.argsort(-scores, kind="stable")
        labels = tuple(self.labels[i] for i in order)
        rounded = tuple(round(float(scores[i]), 4) for i in order)
        vectors = {"embedding": descriptor, "conse": unit(scores @ self.label_emb)}
        extra = {"speech_prob": f"{speech:.4f}", "flatness": f"{flatness:.3g}"}
        return tuple(
            Embedding.of(frame, space, vectors[out], labels, rounded, extra) for out, space in self.spaces.items()
        )

    def submit(self, frame: Frame) -> None:
        """Encode `frame` now and hand the result to on_result; raises BadFrame for unusable audio."""
        with self._lock:
            t0 = time.perf_counter()
            try:
                embs = self.encode(frame)
            except BadFrame:
                self.stats["bad_frames"] += 1
                raise
            except Exception:  # a device error must not kill the dispatcher thread
                self.stats["submitted"] += 1
                self.stats["errors"] += 1
                log.exception("audio encoder failed on frame %s", frame.id)
                return
            ms = (time.perf_counter() - t0) * 1000.0
            self.stats["submitted"] += 1
            self.stats["completed"] += 1
            self.latency_ms.append(ms)
        self._on_result(Encoded(frame, embs, ms))

    def latencies(self) -> list[float]:
        """Recent per-window encode times in ms (VAD + descriptor)."""
        with self._lock:
            return list(self.latency_ms)

    def drain(self) -> None:
        """Nothing in flight: submit finishes each window before it returns."""
