"""Whisper speech recognition on our OpenVINO runtime: greedy decoding in numpy, one utterance (≤ 30 s) at a time.

Both IRs (see encoders/build/whisper.py) compile through `Runtime`, so the `[device]` setting applies.
Buffers are allocated once and shared with the infer requests (no copies per step): the log-mel is
written straight into the encoder's input, the encoder writes `cross_k`/`cross_v` into arrays the
decoder reads as inputs, and the self-attention cache is two numpy arrays the decoder reads while
Python writes each step's `k`, `v` into slot `position`. Slots >= position are masked in the graph, so
nothing is cleared between utterances. The encoder runs on the smallest audio context (AUDIO_CTX_S) that
holds the utterance: its 100 mel frames a second give 50 encoder positions, copied into the first
positions of the decoder's cross_k/cross_v, and the decoder's `cross_len` masks the rest. A 5 s utterance
thus pays a 10 s encoder pass, not 30 s (whisper.cpp's audio_ctx; measured in tests/encoders/test_asr.py
to keep the transcripts). An unsure language detection or a decoding loop on a short context is retried
on the full window (DETECT_MIN_P). Per utterance: the encoder once, then one decoder step per
prompt token (<|startoftranscript|>, language, <|transcribe|>, <|notimestamps|>) and per text token,
at most 224. The logits after <|startoftranscript|> give the no-speech probability and, for a
multilingual model asked for no language, the language. Nothing here imports torch or transformers.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import openvino as ov
from tokenizers import Tokenizer

from ..records import Transcript
from ..runtime import Compiled, DeviceError, Runtime
from . import decode
from .mel import CHUNK_S, HOP, N_FRAMES, N_SAMPLES, SAMPLE_RATE, log_mel

# Audio contexts (s): the encoder runs on the smallest one that holds the utterance plus MARGIN_S, not
# always on 30 s (whisper.cpp's audio_ctx). The decoder attends to that many encoder positions only.
# 20 s is left out: on espeak-ng utterances of 13-18 s it cost tiny.en 1.3 WER points over 30 s.
AUDIO_CTX_S: tuple[float, ...] = (10.0, 30.0)
MARGIN_S = 0.5
# A short context is not trusted, and the full 30 s window transcribes instead, when its language detection
# is unsure (it flips where the full window is itself unsure; espeak-ng sentences: en 0.49 → cy 0.55,
# de 0.13 → cy 0.21) or its decoding loops (audio_ctx's known failure: the decoder repeats the last phrase).
DETECT_MIN_P = 0.7

FILES = ("meta.json", "encoder.xml", "encoder.bin", "decoder.xml", "decoder.bin", "tokenizer.json")


class AsrModelError(RuntimeError):
    """The Whisper model folder is missing a file or a file cannot be read; the message names the file."""


def _meta(model_dir: Path) -> dict:
    for name in FILES:
        if not (model_dir / name).is_file():
            model = model_dir.name.rsplit("-", 1)[0]
            raise AsrModelError(f"speech model file missing: {model_dir / name} (run `sensorium models build {model}`)")
    path = model_dir / "meta.json"
    try:
        meta = json.loads(path.read_text())
        if meta.get("kind") != "asr":
            raise ValueError("not a speech model's meta (kind 'asr')")
        missing = [k for k in ("name", "multilingual", "sample_rate", "tokens", "suppress_ids") if k not in meta]
        if missing:
            raise ValueError(f"no {', '.join(missing)}")
        return meta
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise AsrModelError(f"speech model file unreadable: {path}: {e}") from None


def _shared(array: np.ndarray) -> ov.Tensor:
    return ov.Tensor(array, shared_memory=True)


def _malloc_trim() -> Callable[[], object]:
    """glibc's malloc_trim(0), or a no-op elsewhere: hands freed heap pages back to the system.

    Compiling and each utterance (log-mel temporaries, the plugin's scratch) free tens of MB that glibc
    otherwise keeps in the heap, where they count as the daemon's resident memory (measured by
    bench/asr_rss.py: ~40 MB after a transcription, ~90 MB after a cold compile).
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return lambda: None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: trim(0)


