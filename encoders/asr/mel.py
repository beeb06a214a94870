"""Whisper's log-mel spectrogram in numpy, as OpenAI's `transcribe` (and faster-whisper) feed the encoder.

The audio, followed by silence, is framed with a 400-sample periodic Hann window every 160 samples
(centred: the start is reflected by 200 samples), the power spectrum mapped to 80 Slaney mel bands
(librosa's filters), then log10 (floor 1e-10), clamped to 8 decades below the loudest value and scaled
as (x + 4) / 4. The audio's len // 160 frames are kept and the rest of the 3000 frames (30 s) are
0.0, as OpenAI's `transcribe` pads a segment's features (`pad_or_trim`); transformers'
WhisperFeatureExtractor instead pads the audio to 30 s, which gives the same frames for the audio but
the log of silence (-1.5 or so, not 0.0) after it, and the transcripts then differ from Whisper's and
faster-whisper's. Only the audio's frames are computed: a 5 s utterance costs a sixth of a 30 s one.
Checked against WhisperFeatureExtractor (the audio's frames) in tests/encoders/test_asr.py.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

SAMPLE_RATE = 16000
N_FFT = 400
HOP = 160
CHUNK_S = 30
N_SAMPLES = CHUNK_S * SAMPLE_RATE
N_FRAMES = N_SAMPLES // HOP  # 3000


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above (librosa's htk=False)."""
    f = np.asarray(f, np.float64)
    mel = f / (200.0 / 3)
    log = f >= 1000.0
    return np.where(log, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), mel)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, np.float64)
    return np.where(m >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0)), (200.0 / 3) * m)


@lru_cache(maxsize=4)
def mel_filters(n_mels: int = 80, sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT) -> np.ndarray:
    """float32 [n_mels, n_fft // 2 + 1]: triangles on the Slaney mel scale, area-normalised (librosa's default)."""
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2))
    ramps = edges[:, None] - freqs[None, :]
    widths = np.diff(edges)
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper)) * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    out = weights.astype(np.float32)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic Hann


def log_mel(audio: np.ndarray, n_mels: int = 80, out: np.ndarray | None = None) -> np.ndarray:
    """float32 [n_mels, 3000] of mono 16 kHz `audio` (at most 30 s; longer is a ValueError).

    `out`, if given, is a float32 [n_mels, frames] array written in place (e.g. an inference input's memory);
    fewer than 3000 frames (a shorter audio context) must still hold the audio's len // 160 frames.
    """
    audio = np.asarray(audio, np.float32)
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio (1-D), got shape {audio.shape}")
    n = audio.size
    if n > N_SAMPLES:
        raise ValueError(f"{n / SAMPLE_RATE:.2f} s of audio; Whisper takes at most {CHUNK_S} s at a time")
    if out is None:
        out = np.empty((n_mels, N_FRAMES), np.float32)
    content = n // HOP  # frames of the audio; the encoder sees 0.0 after them
    if content > out.shape[1]:
        raise ValueError(f"{n / SAMPLE_RATE:.2f} s of audio do not fit {out.shape[1]} mel frames")
    out[:, content:] = 0.0
    if content == 0:
        return out
    half = N_FFT // 2
    x = np.zeros(content * HOP + N_FFT, np.float32)  # the audio centred, followed by silence
    x[half : half + n] = audio
    x[:half] = x[2 * half : half : -1]  # reflect the start (audio[200] … audio[1])
    frames = np.lib.stride_tricks.sliding_window_view(x, N_FFT)[::HOP][:content]  # frame t: samples 160 t ± 200
    power = np.abs(np.fft.rfft(frames * _window(), axis=1)) ** 2  # [content, 201]
    mel = power.astype(np.float32, copy=False) @ mel_filters(n_mels).T  # [content, n_mels]
    spec = np.log10(np.maximum(mel, 1e-10), out=mel)
    np.maximum(spec, spec.max() - 8.0, out=spec)
    np.add(spec.T, 4.0, out=out[:, :content])
    out[:, :content] /= 4.0
    return out
