"""Measurements behind the model layer's choices (printed, never asserted).

  python -m encoders.build.measure preprocess NAME   cv2 resize in Python vs resize inside the graph
  python -m encoders.build.measure compile NAME      first (cold) vs second (cached) compile time
  python -m encoders.build.measure int8 NAME         FP vs NAME-int8: top-1 agreement, cosine, speed
  python -m encoders.build.measure throughput NAME   the async encoder's sustained fps vs benchmark_app

NAME is a built model in --cache (default $SENSORIUM_CACHE). Timings use the daemon's runtime
settings (CPU, LATENCY, `--threads`, default 1 like configs/default.toml).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from encoders.build.int8 import HELD_OUT, held_out, image_xml
from encoders.image import ImageEncoder
from encoders.modelstore import ModelStore
from encoders.records import Frame
from encoders.runtime import Runtime, RuntimeConfig

LABELS = ["a person", "a face", "a cat", "a dog", "a car", "a building", "food", "a cup of coffee", "a rocket"]
FRAMES = {"screen 1920×1080": (1080, 1920), "camera 640×480": (480, 640)}


def runtime(threads: int, cache: Path | None = None) -> Runtime:
    cache = cache or Path(tempfile.mkdtemp(prefix="ov-cache-"))
    return Runtime(RuntimeConfig("CPU", "LATENCY", threads, False, cache))


def median_ms(fn: Any, n: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def with_graph_resize(xml: Path, size: int) -> Any:
    """A static u8 NHWC S×S image IR (effnet) given a dynamic any-size input and an in-graph resize."""
    import openvino as ov
    from openvino.preprocess import PrePostProcessor, ResizeAlgorithm

    model = ov.Core().read_model(xml)
    ppp = PrePostProcessor(model)
    inp = ppp.input()
    inp.tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_spatial_dynamic_shape()
    inp.model().set_layout(ov.Layout("NHWC"))
    inp.preprocess().convert_element_type(ov.Type.f32).resize(ResizeAlgorithm.RESIZE_BILINEAR_PILLOW)
    inp.preprocess().convert_element_type(ov.Type.u8)
    return ppp.build()


def preprocess(store: ModelStore, name: str, threads: int, n: int) -> None:
    folder = store.require(name)
    rt = runtime(threads)
    meta = json.loads((folder / "meta.json").read_text())
    xml, inp, size = image_xml(meta)
    if meta.get("kind") == "clip":
        graph = rt.core.compile_model(folder / xml, "CPU", rt._properties("CPU"))
    else:
        graph = rt.core.compile_model(with_graph_resize(folder / xml, size), "CPU", rt._properties("CPU"))
    enc = ImageEncoder(rt, folder, lambda r: None, resize="cv2")
    static = enc.compiled.model.create_infer_request()
    dynamic = graph.create_infer_request()
    rng = np.random.default_rng(0)
    print(f"{name}: median of {n} frames, {threads} CPU thread(s)")
    for label, (h, w) in FRAMES.items():
        frame = cv2.resize(rng.integers(0, 255, (h // 8, w // 8, 3), np.uint8), (w, h))
        f = Frame("x", "image", frame, 0, 0)
        pre = median_ms(lambda f=f: enc.preprocess(f), n)
        e2e_cv2 = median_ms(lambda f=f: static.infer({inp: enc.preprocess(f)}), n)
        e2e_graph = median_ms(lambda frame=frame: dynamic.infer({inp: frame[None]}), n)
        print(
            f"  {label}: cv2 resize {pre:.2f} ms/frame, encode with cv2 resize {e2e_cv2:.2f} ms, "
            f"encode with in-graph resize {e2e_graph:.2f} ms → {'graph' if e2e_graph < e2e_cv2 else 'cv2'} faster"
        )


def compile_times(store: ModelStore, name: str, threads: int) -> None:
    folder = store.require(name)
    with tempfile.TemporaryDirectory() as tmp:
        for xml in sorted(folder.glob("*.xml")):
            times = []
            for _ in range(2):
                rt = runtime(threads, Path(tmp))  # a new Core each time, as a new daemon start would
                t0 = time.perf_counter()
                rt.compile(xml)
                times.append(time.perf_counter() - t0)
            files = len(list(Path(tmp).iterdir()))
            print(f"{name}/{xml.name}: cold {times[0]:.3f} s, cached {times[1]:.3f} s ({files} cache files)")


def int8(store: ModelStore, name: str, threads: int, n: int) -> None:
    fp_dir, q_dir = store.require(name), store.require(name + "-int8")
    rt = runtime(threads)
    labeler = None
    if json.loads((fp_dir / "meta.json").read_text()).get("kind") == "clip":
        from encoders.clip import ClipText, ZeroShot

        labeler = ZeroShot(ClipText(rt, fp_dir), LABELS)
    fp = ImageEncoder(rt, fp_dir, lambda r: None, labeler=labeler, resize="cv2")
    q = ImageEncoder(rt, q_dir, lambda r: None, labeler=labeler, resize="cv2")
    imgs = held_out()
    agree, cosines = [], {}
    for img in imgs:
        a, b = fp.encode_now(img), q.encode_now(img)
        agree.append(a[0].labels[:1] == b[0].labels[:1])
        for ea, eb in zip(a, b, strict=True):
            cosines.setdefault(ea.space, []).append(float(ea.vector @ eb.vector))
    print(f"{name} vs {name}-int8 on {len(imgs)} held-out images:")
    photos = len(HELD_OUT) * 3 + 3  # held_out(): each photo in 3 views, the stereo view in 3, then the faces
    print(
        f"  top-1 agreement {100 * np.mean(agree):.1f} % (photos {100 * np.mean(agree[:photos]):.1f} %, "
        f"faces {100 * np.mean(agree[photos:]):.1f} %)"
    )
    for space, cs in cosines.items():
        print(f"  cosine in {space}: mean {np.mean(cs):.4f}, min {np.min(cs):.4f}")
    frame = Frame("x", "image", imgs[0], 0, 0)
    for label, enc in (("FP32", fp), ("INT8", q)):
        req = enc.compiled.model.create_infer_request()
        tensor = enc.preprocess(frame)
        ms = median_ms(lambda req=req, tensor=tensor, enc=enc: req.infer({enc.input: tensor}), n)
        print(f"  {label}: {ms:.2f} ms/frame ({threads} thread(s))")


def throughput(store: ModelStore, name: str, threads: int, seconds: float) -> None:
    """Sustained fps of the daemon's async ImageEncoder (cv2 resize of a 1920×1080 frame included) vs
    benchmark_app on the same IR with the same settings (LATENCY hint, `threads` CPU threads)."""
    import subprocess
    import sys
    import threading

    folder = store.require(name)
    xml, inp, size = image_xml(json.loads((folder / "meta.json").read_text()))
    done = threading.Semaphore(0)
    enc = ImageEncoder(runtime(threads), folder, lambda r: done.release())
    frame = Frame("x", "image", np.zeros((1080, 1920, 3), np.uint8) + 100, 0, 0)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        enc.submit(frame)
        n += 1
    enc.drain()
    fps = n / (time.perf_counter() - t0)
    app = Path(sys.executable).parent / "benchmark_app"
    cmd = [
        str(app),
        "-m",
        str(folder / xml),
        "-d",
        "CPU",
        "-t",
        str(int(seconds)),
        "-shape",
        f"{inp}[1,{size},{size},3]",
    ]
    cmd += ["-hint", "none", "-nstreams", "1", "-nthreads", str(threads)] if threads else ["-hint", "latency"]
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    bench = next((line.split()[-2] for line in out.splitlines() if "Throughput:" in line), "n/a")
    print(f"{name}: encoder {fps:.1f} fps (1920×1080 frames, {enc.requests} requests) vs benchmark_app {bench} fps")


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m encoders.build.measure")
    p.add_argument("what", choices=["preprocess", "compile", "int8", "throughput"])
    p.add_argument("name")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("-n", type=int, default=50)
    p.add_argument(
        "--cache",
        type=Path,
        default=os.environ.get("SENSORIUM_CACHE"),
        required="SENSORIUM_CACHE" not in os.environ,
        help="the model cache (default: $SENSORIUM_CACHE)",
    )
    a = p.parse_args()
    store = ModelStore(a.cache)
    if a.what == "preprocess":
        preprocess(store, a.name, a.threads, a.n)
    elif a.what == "throughput":
        throughput(store, a.name, a.threads, 10.0)
    elif a.what == "compile":
        compile_times(store, a.name, a.threads)
    else:
        int8(store, a.name, a.threads, a.n)


if __name__ == "__main__":
    main()
