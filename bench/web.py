"""The web face: page load and search over 100k memories, and what live-stream clients cost the pipeline.

    .venv/bin/python -m bench.web            # 100k memories, 100 page loads and searches, 30 s windows
    .venv/bin/python -m bench.web --quick    # 2k memories, 5 of each, 3 s windows: a check, not numbers

1. A data dir is filled with N memories spread over yesterday (UTC: one bucket per space), written by the
daemon's own memory writer (`Memory.write`, ids `<stream>-<ts_ns>`): screen0 images (the image model's
rows, 1280-d and 384-d), mic0 audio windows (two rows) and screen0#text blocks of words (bench/keywords.py's
invoices, mails, errors), with random unit vectors and no thumbnails. A real daemon (bench/harness.py, in
this process, one still synthetic image: a daemon idling on a static screen) serves it on a free port. A
keep-alive httpx client with the token from <data_dir>/web.token times a page load (GET /, the /static/ files
index.html names and the modules they import, /api/status, /api/timeline of that day in 120 bins; one after
the other) and a search (POST /api/query, k 20, words of the stored text). Goal: page load p95 <= 200 ms.
2. A daemon with a synthetic image source offered faster than its model runs: results/s with no stream
client, with 10 SSE clients reading /api/stream (threads in a child process, as browsers are other
processes) plus one that asks for vectors and never reads, and with none again; the events each client got
against those the stream was handed, and the status' web.dropped.
Measures, never asserts.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np

from .common import BenchError, Opts, Table, bench_home, cpu_seconds, guarded, percentile, photos, ratio
from .harness import Rate, SyntheticSource, device_config, measure, running_daemon, thread_cpu

if TYPE_CHECKING:
    from agent.config import Config
    from agent.daemon import Daemon
    from encoders.records import Encoded

DAY = 86400
SHARES = {"image": 0.4, "audio": 0.4, "text": 0.2}  # of the memories; a text block is read from a screen frame
IMAGE_LABELS = ("web site", "monitor", "screen", "notebook", "menu", "envelope", "comic book")
AUDIO_LABELS = ("Speech", "Music", "Noise")
BATCH = 1000  # memories per write
BINS = 120
TOKEN = "X-Sensorium-Token"


@dataclass(frozen=True)
class Sizes:
    memories: int = 100_000
    loads: int = 100  # page loads, and searches, timed
    clients: int = 10  # SSE clients reading
    rate: float = 120.0  # frames/s offered in part 2 (the image model runs ~55-90/s on this machine)

    @classmethod
    def of(cls, opts: Opts) -> Sizes:
        return cls(memories=2000, loads=5) if opts.quick else cls()


# --- the data dir ------------------------------------------------------------------------------------------


def yesterday() -> tuple[float, float]:
    start = (time.time() // DAY - 1) * DAY
    return start, start + DAY


def spaces(cfg: Config) -> dict[str, list[str]]:
    """The spaces the configured models write, by kind of memory (from their meta, as the encoders read it)."""
    from encoders.modelstore import ModelStore

    store = ModelStore(cfg.daemon.cache_dir)

    def of(name: str) -> list[str]:
        meta = store.meta(name)
        return list(meta["spaces"].values()) if "spaces" in meta else [meta["space"]]

    return {"image": of(cfg.models.image), "audio": of(cfg.models.audio), "text": of(cfg.models.text)}


def schedule(n: int, since: float, rng: np.random.Generator) -> list[tuple[int, str]]:
    """(ts_ns, kind) of `n` memories over the day from `since`, in time order."""
    k = {kind: int(n * share) for kind, share in SHARES.items()}
    k["audio"] = n - k["image"] - k["text"]
    lo = int(since * 1e9)
    frames = rng.integers(lo, lo + DAY * 10**9, k["image"])
    out = [(int(t), "image") for t in frames] + [(int(t), "text") for t in rng.choice(frames, k["text"], False)]
    out += [(int(t), "audio") for t in rng.integers(lo, lo + DAY * 10**9, k["audio"])]
    return sorted(out)


def unit(rng: np.random.Generator, space: str) -> np.ndarray:
    v = rng.standard_normal(int(space.rsplit("/", 1)[1])).astype(np.float32)
    return v / np.linalg.norm(v)


def memory_of(ts: int, kind: str, where: dict[str, list[str]], rng: np.random.Generator, i: int) -> Encoded:
    """One memory as the daemon's result stage hands it to the writer."""
    from encoders.records import Embedding, Encoded, Frame, text_id

    from .keywords import block

    source = "mic0" if kind == "audio" else "screen0"
    frame = Frame(source, "audio" if kind == "audio" else "image", np.zeros(0, np.float32), ts, 0)
    if kind == "text":
        space = where["text"][0]
        key = text_id(source, ts, 0)
        return Encoded(
            frame, (Embedding(frame.id, source, "text", space, unit(rng, space), ts, 0, text=block(rng, i), key=key),)
        )
    labels = tuple(str(x) for x in rng.choice(IMAGE_LABELS if kind == "image" else AUDIO_LABELS, 2, False))
    return Encoded(frame, tuple(Embedding.of(frame, s, unit(rng, s), labels) for s in where[kind]))