release_heap = _malloc_trim()


def _buffer(req: ov.InferRequest, name: str, dtype: type) -> np.ndarray:
    """A zeroed array the request reads (input) or writes (output) in place."""
    arr = np.zeros(tuple(req.get_tensor(name).get_shape()), dtype)
    req.set_tensor(name, _shared(arr))
    return arr


@dataclass
class _Context:
    """One audio context: `frames` mel frames in, frames / 2 encoder positions out."""

    seconds: float
    frames: int
    encoder: Compiled  # static: this context's own; dynamic: the one shared encoder
    request: ov.InferRequest  # static: this context's own compiled encoder; dynamic: the one shared request
    mel: np.ndarray  # [1, n_mels, frames], the encoder's input for this context
    cross: dict[str, np.ndarray] | None  # static: its outputs, copied into the decoder's; None: read from the request


def contexts_frames(contexts_s: Sequence[float]) -> list[int]:
    """Mel frames (even, ≤ 3000) of each audio context in seconds, ascending, the full 30 s always included."""
    out = set()
    for s in contexts_s:
        frames = 2 * round(s * SAMPLE_RATE / HOP / 2)
        if not 0 < frames <= N_FRAMES:
            raise ValueError(f"audio context {s} s is not within (0, {CHUNK_S}] s")
        out.add(frames)
    return sorted(out | {N_FRAMES})


