"""Where a Whisper model's memory goes: RSS (anonymous and file-backed) added by `Whisper(runtime, dir)`, after
the first transcription and after three more, each configuration in a fresh child process.

    python -m bench.asr_rss DIR [DIR...] [--props '{"KEY": value}'] [--core '{"ENABLE_MMAP": false}']
                            [--cache cold|warm|off] [--threads 1] [--trim] [--preload]

`--preload` takes the baseline after the CPU plugin is loaded and has run a tiny model (in the daemon the other
encoders have done that: the plugin's pages are not the speech model's cost); `--trim` calls malloc_trim(0)
after loading and after the first transcription.

`--cache warm` compiles once in a throwaway child so the measured child loads from the OpenVINO model cache
(as the daemon does from its second start on); `cold` compiles from the IR; `off` sets no CACHE_DIR. The child
also lists the mappings that hold the most file-backed RSS (the model's .bin files, cache blobs, libraries).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from .common import ROOT

FIELDS = ("VmRSS", "RssAnon", "RssFile")


def status() -> dict[str, float]:
    """VmRSS, RssAnon, RssFile of this process in MB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, val = line.partition(":")
        if key in FIELDS:
            out[key] = int(val.split()[0]) / 1024
    return out


def file_rss(top: int = 6) -> list[tuple[str, float]]:
    """The file mappings holding the most resident memory (MB), by file name."""
    per: dict[str, float] = {}
    name = ""
    for line in Path("/proc/self/smaps").read_text().splitlines():
        parts = line.split()
        if parts and "-" in parts[0] and len(parts) >= 5 and ":" in parts[3]:
            name = parts[5] if len(parts) > 5 and parts[5].startswith("/") else ""
        elif parts and parts[0] == "Rss:" and name:
            per[name] = per.get(name, 0.0) + int(parts[1]) / 1024
    return sorted(((Path(k).name, round(v, 1)) for k, v in per.items()), key=lambda kv: -kv[1])[:top]


def child(
    model_dir: Path, props: dict, core: dict, cache: Path | None, threads: int, trim: bool, preload: bool
) -> dict[str, Any]:
    import numpy as np
    import openvino as ov

    from demo.speech import synthesise
    from encoders.asr import Whisper
    from encoders.runtime import Runtime, RuntimeConfig

    audio = synthesise("budget-report")
    base = status()
    runtime = Runtime(RuntimeConfig("CPU", "LATENCY", threads, False, cache or Path(tempfile.mkdtemp())))
    if cache is None:
        runtime.core.set_property({"CACHE_DIR": ""})
    if core:
        runtime.core.set_property(core)
    if preload:  # the daemon's other encoders have loaded and paged in the CPU plugin already
        x = ov.opset13.parameter([1, 8], np.float32)
        runtime.core.compile_model(ov.Model([ov.opset13.relu(x)], [x]), "CPU")({0: np.ones((1, 8), np.float32)})
        runtime.available  # noqa: B018 (every plugin loaded, as Runtime.candidates does)
        base = status()
    if props:
        plain = runtime._properties
        runtime._properties = lambda dev: {**plain(dev), **props}  # type: ignore[method-assign]
    w = Whisper(runtime, model_dir)
    if trim:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    loaded = status()
    t = w.transcribe(audio, "en" if not w.multilingual else None)
    if trim:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    first = status()
    for name in ("refund", "budget-report", "refund"):  # steady state: a few more utterances
        w.transcribe(synthesise(name), "en" if not w.multilingual else None)
    after = status()
    buffers = {
        "cross_kv_mb": sum(a.nbytes for a in w._cross.values()) / 2**20,
        "self_cache_mb": sum(a.nbytes for a in w._cache.values()) / 2**20,
        "mel_mb": w._mel.nbytes / 2**20,
    }
    return {
        "base": base,
        "loaded": loaded,
        "first": first,
        "after": after,
        "text": t.text,
        "from_cache": [w.encoder.from_cache, w.decoder.from_cache],
        "buffers": {k: round(v, 1) for k, v in buffers.items()},
        "files": file_rss(),
        "numpy": np.__version__,
    }


def run(
    model_dir: Path, props: dict, core: dict, cache: str, threads: int, trim: bool, preload: bool
) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory(prefix="asr-rss-") as tmp:
        args = [sys.executable, "-m", "bench.asr_rss", str(model_dir), "--child", "--threads", str(threads)]
        args += ["--props", json.dumps(props), "--core", json.dumps(core), "--cache", cache, "--cache-dir", tmp]
        args += ["--trim"] if trim else []
        args += ["--preload"] if preload else []
        if cache == "warm":
            subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT, check=True)
        p = subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT)
        if p.returncode:
            raise RuntimeError(p.stderr.strip().splitlines()[-1])
        return json.loads(p.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.asr_rss", description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="+", type=Path, help="built Whisper model folders")
    ap.add_argument("--props", default="{}", help="extra compile properties (JSON)")
    ap.add_argument("--core", default="{}", help="Core properties set before reading (JSON)")
    ap.add_argument("--cache", choices=("cold", "warm", "off"), default="cold")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--trim", action="store_true", help="malloc_trim(0) after loading and after the transcription")
    ap.add_argument("--preload", action="store_true", help="baseline after a tiny model has loaded the CPU plugin")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--cache-dir", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    props, core = json.loads(a.props), json.loads(a.core)
    if a.child:
        cache = None if a.cache == "off" else a.cache_dir
        print(json.dumps(child(a.dirs[0], props, core, cache, a.threads, a.trim, a.preload)))
        return 0
    for d in a.dirs:
        r = run(d, props, core, a.cache, a.threads, a.trim, a.preload)
        b = r["base"]
        stages = ("loaded", "first", "after")
        row = " ".join(f"{st}: " + "/".join(f"{r[st][k] - b[k]:+.0f}" for k in FIELDS) for st in stages)
        print(f"{d.name} cache={a.cache} props={a.props} core={a.core} trim={a.trim} preload={a.preload}")
        print(f"  +MB VmRSS/RssAnon/RssFile  {row}  (baseline {b['VmRSS']:.0f})  cached={r['from_cache']}")
        print(f"  buffers {r['buffers']}  files {r['files'][:4]}")
        print(f"  text: {r['text']!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
