"""Per-second rates of the daemon's counters over the last few seconds, for `sensorium status`.

Counters are totals since start, so a one-off status call cannot tell what is happening now from them;
a small thread samples them once a second and a rate is the difference across the window.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

Counts = dict[str, dict[str, int]]  # e.g. {"screen0": {"in": 812, "kept": 40, "dropped": 0}}


class Rates:
    def __init__(self, read: Callable[[], Counts], window_s: float = 10.0, every_s: float = 1.0) -> None:
        self._read = read
        self.window_s = window_s
        self.every_s = every_s
        self._samples: deque[tuple[float, Counts]] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rates", daemon=True)

    def start(self) -> None:
        self.sample()
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.sample()

    def sample(self) -> None:
        now = time.monotonic()
        counts = self._read()
        with self._lock:
            self._samples.append((now, counts))
            while len(self._samples) > 1 and self._samples[1][0] <= now - self.window_s:
                self._samples.popleft()  # keep one sample at or just past the window's start

    def per_s(self) -> dict[str, dict[str, float | None]]:
        """Rate of every counter since the oldest sample in the window; None with under half a second of history."""
        now, counts = time.monotonic(), self._read()
        with self._lock:
            t0, old = self._samples[0] if self._samples else (now, {})
        span = now - t0
        out: dict[str, dict[str, float | None]] = {}
        for name, values in counts.items():
            before = old.get(name, {})
            out[name] = {
                k: round((v - before[k]) / span, 2) if span >= 0.5 and k in before else None for k, v in values.items()
            }
        return out


# Latency buckets in seconds: inference on a laptop NPU/CPU takes 1 ms to a few hundred ms; capture → sinks
# adds mailbox waits, so the top buckets reach seconds.
BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Histogram:
    """Cumulative latency histogram (Prometheus semantics), fed from the result path, read at scrape time.

    The encoders keep only recent latencies (for p50/p95); a scrape needs counts since start, so this is
    the one place they are totalled.
    """

    def __init__(self, buckets: tuple[float, ...] = BUCKETS_S) -> None:
        self.buckets = buckets
        self._counts = [0] * (len(buckets) + 1)  # the last slot is +Inf
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        i = next((i for i, b in enumerate(self.buckets) if seconds <= b), len(self.buckets))
        with self._lock:
            self._counts[i] += 1
            self._sum += seconds

    def snapshot(self) -> tuple[list[tuple[str, int]], float]:
        """([(le, cumulative count), ..., ("+Inf", total)], sum)."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        out, acc = [], 0
        for le, n in zip([*map(str, self.buckets), "+Inf"], counts, strict=True):
            acc += n
            out.append((le, acc))
        return out, total


@dataclass
class Latencies:
    """Histograms the result stage (agent/pipeline/fanout.py) feeds and a Prometheus scrape reads."""

    inference: dict[str, Histogram] = field(default_factory=dict)  # per modality
    pipeline: Histogram = field(default_factory=Histogram)  # capture → handed to the sinks


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile of recent values, to 0.01 (None when there are none yet), for status."""
    return round(float(np.percentile(values, q)), 2) if values else None
