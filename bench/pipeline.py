"""1. Pipeline vs the limit: sustained embeddings/s through the whole daemon ÷ benchmark_app on the same IR.

Image: a synthetic 1280×720 source (and the real screen on Xvfb, grabbed by mss) at a rate well above
the model's, so the mailbox always holds a fresh frame; the gate is on (synthetic frames differ) or
at 0 (the Xvfb screen is static). Audio: synthetic non-silent windows into the audio mailbox queue.
benchmark_app runs afterwards, alone, on the same IR, device, properties (hint, threads, streams read
back from the daemon's compiled model) and number of infer requests. Text: the daemon's TextEncoder
(tokeniser + one synchronous request, as a query runs) ÷ benchmark_app in sync mode at the same length.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import (
    Opts,
    Table,
    bench_home,
    benchmark_app,
    compiled_props,
    guarded,
    model_dir,
    photos,
    ratio,
    write_config,
    xvfb,
)
from .harness import (
    SyntheticSource,
    cpu_per_item,
    device_config,
    measure,
    noise_windows,
    run_delay,
    running_daemon,
    thread_cpu,
)

OFFER = 1.5  # synthetic sources offer this × benchmark_app's rate: saturated, without burning the CPU it needs
QUERY = "someone showing a rocket launch on a laptop screen"


def image_sources(fps: float, n: int = 1, gated: bool = True, name: str = "synth"):
    """Factory of `n` synthetic 1280×720 image sources at `fps` each, gated like the screen (default config).
    Named "screen0" (the config's screen), the first one's frames are also read for text, like the screen's."""
    from agent.pipeline.gate import ChangeGate

    frames = photos(6)

    def make(boxes: dict) -> list:
        gate = (lambda: ChangeGate(2.0, 60.0)) if gated else (lambda: None)
        names = [name if name != "synth" and i == 0 else f"synth{i}" for i in range(n)]
        return [SyntheticSource(names[i], "image", fps, frames, boxes["image"].put, gate()) for i in range(n)]

    return make


AUDIO_BURST = 4  # windows posted at a time (the mic's mailbox holds 8)


def audio_sources(samples: int, rate: float, n: int = 1, burst: int = AUDIO_BURST):
    """Factory of `n` synthetic audio sources offering `rate` windows/s each, `burst` at a time: at ~1400
    windows/s one at a time the source alone woke 1400 times a second and took ~9% of a core (and the GIL)
    from the pipeline it measures; a real mic posts a window every 0.48 s."""
    windows = noise_windows(6, samples)

    def make(boxes: dict) -> list:
        put = boxes["audio"].put
        return [SyntheticSource(f"synmic{i}", "audio", rate, windows, put, burst=burst) for i in range(n)]

    return make


@dataclass(frozen=True)
class Limit:
    """benchmark_app's rate for a model compiled exactly as the daemon's encoder compiles it."""

    per_s: float
    device: str
    props: dict[str, str]
    nireq: int
    shapes: str  # benchmark_app's -shape / -data_shape arguments, if any
    graph_resize: bool


def shape_args(xml: Path, enc: Any, frame_hw: tuple[int, int]) -> tuple[str | None, str | None]:
    """(-shape, -data_shape) so benchmark_app runs the IR with the shapes the encoder runs it with.

    A dynamic IR input the encoder compiled static (reshaped) gets -shape; one it keeps dynamic (the
    resize is inside the graph) gets -data_shape of the frames the benchmark feeds it.
    """
    import openvino as ov

    ir = {p.get_any_name(): p.get_partial_shape() for p in ov.Core().read_model(xml).inputs}
    fixed, data = [], []
    for port in enc.compiled.model.inputs:
        name, shape = port.get_any_name(), port.get_partial_shape()
        if name not in ir or not ir[name].is_dynamic:
            continue
        if shape.is_static:
            fixed.append(f"{name}[{','.join(str(d.get_length()) for d in shape)}]")
        else:
            data.append(f"{name}[1,{frame_hw[0]},{frame_hw[1]},3]")
    return (",".join(fixed) or None), (",".join(data) or None)


def limit(
    tmp: Path,
    cfg_text: str,
    modality: str,
    opts: Opts,
    nireq: int | None = None,
    frame_hw: tuple[int, int] = (720, 1280),
) -> Limit:
    """Build the daemon's encoder for `modality` from `cfg_text`, then benchmark_app its IR with the same
    device, properties (read back from the compiled model), shapes and number of requests (`nireq` None:
    the encoder's own). The audio encoder runs one request synchronously, so it is measured with -api sync.
    `check` compares with the daemon's encoder after each run.
    """
    from agent import config
    from encoders.audio import AudioEncoder
    from encoders.image import ImageEncoder
    from encoders.modelstore import ModelStore
    from encoders.runtime import Runtime, RuntimeConfig

    cfg = config.load(write_config(tmp, cfg_text))
    dev = cfg.device
    rt = Runtime(RuntimeConfig(dev.name, dev.hint, dev.cpu_threads, dev.strict, cfg.daemon.cache_dir / "ov-cache"))
    cls, name = (ImageEncoder, cfg.models.image) if modality == "image" else (AudioEncoder, cfg.models.audio)
    folder = ModelStore(cfg.daemon.cache_dir).require(name)
    enc = cls(rt, folder, lambda _: None)
    props = compiled_props(enc.compiled.model)
    n = nireq if nireq is not None else enc.requests
    shape, data_shape = shape_args(folder / "model.xml", enc, frame_hw)
    api = "async" if modality == "image" else "sync"
    secs = opts.secs(20, 4)
    per_s = benchmark_app(folder / "model.xml", enc.compiled.device, props, n, secs, api, data_shape, shape)
    shapes = " ".join(f"{k} {v}" for k, v in (("-shape", shape), ("-data_shape", data_shape)) if v)
    return Limit(per_s, enc.compiled.device, props, n, shapes, bool(getattr(enc, "graph_resize", False)))


def check(lim: Limit, enc: Any) -> str | None:
    """A note when the daemon's encoder did not run with what benchmark_app was given."""
    props, n = compiled_props(enc.compiled.model), getattr(enc, "requests", lim.nireq)
    graph = bool(getattr(enc, "graph_resize", False))
    if props != lim.props or n != lim.nireq or enc.compiled.device != lim.device or graph != lim.graph_resize:
        return f"MISMATCH: daemon ran {enc.compiled.device} {props} nireq {n} graph_resize {graph}; benchmark_app {lim}"
    return None


def image_row(table: Table, label: str, tmp: Path, opts: Opts, cfg: str, source: str) -> tuple[float, float]:
    """One row; `source` is "gated" / "ungated" (synthetic, with or without the change gate), "text" (gated
    synthetic, named as the screen so its frames are read for text too) or "screen"."""
    hw = (768, 1024) if source == "screen" else (720, 1280)
    lim = limit(tmp, cfg, "image", opts, frame_hw=hw)
    offered = OFFER * lim.per_s
    if source == "screen":  # the screen's rate comes from the config
        cfg += f"[screen]\nfps = {offered:.0f}.0\ngate_threshold = 0.0\n"
        cfg += "[camera]\nenabled = false\n[microphone]\nenabled = false\n"
    warm, secs = opts.secs(5, 2), opts.secs(30, 5)
    name = "screen0" if source == "text" else "synth"
    sources = None if source == "screen" else image_sources(offered, gated=source != "ungated", name=name)
    with running_daemon(tmp, cfg, sources) as d:
        r = measure(d, "image", warm, secs)
        mismatch = check(lim, d.encoders["image"])
    table.add(
        label, offered, r.frames_per_s, lim.per_s, ratio(r.frames_per_s, lim.per_s), r.published_per_s,
        r.stored_per_s, r.dropped, r.mem_dropped, r.cpu_pct, r.infer_p50_ms,
    )  # fmt: skip
    shapes = f" {lim.shapes}" if lim.shapes else ""
    table.notes.append(f"{label}: device {lim.device}, {lim.props}, nireq {lim.nireq}{shapes}, window {secs:g}s")
    if mismatch:
        table.notes.append(mismatch)
    return r.frames_per_s, lim.per_s


def run(opts: Opts) -> list[Table]:
    base = device_config(opts.device)
    with bench_home() as tmp:
        image = guarded("1. Image pipeline vs benchmark_app", image_table, tmp, opts, base)
        audio = guarded("1. Audio pipeline vs benchmark_app", audio_table, tmp, opts, base)
        text = guarded("1. Text encoder vs benchmark_app", text_table, tmp, opts)
    return [image, audio, text]


def image_table(tmp: Path, opts: Opts, base: str) -> Table:
    cols = ["pipeline", "offered/s", "frames/s", "bench_app/s", "ratio", "pub msg/s", "stored/s", "mbox drop"]
    cols += ["mem drop"]
    title = "1. Image pipeline vs benchmark_app (same IR, device, hint, threads, nireq)"
    image = Table(title, [*cols, "cpu %", "infer p50 ms"])
    no_text = base + "[ocr]\nscreen = false\n"
    eps, per_s = image_row(image, "synthetic 1280x720", tmp, opts, base, "gated")
    image.summary.update({"image.pipeline_fps": eps, "image.benchmark_app_fps": per_s})
    eps, per_s = image_row(image, "synthetic, read for text", tmp, opts, base, "text")
    image.summary.update({"image.text_fps": eps, "image.text_benchmark_app_fps": per_s})
    eps, per_s = image_row(image, "synthetic, no gate", tmp, opts, base, "ungated")
    image.summary.update({"image.nogate_fps": eps, "image.nogate_benchmark_app_fps": per_s})
    in_process = base + "[store]\nprocess = false\n"
    eps, per_s = image_row(image, "synthetic, Chroma in the daemon", tmp, opts, in_process, "gated")
    image.summary.update({"image.inproc_fps": eps, "image.inproc_benchmark_app_fps": per_s})
    no_thumbs = base + "[store]\nthumbnails = false\n"
    eps, per_s = image_row(image, "synthetic, no gate, no thumbs", tmp, opts, no_thumbs, "ungated")
    image.summary.update({"image.bare_fps": eps, "image.bare_benchmark_app_fps": per_s})
    try:
        with xvfb(tmp) as display:
            display.show(photos(1, 1024, 768)[0])
            eps, per_s = image_row(image, "screen (Xvfb 1024x768)", tmp, opts, base, "screen")
            image.summary["image.screen_fps"] = eps
            image.summary["image.screen_benchmark_app_fps"] = per_s
            eps, per_s = image_row(image, "screen, screen text off", tmp, opts, no_text, "screen")
            image.summary["image.screen_notext_fps"] = eps
    except Exception as e:  # no Xvfb here: say so, keep the synthetic row
        image.notes.append(f"screen row skipped: {type(e).__name__}: {e}")
    image.notes.append("frames/s = frames encoded and handed to the bus + memory; mbox drop > 0 means saturated")
    image.notes.append("no gate / no thumbs: the change gate's and the JPEG thumbnails' costs taken out, to attribute")
    image.notes.append("Chroma in the daemon: store.process = false, the store's writes holding the daemon's GIL")
    image.notes.append("screen: gate threshold 0 keeps every grab (its signature is still computed)")
    image.notes.append(
        "read for text: every changing photo is also read by the screen-text worker (at most every 2 s, one"
        " thread), the worst case for OCR next to a saturated image pipeline; the screen rows show a static photo"
    )
    return image


def audio_table(tmp: Path, opts: Opts, base: str) -> Table:
    import json

    t = Table(
        "1. Audio pipeline vs benchmark_app (silero-vad window IR: one inference a window, + log-mel)",
        ["pipeline", "offered/s", "windows/s", "bench_app w/s", "ratio", "mbox drop", "cpu %"],
    )
    window = int(json.loads((model_dir("silero-vad") / "meta.json").read_text())["window_samples"])
    lim = limit(tmp, base, "audio", opts)  # one request, one inference a window: -api sync
    warm, secs = opts.secs(5, 2), opts.secs(30, 5)
    with running_daemon(tmp, base, audio_sources(window, OFFER * lim.per_s)) as d:
        time.sleep(warm)
        cpu0, wait0, n0 = thread_cpu(d), run_delay("dispatch-audio"), d.encoders["audio"].stats["completed"]
        r = measure(d, "audio", 0, secs)
        n = d.encoders["audio"].stats["completed"] - n0
        per_window = cpu_per_item(cpu0, thread_cpu(d), n)
        waited = (run_delay("dispatch-audio") - wait0) / max(n, 1) * 1000
        mismatch = check(lim, d.encoders["audio"])
    t.add(
        "synthetic windows", OFFER * lim.per_s, r.frames_per_s, lim.per_s, ratio(r.frames_per_s, lim.per_s),
        r.dropped, r.cpu_pct,
    )  # fmt: skip
    t.notes.append(f"device {lim.device}, {lim.props}, benchmark_app -api sync (the encoder runs one request)")
    t.notes.append(f"CPU per window by thread (shares hold on a loaded machine, where rates do not): {per_window}")
    t.notes.append(f"the dispatcher waited {waited:.2f} ms a window for a core (runnable, not running)")
    if mismatch:
        t.notes.append(mismatch)
    t.summary.update({"audio.pipeline_wps": r.frames_per_s, "audio.benchmark_app_wps": lim.per_s})
    return t


def text_table(tmp: Path, opts: Opts) -> Table:
    from agent import config
    from encoders.runtime import Runtime, RuntimeConfig
    from encoders.text import TextEncoder

    t = Table(
        "1. Text encoder vs benchmark_app (MiniLM IR, one synchronous request, as a query runs)",
        ["encoder", "tokens", "queries/s", "bench_app/s", "ratio", "p50 ms"],
    )
    cfg = config.load(write_config(tmp, device_config(opts.device)))
    dev = cfg.device
    rt = Runtime(RuntimeConfig(dev.name, dev.hint, dev.cpu_threads, dev.strict, cfg.daemon.cache_dir / "ov-cache"))
    enc = TextEncoder(rt, model_dir("minilm-l6"))
    n_tok = len(enc.tokenizer.encode(QUERY).ids)
    secs = opts.secs(20, 3)
    for _ in range(5):
        enc.encode(QUERY)
    times = []
    t0 = time.monotonic()
    while time.monotonic() - t0 < secs:
        s = time.perf_counter()
        enc.encode(QUERY)
        times.append((time.perf_counter() - s) * 1000)
    qps = len(times) / (time.monotonic() - t0)
    props = compiled_props(enc.compiled.model)
    shape = f"input_ids[1,{n_tok}],attention_mask[1,{n_tok}]"
    per_s = benchmark_app(model_dir("minilm-l6") / "model.xml", enc.compiled.device, props, 1, secs, "sync", shape)
    times.sort()
    t.add("TextEncoder.encode", n_tok, qps, per_s, ratio(qps, per_s), times[len(times) // 2])
    t.notes.append(f"device {enc.compiled.device}, {props}; query {QUERY!r}")
    t.summary.update({"text.encoder_qps": qps, "text.benchmark_app_qps": per_s})
    return t