def fill(cfg: Config, n: int, since: float, seed: int = 0) -> str:
    """Write `n` memories into `cfg`'s data dir with the daemon's memory writer; says what it wrote, how fast."""
    from agent.parts import memory

    rng = np.random.default_rng(seed)
    where, plan = spaces(cfg), schedule(n, since, rng)
    mem = memory(cfg)
    t0 = time.monotonic()
    try:
        for i in range(0, n, BATCH):
            mem.write([memory_of(ts, kind, where, rng, i + j) for j, (ts, kind) in enumerate(plan[i : i + BATCH])])
    finally:
        mem.close()
    took = time.monotonic() - t0
    kinds = ", ".join(f"{k} {sum(1 for _, x in plan if x == k):,}" for k in SHARES)
    return f"{n:,} memories ({kinds}): {mem.stored:,} rows written in {took:.0f} s ({mem.stored / took:,.0f} rows/s)"


# --- 1. page load and search -------------------------------------------------------------------------------


def still_source(boxes: dict) -> list:
    """One synthetic 1280x720 image at 1/s through the change gate: the daemon of a static screen."""
    from agent.pipeline.gate import ChangeGate

    return [SyntheticSource("synth0", "image", 1.0, photos(1), boxes["image"].put, ChangeGate(2.0, 60.0))]


def token_of(d: Daemon) -> str:
    """The page's token, from <data_dir>/web.token where the daemon keeps it."""
    from agent.web.security import read_token

    token = read_token(d.cfg.daemon.data_dir)
    if d.web is None or token is None:
        raise BenchError("the daemon serves no web page (is [web] enabled?)")
    return token


def http_client(d: Daemon) -> httpx.Client:
    return httpx.Client(base_url=d.web.url, headers={TOKEN: token_of(d)}, timeout=60)


LINK = re.compile(r"""(?:src|href)\s*=\s*["']?/?(static/[^"'\s>?#]+)""")  # in the page: scripts, styles, icons
IMPORT = re.compile(r"""(?:import|from)\s*["']\./([^"']+)["']""")  # in a script: the modules it imports


def static_files(http: httpx.Client, page: str) -> tuple[float, int, int]:
    """Fetch the /static/ files the page names and the modules its scripts import, one after the other, as a
    browser would at most: (ms, bytes, files)."""
    todo = ["/" + p for p in dict.fromkeys(LINK.findall(page))]
    seen, took, size = set(todo), 0.0, 0
    while todo:
        path = todo.pop(0)
        ms, r = timed(http, "GET", path)
        took, size = took + ms, size + len(r.content)
        if path.endswith(".js"):
            imports = [f"/static/{m}" for m in IMPORT.findall(r.text)]
            todo += [m for m in dict.fromkeys(imports) if m not in seen]
            seen.update(imports)
    return took, size, len(seen)


