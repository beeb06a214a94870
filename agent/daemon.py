"""Wires config into sources → mailboxes → dispatcher → encoder → sinks, and runs until stopped.

Start order is sinks first, sources last; stop order is the reverse, so every captured frame that
reached a mailbox is encoded, published and written before the process exits.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import numpy as np

from encoders.image import ImageEncoder
from encoders.modelstore import ModelStore
from encoders.records import Encoded
from encoders.runtime import Runtime, RuntimeConfig
from encoders.text import TextEncoder
from sinks.memory import Memory
from sinks.publisher import Publisher

from .config import Config, bus_endpoint, query_endpoint
from .dispatcher import Dispatcher
from .gate import ChangeGate
from .mailbox import Mailboxes
from .service import Service
from .sources import Source
from .sources.screen import ScreenSource

log = logging.getLogger(__name__)


class NoSources(RuntimeError):
    """No configured sensor can be opened on this machine."""


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) and make it 0700: memories and sockets are personal."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def configured_sources(cfg: Config, mailboxes: Mailboxes) -> list[Source]:
    out: list[Source] = []
    s = cfg.screen
    if s.enabled:
        gate = ChangeGate(s.gate_threshold, s.force_keep_s)
        out.append(ScreenSource(s.name, s.monitor, s.fps, gate, mailboxes.put))
    return out


def availability(sources: list[Source]) -> tuple[list[Source], list[tuple[str, str, str]]]:
    """Sources that open, and a table of (name, status, detail) for every configured source."""
    ok, table = [], []
    for src in sources:
        reason = src.probe()
        if reason is None:
            ok.append(src)
            table.append((src.name, "ok", src.describe()))
        else:
            table.append((src.name, "skipped", reason))
    return ok, table


def format_table(rows: list[tuple[str, str, str]]) -> str:
    w = max([len(r[0]) for r in rows] + [6])
    lines = [f"{'source':<{w}}  {'status':<8} detail"]
    lines += [f"{n:<{w}}  {s:<8} {d}" for n, s, d in rows]
    return "\n".join(lines)


def percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


class Daemon:
    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg
        d = cfg.daemon
        private_dir(d.data_dir)
        private_dir(d.runtime_dir)
        self.mailboxes = Mailboxes()
        self.sources, self.table = availability(configured_sources(cfg, self.mailboxes))
        if not self.sources:
            raise NoSources(format_table(self.table) if self.table else "no sources are enabled in the config")
        for src in self.sources:
            self.mailboxes.add(src.name, depth=1)
        store = ModelStore(d.cache_dir)
        image_dir, text_dir = store.require(cfg.models.image), store.require(cfg.models.text)
        dev = cfg.device
        self.runtime = Runtime(RuntimeConfig(dev.name, dev.hint, dev.cpu_threads, dev.strict, d.cache_dir / "ov-cache"))
        st = cfg.store
        self.memory = Memory(d.data_dir, st.batch_size, st.flush_s, st.thumbnails, st.thumb_width, st.queue_size)
        self.publisher = Publisher(bus_endpoint(cfg), cfg.bus.send_hwm, cfg.bus.queue_size, self.memory.thumb_path)
        self.sinks = (self.publisher, self.memory)
        self.image = ImageEncoder(self.runtime, image_dir, self._fanout)
        self.text = TextEncoder(self.runtime, text_dir)
        self.dispatcher = Dispatcher(self.mailboxes, self.image, "image")
        self.service = Service(query_endpoint(cfg), self.memory, self.text, self.status)
        self.latency_ms: list[float] = []  # capture → handed to sinks
        self._lock = threading.Lock()
        self.started = time.time()

    def _fanout(self, item: Encoded) -> None:
        for sink in self.sinks:
            sink.put(item)
        ms = (time.monotonic_ns() - item.frame.mono_ns) / 1e6
        with self._lock:
            self.latency_ms.append(ms)
            del self.latency_ms[:-256]

    def start(self) -> None:
        self.memory.start()
        self.publisher.start()
        self.service.start()
        self.dispatcher.start()
        for src in self.sources:
            src.start()
        log.info(
            "running: sources=%s device=%s bus=%s query=%s data=%s",
            ",".join(s.name for s in self.sources),
            self.image.device,
            self.publisher.endpoint,
            self.service.endpoint,
            self.cfg.daemon.data_dir,
        )

    def stop(self) -> None:
        """Stop capture, drain inference, flush sinks, close sockets."""
        t0 = time.monotonic()
        for src in self.sources:
            src.stop()
        self.dispatcher.stop()
        self.publisher.close()
        self.memory.close()
        self.service.close()
        log.info("stopped in %.2fs: %s", time.monotonic() - t0, self.summary())

    def run(self, stop: threading.Event) -> None:
        self.start()
        try:
            stop.wait()
        finally:
            self.stop()

    def summary(self) -> str:
        s = self.status()
        parts = [
            f"{n}: captured={v['captured']} kept={v['kept']} dropped={v['dropped']}" for n, v in s["sources"].items()
        ]
        return "; ".join([*parts, f"published={s['publisher']['sent']}", f"stored={s['memory']['stored']}"])

    def status(self) -> dict:
        with self._lock:
            lat = list(self.latency_ms)
        inf = self.image.latencies()
        sources = {src.name: {**src.stats(), "dropped": self.mailboxes.dropped[src.name]} for src in self.sources}
        return {
            "uptime_s": round(time.time() - self.started, 1),
            "device": {"image": self.image.device, "text": self.text.compiled.device},
            "sources": sources,
            "mailbox_depth": self.mailboxes.depth(),
            "encoder": {**self.image.stats, "infer_p50_ms": percentile(inf, 50), "infer_p95_ms": percentile(inf, 95)},
            "dispatcher": {"rejected": self.dispatcher.rejected},
            "latency_ms": {"p50": percentile(lat, 50), "p95": percentile(lat, 95)},
            "publisher": self.publisher.stats(),
            "memory": self.memory.stats(),
            "service": self.service.stats(),
        }
