"""The real daemon, in this process, fed by synthetic sources fast enough to saturate its models.

`running_daemon` builds `agent.daemon.Daemon` from a config exactly as `sensorium run` does; only the
list of sources is swapped (when asked, through `Daemon(cfg, sources=...)`) for `SyntheticSource`s, which
post pre-made frames at a fixed rate through the real change gate into the real mailboxes. Everything
after the mailbox (dispatcher, encoder, AsyncInferQueue, result stage, thumbnails, publisher, Chroma
memory) is the daemon's own code.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from agent.pipeline.gate import ChangeGate
from agent.sources.pacing import Pacer
from agent.sources.supervisor import Supervisor
from encoders.records import Frame

from .common import TICK, cpu_seconds, percentile, write_config

if TYPE_CHECKING:  # the daemon (OpenVINO, Chroma) is imported only by a run that starts one
    from agent.config import Config
    from agent.daemon import Daemon, SourceFactory

AUDIO_RATE = 16000


class SyntheticSource(Supervisor):
    """Posts `frames` round-robin at `fps`, stamped like a real capture; images go through a ChangeGate."""

    def __init__(
        self,
        name: str,
        modality: str,
        fps: float,
        frames: list[np.ndarray],
        post: Callable[[Frame], None],
        gate: ChangeGate | None = None,
        burst: int = 1,
    ) -> None:
        """`burst` > 1 posts that many frames at a time, every `burst` periods (same rate, fewer wake-ups)."""
        super().__init__()
        self.name = name
        self.modality = modality
        self.period = 1.0 / fps
        self.burst = burst
        self.frames = frames
        self.gate = gate
        self._post = post
        self.captured = 0
        self.kept = 0

    def probe(self) -> str | None:
        return None

    def describe(self) -> str:
        h = self.frames[0].shape
        return f"synthetic {self.modality} {h} at {1 / self.period:g}/s"

    def _session(self) -> bool:
        pacer = Pacer(self.period * self.burst)
        i = 0
        while self._capturing():
            self._running()
            for _ in range(self.burst):
                data = self.frames[i % len(self.frames)]
                i += 1
                mono_ns, ts_ns = time.monotonic_ns(), time.time_ns()
                self.captured += 1
                if self.gate is None or self.gate.keep(data, mono_ns):
                    self.kept += 1
                    self._post(Frame(self.name, self.modality, data, ts_ns, mono_ns))
            self._sleep(pacer.next())  # a wait, not time.sleep: stop is immediate and profiles see it as idle
        return False

    def _counters(self) -> dict[str, int]:
        return {"captured": self.captured, "kept": self.kept}


def noise_windows(n: int, samples: int, seed: int = 1) -> list[np.ndarray]:
    """Distinct non-silent float32 audio windows (pink-ish noise plus a tone)."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / AUDIO_RATE
    out = []
    for k in range(n):
        x = 0.1 * rng.standard_normal(samples) + 0.2 * np.sin(2 * np.pi * (220 + 40 * k) * t)
        out.append(x.astype(np.float32))
    return out


@contextmanager
def running_daemon(
    tmp: Path,
    config_text: str,
    sources: SourceFactory | None = None,
    prepare: Callable[[Daemon], None] | None = None,
    setup: Callable[[Config], None] | None = None,
) -> Iterator[Daemon]:
    """A started `Daemon` for `config_text`; `sources(boxes)` replaces the configured sources; `setup(cfg)` runs
    before the daemon is built (e.g. fills its data dir), `prepare(daemon)` before it starts."""
    from agent import config
    from agent.daemon import Daemon

    cfg = config.load(write_config(tmp, config_text, own_dirs=True))
    if setup is not None:
        setup(cfg)
    daemon = Daemon(cfg, sources=sources)
    if prepare is not None:
        prepare(daemon)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


def thread_cpu(daemon: Any) -> dict[str, float]:
    """CPU seconds (utime + stime, from /proc) per thread of this process, by Python thread name (native
    threads, e.g. OpenVINO's, by their OS name), plus "store process" when the store runs in a child."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        fields = stat.rsplit(")", 1)[1].split()
        name = names.get(int(tid), stat[stat.index("(") + 1 : stat.rindex(")")])
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / TICK
    pid = getattr(daemon.memory.store, "pid", None)
    if pid:
        out["store process"] = cpu_seconds([pid])
    return out


def run_delay(thread: str) -> float:
    """Seconds the named Python thread has spent runnable but waiting for a core (/proc schedstat; 0 if unknown):
    on a loaded machine this, not the pipeline's own work, is where a saturated dispatcher's time goes."""
    tid = next((t.native_id for t in threading.enumerate() if t.name == thread), None)
    try:
        return int(Path(f"/proc/self/task/{tid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def cpu_per_item(before: dict[str, float], after: dict[str, float], items: int, top: int = 8) -> str:
    """'name 1.23 ms, ...': the CPU each thread spent per item between two `thread_cpu` readings, largest first."""
    used = sorted(((after[k] - before.get(k, 0.0), k) for k in after), reverse=True)
    return ", ".join(f"{k} {1000 * v / max(items, 1):.2f} ms" for v, k in used[:top] if v > 0)


@dataclass(frozen=True)
class Rate:
    frames_per_s: float  # frames encoded and handed to the sinks
    published_per_s: float  # bus messages (one per space per frame)
    stored_per_s: float  # Chroma rows written
    cpu_pct: float  # this process and its store process, % of one core
    dropped: int  # frames replaced in the mailboxes (the sources outran the model: saturated)
    mem_dropped: int  # frames the memory writer refused (queue full)
    infer_p50_ms: float | None
    per_source: dict[str, int]  # frames delivered per source in the window


def measure(daemon: Any, modality: str, warmup: float, seconds: float) -> Rate:
    """Sustained rates over `seconds` after `warmup`, read from the daemon's own counters."""
    enc = daemon.encoders[modality]
    boxes = daemon.boxes[modality]
    time.sleep(warmup)
    c0, p0, s0 = enc.stats["completed"], daemon.publisher.sent, daemon.memory.stored
    d0, m0, deliv0 = sum(boxes.dropped.values()), daemon.memory.dropped, dict(boxes.delivered)
    pid = getattr(daemon.memory.store, "pid", None)  # the Chroma process, if the store runs in one
    store = [pid] if pid else []
    t0, cpu0, st0 = time.monotonic(), os.times(), cpu_seconds(store)
    time.sleep(seconds)
    dt, cpu1, st1 = time.monotonic() - t0, os.times(), cpu_seconds(store)
    c1, p1, s1 = enc.stats["completed"], daemon.publisher.sent, daemon.memory.stored
    cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system + st1 - st0) / dt * 100.0
    return Rate(
        frames_per_s=(c1 - c0) / dt,
        published_per_s=(p1 - p0) / dt,
        stored_per_s=(s1 - s0) / dt,
        cpu_pct=cpu,
        dropped=sum(boxes.dropped.values()) - d0,
        mem_dropped=daemon.memory.dropped - m0,
        infer_p50_ms=percentile(enc.latencies(), 50),
        per_source={k: v - deliv0.get(k, 0) for k, v in boxes.delivered.items()},
    )


def device_config(device: str, hint: str = "LATENCY", cpu_threads: int | None = None) -> str:
    """A config with only the device section set (cpu_threads None keeps the default)."""
    text = f'[device]\nname = "{device}"\nhint = "{hint}"\n'
    if cpu_threads is not None:
        text += f"cpu_threads = {cpu_threads}\n"
    return text
