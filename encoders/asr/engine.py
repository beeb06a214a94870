"""Whisper speech recognition on our OpenVINO runtime: greedy decoding in numpy, one utterance (≤ 30 s) at a time.

Both IRs (see encoders/build/whisper.py) compile through `Runtime`, so the `[device]` setting applies.
Buffers are allocated once and shared with the infer requests (no copies per step): the log-mel is
written straight into the encoder's input, the encoder writes `cross_k`/`cross_v` into arrays the
decoder reads as inputs, and the self-attention cache is two numpy arrays the decoder reads while
Python writes each step's `k`, `v` into slot `position`. Slots >= position are masked in the graph, so
nothing is cleared between utterances. Per utterance: the encoder once, then one decoder step per
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
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import openvino as ov
from tokenizers import Tokenizer

from ..records import Transcript
from ..runtime import Compiled, DeviceError, Runtime
from . import decode
from .mel import CHUNK_S, N_SAMPLES, SAMPLE_RATE, log_mel

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


class Whisper:
    """`transcribe(audio, language)` → Transcript of float32 mono 16 kHz audio (≤ 30 s); thread-safe (a lock)."""

    def __init__(self, runtime: Runtime, model_dir: Path) -> None:
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
        self.encoder = self._compile(runtime, model_dir / "encoder.xml")
        self.decoder = self._compile(runtime, model_dir / "decoder.xml")
        self.device = self.decoder.device
        self._enc = self.encoder.model.create_infer_request()
        self._dec = self.decoder.model.create_infer_request()

        def buffer(req: ov.InferRequest, name: str, dtype: type) -> np.ndarray:
            arr = np.zeros(tuple(req.get_tensor(name).get_shape()), dtype)
            req.set_tensor(name, _shared(arr))
            return arr

        self._mel = buffer(self._enc, "mel", np.float32)
        self._cross = {n: buffer(self._enc, n, np.float32) for n in ("cross_k", "cross_v")}  # encoder outputs…
        for n, arr in self._cross.items():
            self._dec.set_tensor(n, _shared(arr))  # …are the decoder's inputs, same memory
        self._cache = {n: buffer(self._dec, n, np.float32) for n in ("self_k", "self_v")}
        self._token = buffer(self._dec, "token", np.int64)
        self._position = buffer(self._dec, "position", np.int64)
        self.max_positions = self._cache["self_k"].shape[3]
        self.n_mels = self._mel.shape[1]

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
        self.stats = {"utterances": 0, "tokens": 0, "loops": 0, "bad_audio": 0, "errors": 0}
        self._release_encoder = True
        release_heap()

    @staticmethod
    def _compile(runtime: Runtime, xml: Path) -> Compiled:
        try:
            return runtime.compile(xml)
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

    def _free_encoder_memory(self) -> None:
        """Drop the encoder's intermediate buffers (~20 MB for base) until the next utterance re-allocates them.

        The encoder runs once per utterance and its outputs live in our own arrays, so its scratch memory
        is idle while the decoder runs and between utterances. A device without `release_memory` keeps it.
        """
        if self._release_encoder:
            try:
                self.encoder.model.release_memory()
            except (RuntimeError, NotImplementedError):  # e.g. a plugin that does not implement it
                self._release_encoder = False

    def _step(self, token: int, position: int) -> np.ndarray:
        """Run one decoder step; store its k/v in the cache; return the logits [vocab] (the request's memory)."""
        self._token[0], self._position[0] = token, position
        self._dec.infer()
        for n, out in (("self_k", "k"), ("self_v", "v")):
            self._cache[n][:, :, :, position] = self._dec.get_tensor(out).data[:, :, :, 0]
        return self._dec.get_tensor("logits").data[0]

    def _transcribe(self, audio: np.ndarray, language: str | None) -> Transcript:
        log_mel(audio, self.n_mels, out=self._mel[0])
        self._enc.infer()
        self._free_encoder_memory()
        logits = self._step(self.sot, 0)
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
