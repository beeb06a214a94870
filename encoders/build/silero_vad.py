"""Build the audio encoder's files: silero-vad (MIT, ONNX shipped in the `silero-vad` wheel) as OpenVINO IR.

No audio-event model with a clear licence ships on PyPI, so speech comes from silero-vad and the rest
from a small DSP descriptor computed by `encoders.audio`. This build writes the VAD IR (static shapes
as shipped: `input` [1, 576] = 64 context + 512 new samples, `state` [2, 1, 128]), the log-mel filter
bank the runtime uses (so the daemon needs neither librosa nor torch for it), and MiniLM embeddings of
the label descriptions so the audio's ConSE vector lands in the text query space.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from encoders.modelstore import ModelStore

NAME = "silero-vad"
ONNX = "silero_vad_openvino_16k.onnx"  # the wheel's 16 kHz export without the `sr` input and its If branch
SAMPLE_RATE = 16000
CHUNK = 512  # samples per VAD step at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous chunk prepended to each step, as silero's OnnxWrapper does
WINDOW = 30 * CHUNK  # 0.96 s: what the microphone source sends
# 25 ms Hann window in a 512-point FFT, 10 ms hop, 64 mel bands over 125–7500 Hz (below 125 Hz is
# mostly hum and handling noise; 7500 Hz stays under Nyquist with room for the resampler's roll-off).
FRONTEND = {"n_fft": 512, "win_length": 400, "hop_length": 160, "n_mels": 64, "fmin": 125.0, "fmax": 7500.0}
# Display name -> the text embedded for it. Each description names what a user would type to find it.
LABELS = {
    "Speech": "someone talking, a human voice, speech",
    "Music": "music, a musical tone, singing or an instrument",
    "Noise": "noise, hiss, static, wind or machinery",
}


def onnx_path() -> Path:
    """The shipped ONNX file, found without importing silero_vad (whose __init__ imports torch)."""
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("building silero-vad needs the `silero-vad` package (pip install --no-deps silero-vad)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / ONNX
    if not path.is_file():
        raise RuntimeError(f"{ONNX} not found in the silero-vad package at {path.parent}")
    return path


def mel_filterbank() -> np.ndarray:
    """float32 [n_mels, n_fft // 2 + 1], Slaney mel scale and area normalisation (librosa's defaults)."""
    import librosa

    fe = FRONTEND
    fb = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=fe["n_fft"], n_mels=fe["n_mels"], fmin=fe["fmin"], fmax=fe["fmax"])
    return fb.astype(np.float32)


def build(out_dir: Path, store: ModelStore) -> None:
    """Write model.xml/.bin, mel_fb.npy, labels.json, label_emb.npy and meta.json into out_dir."""
    import openvino as ov

    from encoders.build.minilm import DIM, embed_texts

    model = ov.convert_model(str(onnx_path()))
    shapes = {p.get_any_name(): list(p.get_shape()) for p in model.inputs}
    if shapes != {"input": [1, CONTEXT + CHUNK], "state": [2, 1, 128]}:
        raise RuntimeError(f"unexpected silero-vad inputs {shapes}")
    ov.save_model(model, out_dir / "model.xml", compress_to_fp16=False)

    np.save(out_dir / "mel_fb.npy", mel_filterbank())
    emb = embed_texts(list(LABELS.values()))
    assert emb.shape == (len(LABELS), DIM), emb.shape
    np.save(out_dir / "label_emb.npy", emb.astype(np.float32))
    (out_dir / "labels.json").write_text(json.dumps(list(LABELS), indent=0) + "\n")
    meta = {
        "name": NAME,
        "sample_rate": SAMPLE_RATE,
        "window_samples": WINDOW,
        "chunk": CHUNK,
        "context": CONTEXT,
        "spaces": {"embedding": "logmel/128", "conse": "minilm-l6/384"},
        "labels": "labels.json",
        "label_emb": "label_emb.npy",
        "descriptions": LABELS,
        "frontend": {**FRONTEND, "mel_fb": "mel_fb.npy"},
    }
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
