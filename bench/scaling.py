"""7. Scaling: image throughput vs infer requests (1..8) and vs number of sources (1..4), all synthetic.

Requests: with the LATENCY hint the CPU runs one stream, so more requests cannot help; the sweep uses
the THROUGHPUT hint and all cores (cpu_threads = 0), where they can, and compares every point with
benchmark_app at the same nireq and properties. If the dispatcher were the bottleneck, the ratio would
fall as the device gets faster with more requests. Sources: the daemon's default device config, 1..4
ungated synthetic sources sharing one offered rate (1.5× the model's); the total should stay at the
model's rate and the round-robin mailboxes should share it evenly (min/max share near 1).
"""

from __future__ import annotations

from pathlib import Path

from .common import Opts, Table, bench_home, guarded, ratio
from .harness import device_config, measure, running_daemon
from .pipeline import OFFER, check, image_sources, limit


def with_requests(n: int):
    """`prepare` hook: give the daemon's image encoder an AsyncInferQueue of `n` requests."""

    def prepare(daemon) -> None:
        import openvino as ov

        enc = daemon.encoders["image"]
        enc.queue = ov.AsyncInferQueue(enc.compiled.model, n)
        enc.queue.set_callback(enc._done)
        enc.requests = n

    return prepare


def requests_table(tmp: Path, opts: Opts) -> Table:
    t = Table(
        "7. Image throughput vs infer requests (THROUGHPUT hint, all cores)",
        ["nireq", "offered/s", "frames/s", "bench_app/s", "ratio", "streams", "mbox drop", "cpu %"],
    )
    cfg = device_config(opts.device, "THROUGHPUT", 0)
    secs = opts.secs(15, 3)
    ratios = []
    for n in (1, 2, 4) if opts.quick else range(1, 9):
        lim = limit(tmp, cfg, "image", opts, nireq=n)
        with running_daemon(tmp, cfg, image_sources(OFFER * lim.per_s, gated=False), with_requests(n)) as d:
            r = measure(d, "image", opts.secs(3, 1.5), secs)
            mismatch = check(lim, d.encoders["image"])
        x = ratio(r.frames_per_s, lim.per_s)
        t.add(n, OFFER * lim.per_s, r.frames_per_s, lim.per_s, x, lim.props.get("NUM_STREAMS"), r.dropped, r.cpu_pct)
        ratios.append(x)
        if mismatch:
            t.notes.append(mismatch)
    t.notes.append(f"device {lim.device}, {lim.props}; sources offer {OFFER:g}x benchmark_app's rate")
    t.summary["scaling.min_ratio"] = min((x for x in ratios if x is not None), default=None)
    return t


def sources_table(tmp: Path, opts: Opts) -> Table:
    t = Table(
        "7. Image throughput vs number of sources (daemon's default device config)",
        ["sources", "offered/s", "frames/s", "bench_app/s", "ratio", "min/max share", "mbox drop", "cpu %"],
    )
    secs = opts.secs(15, 3)
    cfg = device_config(opts.device)
    lim = limit(tmp, cfg, "image", opts)
    total = OFFER * lim.per_s  # the same offered load split over k sources: the capture cost stays constant
    for k in (1, 2, 4) if opts.quick else (1, 2, 3, 4):
        with running_daemon(tmp, cfg, image_sources(total / k, n=k, gated=False)) as d:
            r = measure(d, "image", opts.secs(3, 1.5), secs)
        shares = [v for name, v in r.per_source.items() if name.startswith("synth")]
        fair = round(min(shares) / max(shares), 3) if shares and max(shares) else None
        t.add(k, total, r.frames_per_s, lim.per_s, ratio(r.frames_per_s, lim.per_s), fair, r.dropped, r.cpu_pct)
    t.notes.append(f"device {lim.device}, {lim.props}, nireq {lim.nireq}")
    return t


def run(opts: Opts) -> list[Table]:
    with bench_home() as tmp:
        return [
            guarded("7. Scaling vs infer requests", requests_table, tmp, opts),
            guarded("7. Scaling vs sources", sources_table, tmp, opts),
        ]