def timed(http: httpx.Client, method: str, url: str, **kw: Any) -> tuple[float, httpx.Response]:
    t0 = time.perf_counter()
    r = http.request(method, url, **kw)
    ms = (time.perf_counter() - t0) * 1e3
    r.raise_for_status()
    return ms, r


def load_page(http: httpx.Client, span: tuple[float, float], timeline: bool) -> dict[str, tuple[float, int]]:
    """One page load, step by step: (ms, bytes) of each request, made one after the other."""
    out = {}
    ms, page = timed(http, "GET", "/")
    out["GET /"] = ms, len(page.content)
    ms, size, files = static_files(http, page.text)
    out[f"GET /static/: {files} files"] = ms, size
    ms, r = timed(http, "GET", "/api/status")
    out["GET /api/status"] = ms, len(r.content)
    if timeline:
        ms, r = timed(http, "GET", "/api/timeline", params={"since": span[0], "until": span[1], "bins": BINS})
        out[f"GET /api/timeline ({BINS} bins)"] = ms, len(r.content)
    return out


def search(http: httpx.Client, text: str) -> tuple[float, int, int]:
    """(ms, bytes, results) of one search as the page sends it."""
    ms, r = timed(http, "POST", "/api/query", json={"text": text, "k": 20})
    return ms, len(r.content), len(r.json()["results"])


def queries(n: int, seed: int = 1) -> list[str]:
    """What someone would type, from the stored text's vocabulary (bench/keywords.py)."""
    from .keywords import ERRORS, FIRST, NAMES, THINGS, TOPICS

    rng = np.random.default_rng(seed)

    def pick(xs: list[str]) -> str:
        return xs[int(rng.integers(len(xs)))]

    forms = (
        lambda: f"invoice {pick(THINGS)}",
        lambda: pick(ERRORS),
        lambda: f"{pick(FIRST)} {pick(NAMES)}",
        lambda: pick(TOPICS),
        lambda: f"{pick(THINGS)} {pick(NAMES)}",
    )
    return [forms[i % len(forms)]() for i in range(n)]


def warm_done(timeout: float = 600) -> float:
    """Wait until the memory's start-up read of every bucket ended (a page opened later finds it done)."""
    t0 = time.monotonic()
    while any(t.name == "memory-warm" for t in threading.enumerate()) and time.monotonic() - t0 < timeout:
        time.sleep(0.1)
    return time.monotonic() - t0


def stats_row(t: Table, name: str, ms: list[float], size: list[int]) -> None:
    t.add(name, len(ms), percentile(ms, 50), percentile(ms, 95), max(ms), sum(size) / len(size) / 1024)


