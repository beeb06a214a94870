"""The audio encoder on real sounds: espeak-ng speech, a 440 Hz tone and white noise, generated here.

Speech probabilities must match silero-vad's own ONNX reference, the in-graph log-mel descriptor and
flatness librosa's spectrogram in float64; labels and ConSE vectors must point text queries at the right
sounds. Models come from conftest's `model_cache`.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from demo.standins import noise, speech, tone
from encoders.audio import AudioEncoder, label_scores
from encoders.base import BadFrame
from encoders.modelstore import ModelStore
from encoders.records import Encoded, Frame
from encoders.runtime import Runtime, RuntimeConfig

RATE = 16000
SENTENCE = "Hello there. I am talking to you about the weather today, and then we will go for a long walk."


def load_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2")
        return pcm.astype(np.float32) / 32768.0, w.getframerate()


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Runtime:
    return Runtime(RuntimeConfig("CPU", "LATENCY", 0, False, tmp_path_factory.mktemp("ov-cache")))


@pytest.fixture(scope="module")
def model_dir(model_cache: Path) -> Path:
    return ModelStore(model_cache).require("silero-vad")


@pytest.fixture(scope="module")
def speech_windows(tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    """Every full 0.96 s window of an espeak-ng sentence, resampled to 16 kHz with soxr."""
    import soxr

    samples, rate = load_wav(speech(tmp_path_factory.mktemp("speech") / "s.wav", SENTENCE))
    audio = soxr.resample(samples, rate, RATE).astype(np.float32)
    n = 15360
    return [audio[i : i + n].copy() for i in range(0, len(audio) - n + 1, n)]


@pytest.fixture(scope="module")
def sounds(speech_windows: list[np.ndarray]) -> dict[str, np.ndarray]:
    return {"speech": speech_windows[1], "tone": tone(0.96, 440.0, RATE), "noise": noise(0.96, RATE)}


@pytest.fixture(scope="module")
def encoded(runtime: Runtime, model_dir: Path, sounds: dict[str, np.ndarray]) -> dict[str, Encoded]:
    results: list[Encoded] = []
    enc = AudioEncoder(runtime, model_dir, results.append)
    for i, (name, data) in enumerate(sounds.items()):
        enc.submit(Frame(f"mic-{name}", "audio", data, 1_000 + i, i))
        assert len(results) == i + 1  # on_result ran before submit returned
    enc.drain()
    assert enc.stats == {"submitted": 3, "completed": 3, "bad_frames": 0, "errors": 0}
    assert len(enc.latencies()) == 3
    return {name: r for name, r in zip(sounds, results, strict=True)}


@pytest.fixture(scope="module")
def text(runtime: Runtime, model_cache: Path):
    from encoders.text import TextEncoder

    return TextEncoder(runtime, ModelStore(model_cache).require("minilm-l6")).encode


def conse(item: Encoded) -> np.ndarray:
    return next(e.vector for e in item.embeddings if e.space == "minilm-l6/384")


def test_speech_probabilities_match_silero_reference(runtime, model_dir, speech_windows) -> None:
    import torch
    from silero_vad import load_silero_vad

    enc = AudioEncoder(runtime, model_dir, lambda r: None)
    ref = load_silero_vad(onnx=True)  # silero's OnnxWrapper on its own ONNX file, via onnxruntime
    worst = 0.0
    for window in speech_windows:
        ref.reset_states()  # the encoder starts every window afresh: zero state, zero context
        want = np.array([float(ref(torch.from_numpy(c), RATE)) for c in window.reshape(-1, 512)])
        got = enc.infer(window)["probs"]
        assert got.shape == (30,) and want.max() > 0.9
        worst = max(worst, float(np.abs(got - want).max()))
    assert worst < 1e-3, worst


def test_window_ir_equals_the_step_loop(runtime, model_dir, speech_windows) -> None:
    """The window IR's graph surgery computes what 30 steps of silero's step model compute."""
    import openvino as ov

    from encoders.build.silero_vad import onnx_path

    enc = AudioEncoder(runtime, model_dir, lambda r: None)
    req = ov.Core().compile_model(ov.convert_model(onnx_path()), "CPU").create_infer_request()
    for window in [*speech_windows, noise(0.96, RATE), np.zeros(15360, np.float32)]:
        padded = np.r_[np.zeros(64, np.float32), window]
        state, want = np.zeros((2, 1, 128), np.float32), []
        for i in range(30):
            out = req.infer({"input": padded[None, i * 512 : i * 512 + 576], "state": state})
            want.append(float(out["output"][0, 0]))
            state = out["stateN"]
        np.testing.assert_allclose(enc.infer(window)["probs"], want, rtol=0, atol=1e-5)


def test_top_labels(encoded, runtime, model_dir, speech_windows) -> None:
    assert encoded["speech"].embeddings[0].labels[0] == "Speech"
    assert encoded["tone"].embeddings[0].labels[0] == "Music"
    assert encoded["noise"].embeddings[0].labels[0] == "Noise"
    scores = {
        name: dict(zip(r.embeddings[0].labels, r.embeddings[0].scores, strict=True)) for name, r in encoded.items()
    }
    assert scores["speech"]["Speech"] > 0.9 and scores["tone"]["Music"] > 0.9 and scores["noise"]["Noise"] > 0.9
    results: list[Encoded] = []
    enc = AudioEncoder(runtime, model_dir, results.append)
    for i, window in enumerate(speech_windows):  # every window of the sentence, pauses included
        enc.submit(Frame("mic", "audio", window, i, i))
    assert [r.embeddings[0].labels[0] for r in results] == ["Speech"] * len(speech_windows)


def test_conse_points_text_queries_at_the_right_sound(encoded, text) -> None:
    talking, music = text("someone talking"), text("music")
    vec = {name: conse(r) for name, r in encoded.items()}
    to_talking = {name: float(v @ talking) for name, v in vec.items()}
    assert to_talking["speech"] > max(to_talking["tone"], to_talking["noise"]) + 0.2, to_talking
    to_music = {name: float(v @ music) for name, v in vec.items()}
    assert to_music["tone"] > max(to_music["speech"], to_music["noise"]) + 0.2, to_music
    queries = {q: text(q) for q in ("someone talking", "music", "noise")}
    assert max(queries, key=lambda q: float(vec["tone"] @ queries[q])) == "music"


def test_vectors_are_unit_float32_in_both_spaces(encoded) -> None:
    for item in encoded.values():
        spaces = {e.space: e for e in item.embeddings}
        assert set(spaces) == {"logmel/128", "minilm-l6/384"}
        for e in spaces.values():
            assert e.vector.dtype == np.float32 and e.dim == int(e.space.split("/")[1])
            assert abs(np.linalg.norm(e.vector) - 1) < 1e-5
            assert e.labels == item.embeddings[0].labels and e.scores == item.embeddings[0].scores
            assert e.scores == tuple(sorted(e.scores, reverse=True)) and abs(sum(e.scores) - 1) < 1e-3
            assert e.frame_id == item.frame.id and e.modality == "audio"


def reference(x: np.ndarray) -> tuple[np.ndarray, float]:
    """(descriptor, flatness) from librosa's spectrogram and mel bank in float64, as encoders.audio defined them."""
    import librosa

    power = np.abs(librosa.stft(x.astype(np.float64), n_fft=512, hop_length=160, win_length=400, center=False)) ** 2
    mel = librosa.feature.melspectrogram(S=power, sr=RATE, n_fft=512, n_mels=64, fmin=125.0, fmax=7500.0)
    logmel = np.log(np.maximum(mel, mel.max() * 1e-8))  # [n_mels, frames]
    mean = logmel.mean(1)
    vec = np.concatenate([mean - mean.mean(), logmel.std(1)])
    freqs = librosa.fft_frequencies(sr=RATE, n_fft=512)
    band = power[(freqs >= 125.0) & (freqs <= 7500.0)] + 1e-12
    flat = np.exp(np.log(band).mean(0)) / band.mean(0)  # per frame
    energy = band.sum(0)
    return vec / np.linalg.norm(vec), float((flat * energy).sum() / energy.sum())


