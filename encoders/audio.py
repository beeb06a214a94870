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
AsyncInferQueue to overlap: the encoder runs `inline` (see `encoders.base`), on one infer request on
the caller's thread (the audio dispatcher; windows come at ~2/s, a window takes about a millisecond),
and calls `on_result` before `submit` returns. Measured one window at a time (the mic's real rate), an
AsyncInferQueue of one request took ~0.2 ms longer per window; it only wins when saturated (hundreds of
windows/s). Inline, a window the IR finds silent can still be refused as a BadFrame. Resetting state
and context per window makes a window's vector depend on that window only (dropped windows, several
sources and replays cannot leak into it), at the cost of a weaker first chunk, which the top-k
aggregation below ignores. Only numpy and OpenVINO are imported here.

`on_speech` (optional) receives every encoded window with its per-chunk speech probabilities, on the
dispatcher's thread as part of `outputs`: speech transcripts segment utterances from them (agent/speech),
so the VAD runs once. It must not block; an exception from it is logged and the window is encoded anyway.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import openvino as ov

from .base import BadFrame, FrameEncoder, Outputs
from .records import Encoded, Frame
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


def label_scores(speech: float, flatness: float) -> np.ndarray:
    """[Speech, Music, Noise] scores summing to 1."""
    z = math.log10(max(flatness, 1e-12) / FLAT_MID) / FLAT_WIDTH
    noisy = 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))
    return np.array([speech, (1 - speech) * (1 - noisy), (1 - speech) * noisy], np.float64)


class AudioEncoder(FrameEncoder):
    """The window IR (silero-vad + log-mel), run inline: one request, on the dispatcher's thread."""

    modality = "audio"
    inline = True

    def __init__(
        self,
        runtime: Runtime,
        model_dir: Path,
        on_result: Callable[[Encoded], None],
        on_speech: Callable[[Frame, np.ndarray], None] | None = None,
    ) -> None:
        self.on_speech = on_speech
        self._speech_failed = False
        meta = json.loads((model_dir / "meta.json").read_text())
        self.name = meta["name"]
        self.sample_rate = int(meta["sample_rate"])
        self.window_samples = int(meta["window_samples"])
        self.spaces: dict[str, str] = meta["spaces"]  # "embedding" | "conse" -> space
        self.labels: list[str] = json.loads((model_dir / meta["labels"]).read_text())
        self.label_emb = np.load(model_dir / meta["label_emb"]).astype(np.float32)
        if self.labels != ["Speech", "Music", "Noise"] or self.label_emb.shape[0] != 3:
            raise ValueError(f"unexpected audio labels {self.labels} / {self.label_emb.shape}")
        super().__init__(runtime.compile(model_dir / "model.xml"), 1, on_result)
        if list(self.request.get_tensor("window").shape) != [1, self.window_samples]:
            raise ValueError(f"{model_dir / 'model.xml'} does not take {self.window_samples}-sample windows")
        missing = set(OUTPUTS) - {name for o in self.compiled.model.outputs for name in o.get_names()}
        if missing:
            raise ValueError(f"{model_dir / 'model.xml'} lacks outputs {sorted(missing)}: rebuild it")

    def inputs(self, frame: Frame) -> dict[str, np.ndarray]:
        check_audio(frame.data, self.window_samples)
        return {"window": frame.data[np.newaxis]}

    def infer(self, window: np.ndarray) -> dict[str, np.ndarray]:
        """The IR's OUTPUTS for one window: `probs` per 512-sample chunk [30] (fresh state and zero
        context per window), `descriptor` [128], and scalar `flatness`, `mel_peak`, `descriptor_norm`."""
        with self._busy:
            self.infer_inline({"window": window[np.newaxis]})
            return {name: self.request.get_tensor(name).data.copy() for name in OUTPUTS}

    def outputs(self, frame: Frame, request: ov.InferRequest) -> Outputs:
        """Both vectors of one window, with labels and scores (BadFrame for a window with nothing in it)."""
        # Per window on the dispatcher's thread, next to a ~1 ms inference: plain Python floats for the three
        # scores, no numpy call where a scalar will do (each costs a few µs; outputs 64 -> 57 µs CPU a window).
        tensor = request.get_tensor
        if not float(tensor("mel_peak").data) > 0:  # NaN too
            raise BadFrame("no signal in the analysed band (digital silence)")
        if not float(tensor("descriptor_norm").data) > 0:  # every band the same and steady: no shape to describe
            raise BadFrame("no spectral shape in the analysed band")
        probs = tensor("probs").data
        if self.on_speech is not None:
            self._hear(frame, probs.copy())  # a copy: the request's tensors are reused
        flatness = float(tensor("flatness").data)
        speech = float(np.sort(probs)[-SPEECH_TOPK:].sum() / SPEECH_TOPK)  # = .mean(): float32 sum, then / n
        scores = label_scores(speech, flatness)
        listed = scores.tolist()
        order = sorted(range(len(listed)), key=lambda i: -listed[i])  # stable, as argsort(kind="stable")
        vectors = {"embedding": tensor("descriptor").data, "conse": scores @ self.label_emb}  # unit() copies both
        return Outputs(
            {space: vectors[name] for name, space in self.spaces.items()},
            tuple(self.labels[i] for i in order),
            tuple(round(listed[i], 4) for i in order),
            {"speech_prob": f"{speech:.4f}", "flatness": f"{flatness:.3g}"},
        )

    def _hear(self, frame: Frame, probs: np.ndarray) -> None:
        """Hand the window's chunk probabilities on; a failing hook costs the transcripts, never the vectors."""
        try:
            self.on_speech(frame, probs)  # type: ignore[misc]  # checked by the caller
        except Exception:
            first, self._speech_failed = not self._speech_failed, True
            log.log(logging.ERROR if first else logging.DEBUG, "on_speech failed on %s", frame.id, exc_info=True)