def page_table(tmp: Path, opts: Opts, sizes: Sizes) -> Table:
    t = Table(
        f"11. Web: page load and search, {sizes.memories:,} memories over a day",
        ["step", "n", "p50 ms", "p95 ms", "max ms", "KB"],
    )
    span, facts = yesterday(), []
    words = queries(sizes.loads + 1)

    def setup(cfg: Config) -> None:  # before the daemon opens its data dir
        facts.append(fill(cfg, sizes.memories, span[0]))

    with running_daemon(tmp, device_config(opts.device), still_source, setup=setup) as d, http_client(d) as http:
        warmed = warm_done()
        probe = http.get("/api/timeline", params={"since": span[0], "until": span[1], "bins": BINS})
        timeline = probe.status_code != 404
        if timeline:
            probe.raise_for_status()
        first_load = sum(ms for ms, _ in load_page(http, span, timeline).values())
        first_search = search(http, words[-1])[0]
        loads = [load_page(http, span, timeline) for _ in range(sizes.loads)]
        searches = [search(http, q) for q in words[: sizes.loads]]
    for step in loads[0]:
        stats_row(t, step, [load[step][0] for load in loads], [load[step][1] for load in loads])
    if not timeline:
        t.add("GET /api/timeline: unknown op (404), not timed", None, None, None, None, None)
    stats_row(t, "page load (all of the above)", [sum(v[0] for v in x.values()) for x in loads],
              [sum(v[1] for v in x.values()) for x in loads])  # fmt: skip
    stats_row(t, "search: POST /api/query k=20", [s[0] for s in searches], [s[1] for s in searches])
    t.notes.append(f"data dir: {facts[0]}; the daemon read its buckets at start in {warmed:.1f} s")
    t.notes.append(
        f"first page load {first_load:.0f} ms, first search {first_search:.0f} ms (not counted); searches found"
        f" {np.mean([s[2] for s in searches]):.1f} results on average"
    )
    t.notes.append("one keep-alive connection, requests one after the other (a browser sends several at once)")
    t.notes.append(f"timeline: {time.strftime('%Y-%m-%d', time.gmtime(span[0]))} UTC; no thumbnails are stored")
    loads_ms = [sum(v[0] for v in x.values()) for x in loads]
    t.summary.update(
        {
            "web.page_load_p95_ms": percentile(loads_ms, 95),
            "web.search_p95_ms": percentile([s[0] for s in searches], 95),
        }
    )
    return t


# --- 2. the live stream's fan-out --------------------------------------------------------------------------


def read_streams(url: str, token: str, counts: Any, stop: Any) -> None:
    """In a child process: one thread per SSE client, each counting the memory events it reads, until `stop`."""

    def read(i: int) -> None:
        with httpx.Client(timeout=None) as c, c.stream("GET", url + "api/stream", headers={TOKEN: token}) as r:
            for line in r.iter_lines():
                if line == "event: memory":
                    counts[i] += 1

    for i in range(len(counts)):
        threading.Thread(target=read, args=(i,), daemon=True).start()
    stop.wait()  # the process ends with its threads and their connections


@contextmanager
def readers(d: Daemon, n: int) -> Iterator[tuple[Any, int]]:
    """`n` stream clients reading in a child process: (their event counts, shared; the child's pid)."""
    ctx = multiprocessing.get_context("spawn")  # not fork: this process runs the daemon's threads
    counts, stop = ctx.Array("q", n, lock=False), ctx.Event()
    token = token_of(d)
    proc = ctx.Process(target=read_streams, args=(d.web.url, token, counts, stop), daemon=True)
    proc.start()
    try:
        yield counts, proc.pid
    finally:
        stop.set()
        proc.join(10)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)


@contextmanager
def stalled(d: Daemon) -> Iterator[None]:
    """A stream client that asks for vectors (~7 KB an event) and never reads: the kernel's socket buffers fill
    (several MB on loopback), then the server's, then its 512-event queue, whose oldest events then drop."""
    token, port = token_of(d), d.web.port
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(f"GET /api/stream?vectors=1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{TOKEN}: {token}\r\n\r\n".encode())
    try:
        yield
    finally:
        s.close()


