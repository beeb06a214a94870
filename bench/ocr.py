"""9. Screen text (OCR): our engine (PP-OCRv6 on OpenVINO) against the same ONNX files under rapidocr's own
onnxruntime engine, on the rendered text pages of demo/textpages.py.

(a) character error rate per page and per font-size group (bench/cer.py), (b) ms per changed frame at
1280×720 and 1920×1080 with one CPU thread, and the speed ratio ours ÷ rapidocr (issue goal ≥ 1.0),
(c) RSS added by loading and running the engine (goal ≤ 150 MB).

Each engine runs in a child process of its own (`--child ENGINE`), so its memory is its own, one engine's
threads or allocator never slow the other, and the RSS baseline is clean: pages rendered and libraries
imported first, then the baseline, then load + read. The child refuses and counts every non-loopback
connection (an audit hook): rapidocr downloads models from its hub when a path is missing, and nothing
here may download. Both children pin OpenCV and OpenMP to one thread as well.

    python -m bench.ocr [--quick] [--engines ours,rapidocr] [--pages slide,invoice]
    python -m bench --only ocr
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from encoders.records import TextLine

from .cer import PageScore, Score, combine, score
from .common import ROOT, BenchError, Opts, Table, model_cache, own_mb, ratio, reset_peak

ENGINES = ("ours", "rapidocr")
SCREENS = ((1280, 720), (1920, 1080))
OUR_MODEL = "ppocr-v6"
Screens = Sequence[tuple[int, int]]


class Reader(Protocol):
    """What the harness needs of an OCR engine: the lines of text in an RGB frame."""

    def read(self, rgb: np.ndarray) -> list[TextLine]: ...


# --- the engines --------------------------------------------------------------------------------------------


def rapidocr_models() -> tuple[Path, Path]:
    """The detector and recogniser ONNX files inside the installed rapidocr wheel (the files our build uses)."""
    try:
        import rapidocr
    except ImportError as e:
        raise BenchError("rapidocr is not installed: pip install --no-deps rapidocr==3.10.0 (see the Makefile)") from e
    d = Path(rapidocr.__file__).parent / "models"
    det, rec = d / "PP-OCRv6_det_small.onnx", d / "PP-OCRv6_rec_small.onnx"
    for f in (det, rec):
        if not f.is_file():
            raise BenchError(f"{f} missing from the rapidocr wheel")
    return det, rec


class RapidReader:
    """rapidocr's own pipeline and onnxruntime engine, given explicit model paths (so it never downloads):
    detection + recognition, no angle classifier (screen text is upright; ours has none either)."""

    def __init__(self, threads: int = 1) -> None:
        from rapidocr import RapidOCR

        det, rec = rapidocr_models()
        ort = "EngineConfig.onnxruntime"
        self.engine = RapidOCR(
            params={
                "Global.use_cls": False,
                "Global.log_level": "warning",
                "Det.model_path": str(det),
                "Rec.model_path": str(rec),  # its character list is in the ONNX metadata: no keys file
                f"{ort}.intra_op_num_threads": threads,
                f"{ort}.inter_op_num_threads": threads,
            }
        )
        # it opens its sessions on first use; open them now so loading is timed as loading (rapidocr is pinned)
        self.engine._load_det_model()
        self.engine._load_rec_model()

    def read(self, rgb: np.ndarray) -> list[TextLine]:
        out = self.engine(np.ascontiguousarray(rgb[..., ::-1]))  # it takes arrays as BGR
        if out.boxes is None or out.txts is None:
            return []
        lines = []
        for quad, text, sc in zip(out.boxes, out.txts, out.scores, strict=True):
            q = np.asarray(quad)
            x0, y0 = np.floor(q.min(axis=0)).astype(int)
            x1, y1 = np.ceil(q.max(axis=0)).astype(int)
            lines.append(TextLine(str(text), (int(x0), int(y0), int(x1 - x0), int(y1 - y0)), float(sc)))
        return lines


def our_reader(threads: int = 1, device: str = "CPU", ov_cache: Path | None = None) -> Reader:
    """encoders.ocr.OcrEngine on our Runtime, `threads` CPU threads, the built `ppocr-v6` model."""
    try:
        from encoders.ocr import OcrEngine
    except ImportError as e:
        raise BenchError(f"our OCR engine is not available here: {e}") from e
    from encoders.modelstore import ModelStore
    from encoders.runtime import Runtime, RuntimeConfig

    root = model_cache((OUR_MODEL,))
    cache = ov_cache or Path(tempfile.mkdtemp(prefix="ocr-ov-"))
    runtime = Runtime(RuntimeConfig(device, "LATENCY", threads, False, cache))
    return Fresh(OcrEngine(runtime, ModelStore(root).require(OUR_MODEL)))


class Fresh:
    """Our engine with its cache of recognised line images emptied before each `read`, so every read costs
    what a changed frame costs; `again` reads with the cache kept (an unchanged or scrolled screen)."""

    def __init__(self, engine: Any) -> None:
        if not hasattr(engine, "_seen"):  # its private cache: fail loudly rather than time cached reads
            raise BenchError("OcrEngine has no `_seen` line cache any more: update bench.ocr.Fresh")
        self.engine = engine

    def read(self, rgb: np.ndarray) -> list[TextLine]:
        self.engine._seen.clear()
        return self.engine.read(rgb)

    def again(self, rgb: np.ndarray) -> list[TextLine]:
        return self.engine.read(rgb)


# --- the child: one engine, measured ------------------------------------------------------------------------

LOOPBACK = ("127.", "::1", "localhost", "0.0.0.0")


def guard_network(attempts: list[str]) -> None:
    """Refuse (PermissionError) and record every connection or name lookup that would leave this machine."""

    def local(host: object) -> bool:
        if isinstance(host, bytes):
            host = host.decode(errors="replace")
        return host is None or (isinstance(host, str) and (host == "" or host.startswith(LOOPBACK)))

    def hook(event: str, args: tuple) -> None:
        if event == "socket.connect":
            sock, addr = args
            if getattr(sock, "family", None) == socket.AF_UNIX or not isinstance(addr, tuple) or local(addr[0]):
                return
            attempts.append(f"connect {addr[0]}:{addr[1]}")
            raise PermissionError(f"bench.ocr: outbound connection to {addr[0]}:{addr[1]} refused")
        if event == "socket.getaddrinfo" and not local(args[0]):
            attempts.append(f"lookup {args[0]}")
            raise PermissionError(f"bench.ocr: name lookup of {args[0]} refused")

    sys.addaudithook(hook)


def child(engine: str, screens: Sequence[tuple[int, int]], names: Sequence[str], reps: int, device: str) -> dict:
    """Load `engine`, read every page at every screen size (one untimed warm-up read per size, then `reps`
    timed reads per page) and return timings, memory and what it read."""
    import cv2

    from demo.textpages import page

    attempts: list[str] = []
    guard_network(attempts)
    cv2.setNumThreads(1)
    frames = {(w, h, n): page(n, (w, h)).rgb for (w, h) in screens for n in names}
    if engine == "rapidocr":  # import the libraries first: the baseline is the engine's own cost
        import onnxruntime  # noqa: F401
        import rapidocr  # noqa: F401
    else:
        import openvino  # noqa: F401

        try:
            from encoders import ocr  # noqa: F401
        except ImportError as e:
            raise BenchError(f"our OCR engine is not available here: {e}") from e
    base = own_mb()
    hwm_reset = reset_peak()  # so the peak is this engine's
    t0 = time.perf_counter()
    reader: Reader = RapidReader(1) if engine == "rapidocr" else our_reader(1, device)
    load_s = time.perf_counter() - t0
    loaded = own_mb()
    out: dict[str, Any] = {"engine": engine, "load_s": load_s, "pages": {}, "first_ms": {}}
    for w, h in screens:
        t = time.perf_counter()
        reader.read(frames[(w, h, names[0])])
        out["first_ms"][f"{w}x{h}"] = (time.perf_counter() - t) * 1000
        for n in names:
            times, cpu, lines = [], [], []
            for _ in range(reps):
                t, c = time.perf_counter(), time.process_time()
                lines = reader.read(frames[(w, h, n)])
                times.append((time.perf_counter() - t) * 1000)
                cpu.append((time.process_time() - c) * 1000)
            again = getattr(reader, "again", reader.read)
            t = time.perf_counter()
            again(frames[(w, h, n)])
            out["pages"][f"{n}@{w}x{h}"] = {
                "ms": times,
                "cpu_ms": cpu,
                "again_ms": (time.perf_counter() - t) * 1000,
                "lines": [[ln.text, list(ln.box), ln.score] for ln in lines],
            }
    out.update(
        rss_base_mb=base,
        rss_loaded_mb=loaded,
        rss_after_mb=own_mb(),
        hwm_mb=own_mb("VmHWM") if hwm_reset else None,
        outbound=attempts,
    )
    return out


def run_child(engine: str, screens: Sequence[tuple[int, int]], names: Sequence[str], reps: int, device: str) -> dict:
    sizes = ",".join(f"{w}x{h}" for w, h in screens)
    cmd = [sys.executable, "-m", "bench.ocr", "--child", engine, "--screens", sizes, "--pages", ",".join(names)]
    cmd += ["--reps", str(reps), "--device", device]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=1800)
    last = p.stdout.strip().splitlines()[-1:] if p.stdout.strip() else []
    if p.returncode != 0 or not last:
        tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
        raise BenchError(f"{engine} child exited {p.returncode}: {' | '.join(tail)}")
    return json.loads(last[0])


# --- the tables ---------------------------------------------------------------------------------------------


def pct(v: float | None) -> float | None:
    return None if v is None else round(100 * v, 2)


def scores(result: dict, screens: Sequence[tuple[int, int]], names: Sequence[str]) -> dict[str, PageScore]:
    """CER of each page at each screen size, from what the child read (the truth is rendered here again)."""
    from demo.textpages import page

    out = {}
    for w, h in screens:
        for n in names:
            key = f"{n}@{w}x{h}"
            found = [TextLine(t, tuple(b), s) for t, b, s in result["pages"][key]["lines"]]
            out[key] = score(page(n, (w, h)).lines, found)
    return out


def cer_table(sc: dict[str, dict[str, PageScore]], engines: list[str], screens: Screens, names: Sequence[str]) -> Table:
    cols = ["page", "screen", "chars", *engines]
    t = Table("9. OCR: character error rate on the text pages, % (lower is better)", cols)

    def row(label: str, screen: str, by_engine: dict[str, Score]) -> None:
        chars = next(iter(by_engine.values())).chars if by_engine else None
        t.add(label, screen, chars, *(pct(by_engine[e].cer) if e in by_engine else None for e in engines))

    for w, h in screens:
        for n in names:
            row(n, f"{w}x{h}", {e: s[f"{n}@{w}x{h}"].total for e, s in sc.items()})
    for w, h in screens:
        merged = {e: combine([s[f"{n}@{w}x{h}"] for n in names]) for e, s in sc.items()}
        for g in ("<14px", ">=14px"):
            row(f"all, {g}", f"{w}x{h}", {e: m.groups[g] for e, m in merged.items()})
    for e, s in sc.items():
        merged = combine(list(s.values()))
        t.summary[f"ocr.{e}.cer_lt14_pct"] = pct(merged.groups["<14px"].cer)
        t.summary[f"ocr.{e}.cer_ge14_pct"] = pct(merged.groups[">=14px"].cer)
        wrong = "; ".join(f"{a!r} -> {b!r}" for a, b in merged.pairs[:8]) or "none"
        t.notes.append(f"{e}: {len(merged.missing)} truth lines missed, {len(merged.extra)} extra lines read; "
                       f"differences: {wrong}")  # fmt: skip
    t.notes.append("goal (issue 15): <= 2% at >= 14 px; extra lines count as insertions, missed ones in full")
    return t


def speed_table(results: dict[str, dict], engines: list[str], screens: Screens, names: Sequence[str]) -> Table:
    cols = ["screen", "engine", "ms", "CPU ms", "1st read ms", "same frame again ms"]
    t = Table("9. OCR: ms per changed frame, 1 CPU thread (mean over the pages of each page's median)", cols)
    for w, h in screens:
        keys = [f"{n}@{w}x{h}" for n in names]
        ms: dict[str, float] = {}
        cpu: dict[str, float] = {}
        for e in engines:
            r = results.get(e)
            if r is None:
                t.add(f"{w}x{h}", e, None, None, None, None)
                continue
            ms[e] = statistics.fmean(statistics.median(r["pages"][k]["ms"]) for k in keys)
            cpu[e] = statistics.fmean(statistics.median(r["pages"][k]["cpu_ms"]) for k in keys)
            again = statistics.fmean(r["pages"][k]["again_ms"] for k in keys)
            t.add(f"{w}x{h}", e, ms[e], cpu[e], r["first_ms"][f"{w}x{h}"], again)
            t.summary[f"ocr.{e}.ms_{h}p"] = round(ms[e], 1)
        speed, cpu_speed = ratio(ms.get("rapidocr"), ms.get("ours")), ratio(cpu.get("rapidocr"), cpu.get("ours"))
        t.add(f"{w}x{h}", "speed ours/rapidocr", speed, cpu_speed, None, None)
        t.summary[f"ocr.speed_{h}p"] = speed
        t.summary[f"ocr.cpu_speed_{h}p"] = cpu_speed
    reps = sorted({len(p["ms"]) for r in results.values() for p in r["pages"].values()})
    t.notes.append(f"{len(names)} pages per size, {'/'.join(map(str, reps))} timed read(s) each after one warm-up "
                   "read per size, our line cache emptied before each; CPU ms = the child's CPU time, all threads "
                   "(steadier than wall time on a busy machine); 'same frame again' = one more read with the cache "
                   "kept (an unchanged screen); goal: <= 1000 ms and ours/rapidocr >= 1.0")  # fmt: skip
    return t


def memory_table(results: dict[str, dict], engines: list[str]) -> Table:
    cols = ["engine", "baseline RSS", "+ after load", "+ after reads", "+ peak", "load s", "outbound"]
    t = Table("9. OCR: memory (MB) and load time, one engine per child process", cols)
    for e in engines:
        r = results.get(e)
        if r is None:
            t.add(e, *([None] * 6))
            continue
        base = r["rss_base_mb"]
        peak = None if r["hwm_mb"] is None else r["hwm_mb"] - base
        t.add(e, base, r["rss_loaded_mb"] - base, r["rss_after_mb"] - base, peak, r["load_s"], len(r["outbound"]))
        t.summary[f"ocr.{e}.rss_added_mb"] = round(peak if peak is not None else r["rss_after_mb"] - base, 1)
        if r["outbound"]:
            t.notes.append(f"{e} tried to reach: {', '.join(r['outbound'][:5])}")
    t.notes.append("baseline = after rendering the pages and importing the libraries; + peak = VmHWM, reset at "
                   "the baseline; outbound = connections or name lookups beyond loopback (refused); goal: + peak "
                   "<= 150")  # fmt: skip
    return t


def tables(results: dict[str, dict], errors: dict[str, str], screens: Screens, names: Sequence[str]) -> list[Table]:
    engines = [e for e in ENGINES if e in results or e in errors]
    sc = {e: scores(results[e], screens, names) for e in engines if e in results}
    cer = cer_table(sc, engines, screens, names)
    for e, msg in errors.items():
        cer.notes.append(f"{e}: not measured: {msg}")
    return [cer, speed_table(results, engines, screens, names), memory_table(results, engines)]


def measure(opts: Opts, engines: Sequence[str] = ENGINES, names: Sequence[str] | None = None) -> list[Table]:
    from demo.textpages import PAGES

    names = list(names or PAGES)
    reps = 1 if opts.quick else max(1, round(2 * opts.scale))
    results: dict[str, dict] = {}
    errors: dict[str, str] = {}
    for e in engines:
        try:
            results[e] = run_child(e, SCREENS, names, reps, opts.device)
        except BenchError as err:
            errors[e] = str(err)
    if not results:
        raise BenchError("; ".join(f"{e}: {m}" for e, m in errors.items()))
    return tables(results, errors, SCREENS, names)


def run(opts: Opts) -> list[Table]:
    return measure(opts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.ocr", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one timed read per page (a check, not numbers)")
    ap.add_argument("--engines", default=",".join(ENGINES), help="comma list of ours, rapidocr")
    ap.add_argument("--pages", help="comma list of pages (default all of demo.textpages)")
    ap.add_argument("--device", default="CPU")
    ap.add_argument("--child", choices=ENGINES, help=argparse.SUPPRESS)
    ap.add_argument("--screens", default="1280x720,1920x1080", help=argparse.SUPPRESS)
    ap.add_argument("--reps", type=int, default=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    from demo.textpages import PAGES

    names = args.pages.split(",") if args.pages else list(PAGES)
    unknown = [n for n in names if n not in PAGES]
    if unknown:
        ap.error(f"unknown page(s): {', '.join(unknown)}")
    if args.child:
        screens = [tuple(int(v) for v in s.split("x")) for s in args.screens.split(",")]
        try:
            print(json.dumps(child(args.child, screens, names, args.reps, args.device)))
        except BenchError as e:
            print(e, file=sys.stderr)
            return 3
        return 0
    engines = [e for e in args.engines.split(",") if e]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        ap.error(f"unknown engine(s): {', '.join(unknown)}")
    print(f"bench.ocr: {', '.join(engines)} ({'quick' if args.quick else 'full'}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.2f})", flush=True)  # fmt: skip
    try:
        out = measure(Opts(quick=args.quick, device=args.device), engines, names)
    except BenchError as e:
        print(f"not run: {e}")
        return 1
    for t in out:
        print("\n" + t.render(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
