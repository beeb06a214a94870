"""Latency of the `timeline` op (the web page's day view) over a full day of memories.

    .venv/bin/python -m bench.timeline                    # 100k memories: 5 streams over one UTC day
    .venv/bin/python -m bench.timeline --memories 20000 --calls 20

Writes the memories as the daemon stores them: screen0 and cam0 frames with a row in an image space and in the
text space (ConSE), mic0 windows in an audio space and the text space, screen text and moments in the text space
only (so ~1.6 rows a memory). Vectors are short (--dim): the op reads no vectors, only ids and the chosen rows'
metadata. Then times the op as the query service answers it (Service.handle: JSON in, JSON out, without the
socket), with the store in a child process as in the daemon and in this process: the whole day in 120 and 500
bins, random hours in 60 bins, and the day again after each write of a batch (the daemon writing while the page
refreshes: the written bucket's row index is rebuilt). The first call after opening the store, which reads every
bucket's ids (the daemon does this in the background at start), is reported on its own. Measures, never asserts.
"""

from __future__ import annotations

import argparse
import calendar
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from agent.query.service import Service
from sinks.memory import Memory
from sinks.memory.spool import Record

DAY = calendar.timegm((2026, 11, 24, 0, 0, 0))
STREAMS = {  # stream → (source, modality, spaces)
    "screen0": ("screen0", "image", ("effnet-lite0/1280", "minilm-l6/384")),
    "cam0": ("cam0", "image", ("effnet-lite0/1280", "minilm-l6/384")),
    "mic0": ("mic0", "audio", ("yamnet/1024", "minilm-l6/384")),
    "screen0#text": ("screen0", "text", ("minilm-l6/384",)),
    "all": ("all", "moment", ("minilm-l6/384",)),
}


def rows(stream: str, ts: np.ndarray, dim: int, rng: np.random.Generator) -> list[Record]:
    source, modality, spaces = STREAMS[stream]
    ids = [f"{stream}-{round(t * 1e9)}" for t in ts]
    metas = [
        {"ts": float(t), "source": source, "modality": modality, "labels": "desk|monitor", "thumb": f"/t/{i}.jpg"}
        for i, t in zip(ids, ts, strict=True)
    ]
    docs = [f"words read at {t:.0f}" for t in ts] if modality == "text" else None
    out = []
    for space in spaces:
        v = rng.standard_normal((len(ids), dim)).astype(np.float32)
        out.append(Record(space, ids, v / np.linalg.norm(v, axis=1, keepdims=True), metas, docs))
    return out


def ingest(mem: Memory, n: int, dim: int, batch: int, rng: np.random.Generator) -> float:
    """`n` memories spread over the day, n/5 per stream, written in time order; returns rows per second."""
    t0, written = time.perf_counter(), 0
    per = n // len(STREAMS)
    for stream in STREAMS:
        ts = DAY + np.sort(rng.uniform(0, 86400, per))
        for i in range(0, per, batch):
            for rec in rows(stream, ts[i : i + batch], dim, rng):
                for part in mem.store.split(rec):
                    mem.store.upsert(part)
                    written += len(part.ids)
    return written / (time.perf_counter() - t0)


def timed(call: Callable[[], object], n: int, before: Callable[[], object] | None = None) -> list[float]:
    out = []
    for _ in range(n):
        if before is not None:
            before()
        t0 = time.perf_counter()
        call()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def run(mem: Memory, calls: int, dim: int, rng: np.random.Generator) -> dict[str, list[float]]:
    service = Service("ipc:///nonexistent", mem, [], lambda: {})  # never started: handle() only

    def ask(since: float, until: float, bins: int) -> Callable[[], object]:
        body = json.dumps({"op": "timeline", "since": since, "until": until, "bins": bins}).encode()

        def call() -> dict:
            reply = service.handle(body)
            if not reply["ok"]:
                raise RuntimeError(reply["error"])
            json.dumps(reply)
            return reply

        return call

    day120, day500 = ask(DAY, DAY + 86400, 120), ask(DAY, DAY + 86400, 500)
    out = {"first call (reads the ids)": timed(day120, 1)}
    out["day, 120 bins"] = timed(day120, calls)
    out["day, 500 bins"] = timed(day500, calls)
    hours = [float(rng.uniform(DAY, DAY + 86400 - 3600)) for _ in range(calls)]
    out["random hour, 60 bins"] = [timed(ask(h, h + 3600, 60), 1)[0] for h in hours]
    live = iter(range(1, calls + 1))

    def write() -> None:  # 32 new screen frames, as the writer thread stores a batch
        ts = DAY + 86399 + np.arange(32) * 1e-4 + next(live) * 1e-2
        for rec in rows("screen0", ts, dim, rng):
            mem.store.upsert(rec)

    out["day, 120 bins, after a write"] = timed(day120, calls, before=write)
    lanes = day120()["lanes"]
    out["_shape"] = [len(lanes), sum(len(lane["items"]) for lane in lanes), sum(sum(lane["counts"]) for lane in lanes)]
    service.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.timeline", description=__doc__.splitlines()[0])
    p.add_argument("--memories", type=int, default=100_000, help="memories in the day (5 streams)")
    p.add_argument("--dim", type=int, default=16, help="vector length (not read by the op)")
    p.add_argument("--batch", type=int, default=1000, help="memories per write while filling")
    p.add_argument("--calls", type=int, default=50, help="timed calls per kind")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-timeline-") as tmp:
        mem = Memory(Path(tmp), 64, 1.0, False, 8, 16, process=True)
        rate = ingest(mem, args.memories, args.dim, args.batch, rng)
        mem.close()
        results = {}
        for name, process in (("store process (the daemon's)", True), ("store in this process", False)):
            mem = Memory(Path(tmp), 64, 1.0, False, 8, 16, process=process)
            try:
                results[name] = run(mem, args.calls, args.dim, rng)
            finally:
                mem.close()
    print(f"{args.memories} memories over one day, 5 streams, written at {rate:,.0f} rows/s; {args.calls} calls a kind")
    for name, times in results.items():
        lanes, items, counted = times.pop("_shape")
        print(f"\n{name}: the day in 120 bins = {lanes} lanes, {items} items, {counted} memories counted")
        print(f"  {'call':<32} {'p50':>8} {'p95':>8}  (ms)")
        for kind, ms in times.items():
            print(f"  {kind:<32} {np.percentile(ms, 50):>8.1f} {np.percentile(ms, 95):>8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
