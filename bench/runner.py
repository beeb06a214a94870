"""Runs every benchmark in one process, one after the other, and prints the ratios against the goals.

A benchmark that cannot run here (no Xvfb, no PulseAudio, bench/query.py missing) prints why and the
others go on; the exit code is 1 only when one of them failed outright.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import time
import traceback

from .common import BenchError, Opts, Table, ratio

BENCHES = ("pipeline", "alternative", "latency", "idle", "memory", "query", "scaling", "ocr", "asr", "eval", "web")
EXTRA = ("profile", "audio")  # run only when asked: py-spy under saturation; the audio row of pipeline alone
MODULES = {"query": "query_call"}  # bench/query.py is the memory benchmark itself, run in a child process


def goals(s: dict[str, float | None]) -> Table:
    """The headline ratios from every benchmark's summary numbers, each next to its goal."""
    t = Table("Summary: ratios and goals", ["measure", "value", "goal", "met"])

    def row(name: str, value: float | None, goal: str, ok: bool | None) -> None:
        t.add(name, value, goal, "-" if ok is None or value is None else ("yes" if ok else "NO"))

    def at_least(name: str, value: float | None, goal: float) -> None:
        row(name, value, f">= {goal:g}", None if value is None else value >= goal)

    def at_most(name: str, value: float | None, goal: float) -> None:
        row(name, value, f"<= {goal:g}", None if value is None else value <= goal)

    g = s.get
    fps, app = g("image.pipeline_fps"), g("image.benchmark_app_fps")
    screen, screen_app = g("image.screen_fps"), g("image.screen_benchmark_app_fps")
    at_least("image pipeline / benchmark_app (synthetic)", ratio(fps, app), 0.9)
    nogate = ratio(g("image.nogate_fps"), g("image.nogate_benchmark_app_fps"))
    at_least("image pipeline / benchmark_app (synthetic, no gate)", nogate, 0.9)
    bare = ratio(g("image.bare_fps"), g("image.bare_benchmark_app_fps"))
    at_least("image pipeline / benchmark_app (no gate, no thumbnails)", bare, 0.9)
    at_least("image pipeline / benchmark_app (Xvfb screen)", ratio(screen, screen_app), 0.9)
    at_least("audio pipeline / benchmark_app", ratio(g("audio.pipeline_wps"), g("audio.benchmark_app_wps")), 0.9)
    at_least("text encoder / benchmark_app", ratio(g("text.encoder_qps"), g("text.benchmark_app_qps")), 0.9)
    at_least("image pipeline / torch loop (torch's threads)", ratio(g("image.pipeline_fps"), g("image.torch_fps")), 4)
    at_least("image pipeline / torch loop (1 thread)", ratio(g("image.pipeline_fps"), g("image.torch1_fps")), 4)
    at_least("text encoder / sentence-transformers", ratio(g("text.encoder_qps"), g("text.st_qps")), 4)
    at_least("audio pipeline / torch silero + librosa", ratio(g("audio.pipeline_wps"), g("audio.torch_wps")), 4)
    for key in sorted(k for k in s if k.startswith("latency.") and k.endswith(".over_model_ms")):
        at_most(f"{key[8:-14]}: p50 - model p50 (ms)", g(key), 5)
    at_most("speech: end of utterance → transcript on the bus p50 (ms), whisper-base-int8",
            g("latency.speech.whisper-base-int8.p50_ms"), 1500)  # fmt: skip
    row("speech: end of utterance → transcript on the bus p95 (ms), whisper-base-int8",
        g("latency.speech.whisper-base-int8.p95_ms"), "report", None)  # fmt: skip
    row("speech: end of utterance → transcript on the bus p50 (ms), whisper-tiny-en",
        g("latency.speech.whisper-tiny-en.p50_ms"), "report", None)  # fmt: skip
    at_most("idle CPU % of a core (static screen, silent mic)", g("idle.static_cpu_pct"), 3)
    at_most("idle CPU % added by speech transcripts (silent mic), points", g("idle.speech_added_cpu_pct"), 0.5)
    row("CPU % of a core, screen changing at 1 fps", g("idle.changing_cpu_pct"), "report", None)
    at_most("peak RSS MB, three sources (daemon + capture child)", g("memory.peak_mb"), 600)
    row("peak RSS MB, three sources, [speech] off", g("memory.nospeech_peak_mb"), "report", None)
    at_most("peak RSS MB added by speech transcripts (whisper-base, in the daemon)", g("memory.speech_added_mb"), 250)
    at_least("scaling: worst pipeline / benchmark_app over nireq", g("scaling.min_ratio"), 0.9)
    at_most("OCR character error rate % at >= 14 px", g("ocr.ours.cer_ge14_pct"), 2)
    row("OCR character error rate % below 14 px", g("ocr.ours.cer_lt14_pct"), "report", None)
    for h in (720, 1080):
        at_most(f"OCR ms per changed {h}p frame, 1 thread", g(f"ocr.ours.ms_{h}p"), 1000)
        at_least(f"OCR speed ours / rapidocr-onnxruntime ({h}p)", g(f"ocr.speed_{h}p"), 1.0)
        at_least(f"OCR speed ours / rapidocr-onnxruntime, CPU time ({h}p)", g(f"ocr.cpu_speed_{h}p"), 1.0)
    at_most("OCR RSS added MB (load + reads, peak)", g("ocr.ours.rss_added_mb"), 150)
    at_most("ASR word error rate % whisper-base, espeak-ng set", g("asr.whisper-base.ours.wer_pct"), 25)
    row("ASR word error rate % whisper-base, faster-whisper (reference)", g("asr.whisper-base.faster-whisper.wer_pct"),
        "report", None)  # fmt: skip
    row("ASR word error rate % whisper-tiny-en, English", g("asr.whisper-tiny-en.ours.wer_pct"), "report", None)
    for m in ("whisper-base", "whisper-tiny-en"):
        diff = g(f"asr.{m}.wer_diff_pts")
        row(f"ASR WER ours - faster-whisper, points ({m})", diff, "|x| <= 1", None if diff is None else abs(diff) <= 1)
    at_most("ASR real-time factor whisper-base, 1 thread (30 s windows)", g("asr.whisper-base.ours.rtf_window"), 0.1)
    row("ASR real-time factor whisper-base, 1 thread, per utterance", g("asr.whisper-base.ours.rtf"), "report", None)
    row("ASR real-time factor whisper-base, faster-whisper (reference, 30 s windows)",
        g("asr.whisper-base.faster-whisper.rtf_window"), "report", None)  # fmt: skip
    at_most("ASR RSS added MB whisper-base (load + 1st transcription)", g("asr.whisper-base.ours.rss_added_mb"), 250)
    at_most("ASR non-speech clips with text after the gates (base)", g("asr.whisper-base.ours.clips_after_gates"), 0)
    at_least("eval: Recall@5 overall (configs/eval/scenario.yaml)", g("eval.recall5"), 0.9)
    at_least("eval: Recall@5 of the worst kind of question", g("eval.worst_kind_recall5"), 0.8)
    row('eval: no-answer questions answered "no memories match"', g("eval.no_answer_rate"), "report", None)
    at_most("web: page load p95 (ms), a day of memories (100k; quick 2k)", g("web.page_load_p95_ms"), 200)
    row("web: search p95 (ms), same memories", g("web.search_p95_ms"), "report", None)
    row("web: image pipeline with 10 stream clients / without", g("web.stream_ratio"), "report", None)
    return t


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="short windows (about 3 minutes in all): checks, not numbers")
    p.add_argument("--only", help=f"comma list of {', '.join(BENCHES + EXTRA)}")
    p.add_argument("--scale", type=float, default=1.0, help="multiply every measuring window")
    p.add_argument("--device", default="CPU", help="OpenVINO device for the daemon and benchmark_app (default CPU)")
    p.add_argument("--json", help="also write every table and the summary numbers to this file")
    args = p.parse_args(argv)
    names = args.only.split(",") if args.only else list(BENCHES)
    unknown = [n for n in names if n not in BENCHES + EXTRA]
    if unknown:
        p.error(f"unknown benchmark(s): {', '.join(unknown)}")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing here may download
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    opts = Opts(quick=args.quick, scale=args.scale, device=args.device)
    print(f"sensorium bench: {', '.join(names)} ({'quick' if opts.quick else 'full'}, device {opts.device}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f})", flush=True)  # fmt: skip
    summary: dict[str, float | None] = {}
    tables: list[Table] = []
    failed = 0
    for name in names:
        t0 = time.monotonic()
        try:
            out = importlib.import_module(f"bench.{MODULES.get(name, name)}").run(opts)
        except BenchError as e:
            print(f"\n## {name}: not run: {e}", flush=True)
            continue
        except Exception:
            failed += 1
            print(f"\n## {name}: FAILED\n{traceback.format_exc()}", flush=True)
            continue
        for table in out:
            print("\n" + table.render(), flush=True)
            summary.update(table.summary)
            tables.append(table)
        print(f"  ({name}: {time.monotonic() - t0:.0f}s)", flush=True)
    final = goals(summary)
    print("\n" + final.render(), flush=True)
    if args.json:
        rows = [{"title": t.title, "columns": t.columns, "rows": t.rows, "notes": t.notes} for t in tables]
        body = {"summary": summary, "tables": rows}
        with open(args.json, "w") as f:
            json.dump(body, f, indent=2, default=str)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
