"""Build the audio encoder's files: silero-vad (MIT, ONNX shipped in the `silero-vad` wheel) as OpenVINO IR.

No audio-event model with a clear licence ships on PyPI, so speech comes from silero-vad and the rest
from a small DSP descriptor. This build writes one window IR (`window_ir`: one static-shape inference
per 0.96 s window gives the VAD's 30 chunk probabilities and, from `logmel_outputs`, the log-mel
descriptor and spectral flatness, so the daemon needs neither librosa nor numpy DSP for them), and
MiniLM embeddings of the label descriptions so the audio's ConSE vector lands in the text query space.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import openvino as ov

    from encoders.modelstore import ModelStore

NAME = "silero-vad"
ONNX = "silero_vad_openvino_16k.onnx"  # the wheel's 16 kHz export without the `sr` input and its If branch
SAMPLE_RATE = 16000
CHUNK = 512  # samples per VAD step at 16 kHz (32 ms)
CONTEXT = 64  # samples of the previous chunk prepended to each step, as silero's OnnxWrapper does
STEPS = 30
WINDOW = STEPS * CHUNK  # 0.96 s: what the microphone source sends
HIDDEN = 128  # LSTM state size; the step model's `state` is [2 (h, c), 1, HIDDEN]
# 25 ms Hann window in a 512-point FFT, 10 ms hop, 64 mel bands over 125–7500 Hz (below 125 Hz is
# mostly hum and handling noise; 7500 Hz stays under Nyquist with room for the resampler's roll-off).
FRONTEND = {"n_fft": 512, "win_length": 400, "hop_length": 160, "n_mels": 64, "fmin": 125.0, "fmax": 7500.0}
# Mel power is floored at the window's peak × 1e-8 (80 dB, librosa's top_db) before the log: digital
# silence in pauses stays finite and, unlike an absolute floor, the descriptor stays gain-invariant.
DYNAMIC_RANGE = 1e-8
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


def logmel_outputs(window: ov.Node) -> dict[str, ov.Node]:
    """The log-mel descriptor and spectral flatness of `window` [1, WINDOW], as graph nodes.

    Same definitions as librosa (`melspectrogram(center=False)`, periodic Hann of 400 centred in the
    512-point frame): `descriptor` [128] = unit-norm concat(band means minus their mean, band stds) of
    the 64-band log-mel, `flatness` [] = geometric / arithmetic mean of the power over fmin–fmax,
    energy-weighted over frames (Σ_t geo_t / Σ_t arith_t, the same thing), `mel_peak` [] and
    `descriptor_norm` [] so the encoder can refuse silence and shapeless audio. The spectrum is two
    MatMuls by constant cos/sin matrices: power is blind to phase, so each frame is referenced to its
    window's centre, where the symmetric Hann splits the DFT into a cosine transform of the frame's
    even part and a sine transform of its odd part, half the MACs of a plain DFT. Only the 237 bins in
    fmin–fmax are computed: the mel bank is zero outside them. CPU, one thread, spectrum alone: 0.22 ms
    vs 0.42 for one cos/sin MatMul, 0.50 for RDFT (also 5× less precise) and 2.0 for opset15 STFT.
    """
    import openvino.opset15 as ops

    fe = FRONTEND
    n_fft, win, hop = fe["n_fft"], fe["win_length"], fe["hop_length"]
    frames = 1 + (WINDOW - n_fft) // hop
    freqs = np.fft.rfftfreq(n_fft, 1.0 / SAMPLE_RATE)
    band = np.flatnonzero((freqs >= fe["fmin"]) & (freqs <= fe["fmax"]))
    fb = mel_filterbank()
    if np.delete(fb, band, axis=1).any():
        raise RuntimeError("the mel filter bank reaches outside fmin–fmax")

    m = np.arange(win // 2)  # offsets from the Hann centre; its other end, w[0], is 0
    centre = np.arange(frames)[:, None] * hop + (n_fft - win) // 2 + win // 2
    samples = ops.reshape(window, [-1], False)
    plus = ops.gather(samples, ops.constant((centre + m).astype(np.int32)), 0)  # [frames, win / 2]
    minus = ops.gather(samples, ops.constant((centre - m).astype(np.int32)), 0)
    hann = 0.5 + 0.5 * np.cos(2 * np.pi * m / win)  # periodic Hann, from its centre outwards
    hann[0] /= 2  # the centre sample is in both `plus` and `minus`
    angle = 2 * np.pi * np.outer(m, band) / n_fft
    cos, sin = ((hann[:, None] * f(angle)).astype(np.float32) for f in (np.cos, np.sin))
    re = ops.matmul(ops.add(plus, minus), ops.constant(cos), False, False)  # even part: cosine transform
    im = ops.matmul(ops.subtract(plus, minus), ops.constant(sin), False, False)  # odd part: sine transform
    power = ops.add(ops.multiply(re, re), ops.multiply(im, im))  # [frames, bins in band]

    mel = ops.matmul(power, ops.constant(np.ascontiguousarray(fb[:, band].T)), False, False)  # [frames, n_mels]
    peak = ops.reduce_max(mel, [0, 1], False)
    logmel = ops.log(ops.maximum(mel, ops.multiply(peak, np.float32(DYNAMIC_RANGE))))
    mean = ops.reduce_mean(logmel, 0, True)
    dev = ops.subtract(logmel, mean)
    std = ops.sqrt(ops.reduce_mean(ops.multiply(dev, dev), 0, False))
    mean = ops.reshape(mean, [-1], False)
    vec = ops.concat([ops.subtract(mean, ops.reduce_mean(mean, 0, True)), std], 0)  # centred: gain drops out
    norm = ops.sqrt(ops.reduce_sum(ops.multiply(vec, vec), 0, False))

    floored = ops.add(power, np.float32(1e-12))  # digital silence in a bin must not give log(0)
    geo = ops.exp(ops.reduce_mean(ops.log(floored), 1, False))
    arith = ops.reduce_mean(floored, 1, False)
    flatness = ops.divide(ops.reduce_sum(geo, 0, False), ops.reduce_sum(arith, 0, False))
    return {"descriptor": ops.divide(vec, norm), "flatness": flatness, "mel_peak": peak, "descriptor_norm": norm}


def window_ir(step: ov.Model) -> ov.Model:
    """The step model (`input` [1, 576], `state` [2, 1, 128]) turned into `window` [1, 15360] -> `probs` [30].

    The IR also has `logmel_outputs`, computed from the same input.

    Exactly what stepping it over the window from zero state and zero context computes, as silero's
    `OnnxWrapper.audio_forward` does: only the LSTM carries anything from step to step, so the STFT,
    the conv encoder and the decoder run once over all 30 frames as a batch, and the step's one-step
    LSTMSequence is swapped for one over 30 steps with the same weights. CPU, one thread, 2 busy
    cores: 0.74–1.15 ms a window, vs 1.5–2.2 for a TensorIterator over the step body, 2.1–3.6 fully
    unrolled and 2.5–4.3 for 30 infer() calls from Python. Consumes `step` (its nodes are rewired).
    The wiring is checked here; tests/encoders/test_audio.py compares the result with the step loop.
    """
    import openvino as ov
    import openvino.opset15 as ops

    shapes = {p.get_any_name(): list(p.get_shape()) for p in step.inputs}
    if shapes != {"input": [1, CONTEXT + CHUNK], "state": [2, 1, HIDDEN]}:
        raise RuntimeError(f"unexpected silero-vad inputs {shapes}")
    lstms = [op for op in step.get_ordered_ops() if op.get_type_name() == "LSTMSequence"]
    if len(lstms) != 1:
        raise RuntimeError(f"expected one LSTMSequence in the silero-vad step model, found {len(lstms)}")
    lstm = lstms[0]
    x_in = lstm.input_value(0).get_node()  # Reshape [1, 128] -> [1 batch, 1 step, 128]
    if x_in.get_type_name() != "Reshape" or list(lstm.get_output_shape(1)) != [1, 1, HIDDEN]:
        raise RuntimeError("unexpected silero-vad LSTM wiring")

    window = ops.parameter([1, WINDOW], np.float32, name="window")
    padded = ops.concat([ops.constant(np.zeros((1, CONTEXT), np.float32)), window], 1)  # zero context
    index = np.arange(STEPS)[:, None] * CHUNK + np.arange(CONTEXT + CHUNK)  # frame i = padded[512 i : 512 i + 576]
    frames = ops.gather(ops.reshape(padded, [-1], False), ops.constant(index.astype(np.int32)), 0)  # [30, 576]
    (param,) = (p.get_node() for p in step.inputs if p.get_any_name() == "input")
    for target in param.output(0).get_target_inputs():  # the encoder now sees the frames as a batch of 30
        target.replace_source_output(frames.output(0))
    for op in step.get_ordered_ops():  # re-infer shapes up to the LSTM's input reshape
        if op == x_in:
            break
        if op.get_type_name() != "Parameter":
            op.validate_and_infer_types()
    features = ops.reshape(x_in.input_value(0), [1, STEPS, HIDDEN], False)  # batch of 30 -> 30 time steps
    zeros = ops.constant(np.zeros((1, 1, HIDDEN), np.float32))  # zero state per window
    w, r, b = (lstm.input_value(i) for i in (4, 5, 6))
    seq = ops.lstm_sequence(features, zeros, zeros, np.array([STEPS], np.int32), w, r, b, HIDDEN, "forward")
    if seq.get_attributes() != lstm.get_attributes():  # activations, clip, direction
        raise RuntimeError(f"silero-vad LSTM attributes {lstm.get_attributes()} differ from {seq.get_attributes()}")
    hidden = ops.reshape(seq.output(0), [STEPS, 1, HIDDEN], False)  # every step's h, as a batch for the decoder
    for target in lstm.output(1).get_target_inputs():
        target.replace_source_output(hidden.output(0))
    (output,) = (o.get_node().input_value(0) for o in step.outputs if o.get_any_name() == "output")
    ov.Model([ops.result(output)], [window]).validate_nodes_and_infer_types()  # the decoder, batch 30
    outputs = {"probs": ops.reshape(output, [STEPS], False), **logmel_outputs(window)}
    for name, node in outputs.items():
        node.output(0).set_names({name})
    return ov.Model([ops.result(node) for node in outputs.values()], [window], "silero_vad_window")


def build(out_dir: Path, store: ModelStore) -> None:
    """Write model.xml/.bin, labels.json, label_emb.npy and meta.json into out_dir."""
    import openvino as ov

    from encoders.build.minilm import DIM, embed_texts

    model = window_ir(ov.convert_model(str(onnx_path())))
    ov.save_model(model, out_dir / "model.xml", compress_to_fp16=False)

    emb = embed_texts(list(LABELS.values()))
    assert emb.shape == (len(LABELS), DIM), emb.shape
    np.save(out_dir / "label_emb.npy", emb.astype(np.float32))
    (out_dir / "labels.json").write_text(json.dumps(list(LABELS), indent=0) + "\n")
    meta = {
        "name": NAME,
        "sample_rate": SAMPLE_RATE,
        "window_samples": WINDOW,
        "spaces": {"embedding": "logmel/128", "conse": "minilm-l6/384"},
        "labels": "labels.json",
        "label_emb": "label_emb.npy",
        "descriptions": LABELS,
        "frontend": {**FRONTEND, "dynamic_range": DYNAMIC_RANGE},
    }
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