def wait_clients(d: Daemon, n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while d.stream.stats()["clients"] != n:
        if time.monotonic() > deadline:
            raise BenchError(f"{d.stream.stats()['clients']} stream clients after {timeout:g} s, waited for {n}")
        time.sleep(0.1)


@dataclass(frozen=True)
class Window:
    rate: Rate
    events: int  # events the stream was handed
    received: list[int]  # memory events each reading client got
    web_cpu: float  # % of a core, the web server's thread (its event loop: the fan-out)
    readers_cpu: float  # % of a core, the readers' process


def window(d: Daemon, secs: float, counts: Any = (), pid: int | None = None) -> Window:
    e0, c0, cpu0, web0 = d.stream.events, list(counts), cpu_seconds([pid] if pid else []), thread_cpu(d)["web"]
    t0 = time.monotonic()
    r = measure(d, "image", 0, secs)
    pct = 100 / (time.monotonic() - t0)
    cpu, web = (cpu_seconds([pid] if pid else []) - cpu0) * pct, (thread_cpu(d)["web"] - web0) * pct
    return Window(r, d.stream.events - e0, [b - a for a, b in zip(c0, counts, strict=True)], web, cpu)


def stream_table(tmp: Path, opts: Opts, sizes: Sizes) -> Table:
    from .pipeline import image_sources

    warm, secs = opts.secs(5, 1), opts.secs(30, 3)
    with running_daemon(tmp, device_config(opts.device), image_sources(sizes.rate)) as d, http_client(d) as http:
        time.sleep(warm)
        before = window(d, secs)
        with readers(d, sizes.clients) as (counts, pid), stalled(d):
            wait_clients(d, sizes.clients + 1)
            time.sleep(warm)
            during = window(d, secs, counts, pid)
            dropped = http.get("/api/status").json()["status"]["web"]["dropped"]
        wait_clients(d, 0)
        time.sleep(warm)
        after = window(d, secs)
    cols = ["stream clients", "frames/s", "vectors/s", "÷ without", "events", "per client", "÷ events", "web dropped"]
    cpu = ["cpu %", "web thread %", "readers cpu %"]
    t = Table("11. Web: the image pipeline with live-stream clients (SSE)", [*cols, *cpu])
    without = (before.rate.frames_per_s + after.rate.frames_per_s) / 2
    r, got = during.rate, during.received

    def alone(name: str, w: Window) -> None:
        t.add(name, w.rate.frames_per_s, w.rate.published_per_s, *[None] * 5, w.rate.cpu_pct, w.web_cpu, None)

    alone("none", before)
    t.add(
        f"{sizes.clients} reading + 1 stalled", r.frames_per_s, r.published_per_s, ratio(r.frames_per_s, without),
        during.events, f"{min(got)}-{max(got)}", min(got) / max(during.events, 1), dropped, r.cpu_pct,
        during.web_cpu, during.readers_cpu,
    )  # fmt: skip
    alone("none, after", after)
    t.notes.append(
        f"synthetic 1280x720 source offering {sizes.rate:g}/s, window {secs:g} s; one event per vector (a frame"
        " gives two); events: handed to the stream in the window; per client: min-max got; ÷ events: the least"
    )
    t.notes.append(
        "web dropped: events slow clients lost (status web.dropped): the stalled one's (it asked for vectors) once"
        " its sockets and 512-event queue are full; cpu %: the daemon's process and its store's, web thread: its part"
        " of it (the server's event loop); readers: the clients' process"
    )
    t.summary["web.stream_ratio"] = ratio(during.rate.frames_per_s, without)
    return t


# --- running -----------------------------------------------------------------------------------------------


def tables(opts: Opts, sizes: Sizes) -> list[Table]:
    with bench_home() as tmp:
        return [
            guarded("11. Web: page load and search", page_table, tmp, opts, sizes),
            guarded("11. Web: the image pipeline with live-stream clients", stream_table, tmp, opts, sizes),
        ]


def run(opts: Opts) -> list[Table]:
    return tables(opts, Sizes.of(opts))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.web", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2k memories, 5 loads, 3 s windows: a check, not numbers")
    p.add_argument("--memories", type=int, help="memories in the data dir (default 100000)")
    p.add_argument("--loads", type=int, help="page loads and searches timed (default 100)")
    p.add_argument("--clients", type=int, help="stream clients reading (default 10)")
    p.add_argument("--device", default="CPU", help="OpenVINO device of the daemon")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    opts = Opts(quick=args.quick, device=args.device)
    given = {k: v for k, v in (("memories", args.memories), ("loads", args.loads), ("clients", args.clients)) if v}
    sizes = replace(Sizes.of(opts), **given)
    print(f"bench.web: ({'quick' if opts.quick else 'full'}, device {opts.device}, {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.2f})", flush=True)  # fmt: skip
    for t in tables(opts, sizes):
        print("\n" + t.render(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