def test_logmel_descriptor_ignores_gain_and_matches_librosa(runtime, model_dir, sounds) -> None:
    enc = AudioEncoder(runtime, model_dir, lambda r: None)
    loud = enc.infer(sounds["speech"])["descriptor"]
    quiet = enc.infer(sounds["speech"] * np.float32(0.05))["descriptor"]
    other = enc.infer(sounds["noise"])["descriptor"]
    assert float(loud @ quiet) > 0.999 and float(loud @ other) < 0.9
    assert np.abs(loud - reference(sounds["speech"])[0]).max() < 1e-4


def test_ir_descriptor_and_flatness_match_the_float64_reference(runtime, model_dir, speech_windows) -> None:
    """float32 in the graph vs float64: descriptors to 1e-4, flatness close enough not to move label scores."""
    enc = AudioEncoder(runtime, model_dir, lambda r: None)
    t = np.arange(15360) / RATE
    windows = {
        **{f"speech{i}": w for i, w in enumerate(speech_windows)},
        "quiet speech": speech_windows[1] * np.float32(1e-3),
        "tone": tone(0.96, 440.0, RATE),
        "chord": sum(0.2 * np.sin(2 * np.pi * f * t) for f in (261.6, 329.6, 392.0)).astype(np.float32),
        "harmonics": sum(0.3 / k * np.sin(2 * np.pi * 220 * k * t) for k in range(1, 10)).astype(np.float32),
        "white noise": noise(0.96, RATE),
        "brown noise": (np.cumsum(noise(0.96, RATE)) * 0.01).astype(np.float32),
        "tone after silence": np.r_[np.zeros(7680, np.float32), tone(0.48, 1000.0, RATE)],
    }
    for name, window in windows.items():
        out = enc.infer(window)
        want, flat = reference(window)
        assert np.abs(out["descriptor"] - want).max() < 1e-4, name
        got = float(out["flatness"])
        assert flat < 1e-4 or abs(got - flat) < 1e-2 * flat, (name, got, flat)  # below 1e-4 only the log matters
        for prob in (0.0, 0.5):  # speech probability 0: flatness decides everything
            assert np.abs(label_scores(prob, got) - label_scores(prob, flat)).max() < 1e-4, (name, got, flat)