class Whisper:
    """`transcribe(audio, language)` → Transcript of float32 mono 16 kHz audio (≤ 30 s); thread-safe (a lock)."""

    def __init__(
        self, runtime: Runtime, model_dir: Path, contexts_s: Sequence[float] = AUDIO_CTX_S, static: bool | None = None
    ) -> None:
        model_dir = Path(model_dir)
        meta = _meta(model_dir)
        self.meta = meta
        self.name: str = meta["name"]
        self.multilingual: bool = bool(meta["multilingual"])
        self.sample_rate: int = int(meta["sample_rate"])
        if self.sample_rate != SAMPLE_RATE:
            raise AsrModelError(f"{model_dir / 'meta.json'}: sample rate {self.sample_rate}, expected {SAMPLE_RATE}")
        try:
            self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        except Exception as e:  # tokenizers raises its own Exception type for a corrupt file
            raise AsrModelError(f"speech model file unreadable: {model_dir / 'tokenizer.json'}: {e}") from None
        self.decoder = self._compile(runtime, model_dir / "decoder.xml")
        self.device = self.decoder.device
        self._dec = self.decoder.model.create_infer_request()
        self._cross = {n: _buffer(self._dec, n, np.float32) for n in ("cross_k", "cross_v")}  # [L, 1, H, 1500, hd]
        self._cache = {n: _buffer(self._dec, n, np.float32) for n in ("self_k", "self_v")}
        self._token = _buffer(self._dec, "token", np.int64)
        self._position = _buffer(self._dec, "position", np.int64)
        self._cross_len = _buffer(self._dec, "cross_len", np.int64)
        self.max_positions = self._cache["self_k"].shape[3]
        self.n_mels = int(meta.get("n_mels", 80))
        # The encoder per audio context. Static shapes (NPU): one compiled encoder per context, each with its
        # own weights in memory. Otherwise one encoder compiled with a dynamic time axis serves them all.
        self.static = runtime.needs_static_shapes() if static is None else static
        enc_xml = model_dir / "encoder.xml"
        self._contexts: list[_Context] = []
        if not self.static:
            self.encoder = self._compile(runtime, enc_xml, {"mel": [1, self.n_mels, -1]})
            req = self.encoder.model.create_infer_request()
        for frames in contexts_frames(contexts_s):
            mel = np.zeros((1, self.n_mels, frames), np.float32)
            cross = None
            if self.static:
                self.encoder = self._compile(runtime, enc_xml, {"mel": [1, self.n_mels, frames]})
                req = self.encoder.model.create_infer_request()
                req.set_tensor("mel", _shared(mel))
                cross = {n: _buffer(req, n, np.float32) for n in ("cross_k", "cross_v")}
            self._contexts.append(_Context(frames * HOP / SAMPLE_RATE, frames, self.encoder, req, mel, cross))
        self.contexts_s = tuple(c.seconds for c in self._contexts)

        t = meta["tokens"]
        self.eot, self.sot, self.no_speech = int(t["eot"]), int(t["sot"]), int(t["no_speech"])
        self.transcribe_id, self.notimestamps = int(t["transcribe"]), int(t["notimestamps"])
        self.languages: dict[str, int] = {k: int(v) for k, v in meta.get("languages", {}).items()}
        self._lang_codes = list(self.languages)
        self._lang_ids = np.array(list(self.languages.values()), np.int64)
        vocab = int(self._dec.get_tensor("logits").get_shape()[1])
        # timestamps are never wanted (<|notimestamps|> decoding): suppressed with the config's list
        self._suppress = decode.mask(vocab, meta["suppress_ids"], from_id=int(t["timestamp_begin"]))
        self._suppress_begin = decode.mask(vocab, meta["suppress_ids_begin"])
        self.max_new_tokens = int(meta.get("max_new_tokens", 224))
        self._lock = threading.Lock()
        self.stats = {"utterances": 0, "tokens": 0, "loops": 0, "bad_audio": 0, "errors": 0, "full_context_retries": 0}
        self._release_encoder = True
        release_heap()

    @staticmethod
    def _compile(runtime: Runtime, xml: Path, shapes: dict[str, list[int]] | None = None) -> Compiled:
        try:
            return runtime.compile(xml, shapes)
        except DeviceError:  # no device could take it, or strict and missing: not the file's fault
            raise
        except RuntimeError as e:  # OpenVINO's read errors: a corrupt or truncated file
            why = [line for line in str(e).splitlines() if line.strip()] or [type(e).__name__]
            raise AsrModelError(f"speech model file unreadable: {xml} (or its .bin): {why[-1].strip()}") from None

    def check_audio(self, audio: np.ndarray) -> np.ndarray:
        """float32 1-D finite audio of at most 30 s, or ValueError saying what is wrong."""
        if not isinstance(audio, np.ndarray) or audio.dtype.kind != "f" or audio.ndim != 1:
            got = f"{getattr(audio, 'dtype', type(audio).__name__)} {getattr(audio, 'shape', '')}"
            raise ValueError(f"expected 1-D float32 mono audio at {self.sample_rate} Hz, got {got}")
        if audio.size > N_SAMPLES:
            raise ValueError(f"{audio.size / self.sample_rate:.2f} s of audio; Whisper takes at most {CHUNK_S} s")
        if not np.isfinite(audio).all():
            raise ValueError("audio holds NaN or infinite samples")
        return audio.astype(np.float32, copy=False)

    def transcribe(self, audio: np.ndarray, language: str | None = None) -> Transcript:
        """What was said in `audio`. `language` (e.g. "de") skips detection; None detects it (multilingual models)."""
        try:
            audio = self.check_audio(audio)
            if language is not None and language not in (self.languages if self.multilingual else ("en",)):
                known = ", ".join(self.languages) if self.multilingual else "en"
                raise ValueError(f"{self.name} does not know language {language!r} (knows: {known})")
        except ValueError:
            self._count("bad_audio")
            raise
        with self._lock:
            t0 = time.perf_counter()
            try:
                out = self._transcribe(audio, language)
            except Exception:
                self.stats["errors"] += 1
                raise
            finally:
                release_heap()
            self.stats["utterances"] += 1
            self.stats["tokens"] += out.tokens
            return replace(out, infer_ms=(time.perf_counter() - t0) * 1000.0)

    def _free_encoder_memory(self, ctx: _Context) -> None:
        """Drop the context's encoder scratch buffers (~20 MB for base) until the next utterance re-allocates them.

        The encoder runs once per utterance and its outputs live in our own arrays, so its scratch memory
        is idle while the decoder runs and between utterances. A device without `release_memory` keeps it.
        """
        if self._release_encoder:
            try:
                ctx.encoder.model.release_memory()
            except (RuntimeError, NotImplementedError):  # e.g. a plugin that does not implement it
                self._release_encoder = False

    def _step(self, token: int, position: int) -> np.ndarray:
        """Run one decoder step; store its k/v in the cache; return the logits [vocab] (the request's memory)."""
        self._token[0], self._position[0] = token, position
        self._dec.infer()
        for n, out in (("self_k", "k"), ("self_v", "v")):
            self._cache[n][:, :, :, position] = self._dec.get_tensor(out).data[:, :, :, 0]
        return self._dec.get_tensor("logits").data[0]

    def context(self, audio_s: float) -> _Context:
        """The smallest audio context that holds `audio_s` seconds plus MARGIN_S (else the full window)."""
        return next((c for c in self._contexts if audio_s + MARGIN_S <= c.seconds), self._contexts[-1])

    def _encode(self, audio: np.ndarray, ctx: _Context) -> int:
        """Run the encoder on context `ctx`; the decoder's cross_k/cross_v then hold it. Returns positions."""
        log_mel(audio, self.n_mels, out=ctx.mel[0])
        if ctx.cross is None:
            ctx.request.set_tensor("mel", _shared(ctx.mel))
        ctx.request.infer()
        n = ctx.frames // 2
        for name in ("cross_k", "cross_v"):  # base: 12 MB (10 s) to 37 MB (30 s), a few ms next to the encoder
            self._cross[name][:, :, :, :n] = ctx.cross[name] if ctx.cross else ctx.request.get_tensor(name).data
        self._cross_len[0] = n
        self._free_encoder_memory(ctx)
        return n

    def _transcribe(self, audio: np.ndarray, language: str | None) -> Transcript:
        ctx, full = self.context(audio.size / self.sample_rate), self._contexts[-1]
        out = self._run(audio, language, ctx)
        if out is None:
            self.stats["full_context_retries"] += 1
            out = self._run(audio, language, full)
        assert out is not None  # the full window is always trusted
        return out

    def _run(self, audio: np.ndarray, language: str | None, ctx: _Context) -> Transcript | None:
        """Transcribe on context `ctx`; None when a short context is not to be trusted (see DETECT_MIN_P)."""
        short = ctx is not self._contexts[-1]
        self._encode(audio, ctx)
        logits = self._step(self.sot, 0)
        if short and self.multilingual and language is None:
            lang = logits[self._lang_ids]
            if decode.softmax_at(lang, int(np.argmax(lang))) < DETECT_MIN_P:
                return None
        no_speech_prob = decode.softmax_at(logits, self.no_speech)
        if not self.multilingual:
            language, prompt = "en", [self.notimestamps]
        else:
            if language is None:
                language = self._lang_codes[int(np.argmax(logits[self._lang_ids]))]
            prompt = [self.languages[language], self.transcribe_id, self.notimestamps]
        position = 0
        for token in prompt:
            position += 1
            logits = self._step(token, position)
        tokens: list[int] = []
        sum_logprob = 0.0
        for i in range(self.max_new_tokens):
            logits[self._suppress] = -np.inf  # in place: the request overwrites its logits next step
            if i == 0:
                logits[self._suppress_begin] = -np.inf  # no blank or end-of-text first
            token = int(np.argmax(logits))
            sum_logprob += decode.log_softmax_at(logits, token)
            if token == self.eot:
                break
            tokens.append(token)
            if decode.repeating(tokens):
                if short:
                    return None
                self.stats["loops"] += 1
                break
            position += 1
            if position >= self.max_positions:
                break
            logits = self._step(token, position)
        text = self.tokenizer.decode([t for t in tokens if t < self.eot]).strip()
        return Transcript(
            text=text,
            language=language,
            avg_logprob=sum_logprob / (len(tokens) + 1),
            no_speech_prob=no_speech_prob,
            compression_ratio=decode.compression_ratio(text),
            tokens=len(tokens),
            audio_s=audio.size / self.sample_rate,
            infer_ms=0.0,
        )

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1