@pytest.mark.parametrize(
    "data",
    [
        np.zeros(15360, np.float64),
        np.zeros(15360, np.int16),
        np.zeros((1, 15360), np.float32),
        np.zeros(15359, np.float32),
        np.zeros(0, np.float32),
        np.full(15360, np.nan, np.float32),
        np.r_[np.zeros(15359, np.float32), np.float32(np.inf)],
        np.zeros(15360, np.float32),  # digital silence: nothing to describe (the gate drops it first)
    ],
    ids=["float64", "int16", "2d", "short", "empty", "nan", "inf", "silence"],
)
def test_bad_frames_are_refused_and_counted(runtime, model_dir, data) -> None:
    results: list[Encoded] = []
    enc = AudioEncoder(runtime, model_dir, results.append)
    with pytest.raises(BadFrame):
        enc.submit(Frame("mic", "audio", data, 0, 0))
    assert enc.stats["bad_frames"] == 1 and enc.stats["submitted"] == 0 and not results


def test_on_speech_gets_every_encoded_windows_chunk_probabilities(runtime, model_dir, speech_windows) -> None:
    """The hook speech transcripts segment from: the probabilities `infer` computes, window by window; a
    window refused as digital silence does not reach it; a hook that raises costs no vector."""
    heard: list[tuple[Frame, np.ndarray]] = []
    results: list[Encoded] = []
    enc = AudioEncoder(runtime, model_dir, results.append, on_speech=lambda f, p: heard.append((f, p)))
    frames = [Frame("mic", "audio", w, i, i) for i, w in enumerate(speech_windows[:3])]
    for f in frames:
        enc.submit(f)
    with pytest.raises(BadFrame):
        enc.submit(Frame("mic", "audio", np.zeros(15360, np.float32), 9, 9))
    assert [f for f, _ in heard] == frames
    for (_, probs), window in zip(heard, speech_windows, strict=False):
        np.testing.assert_array_equal(probs, enc.infer(window)["probs"])  # a copy, not the reused tensor
    assert heard[0][1] is not heard[1][1]

    def broken(frame: Frame, probs: np.ndarray) -> None:
        raise RuntimeError("segmenter bug")

    enc.on_speech = broken
    enc.submit(frames[0])
    assert len(results) == 4 and enc.stats["errors"] == 0
