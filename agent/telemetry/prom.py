"""Prometheus text metrics on loopback: a custom collector that reads the daemon's own counters at scrape time.

Nothing is counted twice: every value comes from the same `Status` (agent/status.py) that `sensorium status`
and the `sys.status` heartbeat show, plus the latency histograms the result stage totals. A scrape costs
one status() call; with no scraper there is no cost at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector, CollectorRegistry

from agent.status import EncoderStatus, SourceStatus, Status
from agent.telemetry.metrics import Latencies

log = logging.getLogger(__name__)

P = "sensorium_"

Num = int | float | None
# per source: (metric, help, value); counters since start. None: this kind of source does not count it
SOURCE_COUNTERS: tuple[tuple[str, str, Callable[[SourceStatus], Num]], ...] = (
    ("frames_captured", "Frames (or audio windows) taken from the sensor.", lambda s: s.captured),
    ("frames_kept", "Frames that passed the change/silence gate.", lambda s: s.kept),
    ("frames_gated", "Frames skipped by the gate (no change, or silence).", lambda s: s.gated),
    ("frames_dropped", "Frames replaced in the mailbox before inference could take them.", lambda s: s.dropped),
    ("frames_rejected", "Corrupt or odd frames (empty, wrong dtype/channels, NaN) skipped.", lambda s: s.rejected),
    ("frames_discarded", "Frames waiting or in flight when their source was paused.", lambda s: s.discarded),
    (
        "frames_excluded",
        "Screen frames not grabbed because an excluded window was visible.",
        lambda s: s.extras.get("excluded"),
    ),
    ("frames_masked", "Screen frames with excluded rectangles blacked out.", lambda s: s.extras.get("masked")),
    ("source_errors", "Sensor errors (display lost, camera gone, sound server died).", lambda s: s.errors),
)
# per encoder: (metric, help, value)
ENCODER_COUNTERS: tuple[tuple[str, str, Callable[[EncoderStatus], int]], ...] = (
    ("inferences", "Inferences finished.", lambda e: e.completed),
    ("inference_errors", "Inferences that failed.", lambda e: e.errors),
    ("inference_bad_frames", "Frames the encoder's input check refused.", lambda e: e.bad_frames),
)
# daemon-wide: (metric, help, value)
COUNTERS: tuple[tuple[str, str, Callable[[Status], Num]], ...] = (
    ("published_messages", "Messages sent on the bus (vectors and sys.* heartbeats).", lambda s: s.publisher.sent),
    ("publish_dropped", "Messages dropped because the publisher queue was full.", lambda s: s.publisher.dropped),
    ("store_writes", "Rows written to the store.", lambda s: s.memory.stored),
    ("store_failed", "Rows whose first write failed (they went to the spool).", lambda s: s.memory.failed),
    ("store_dropped", "Rows refused because the writer queue was full.", lambda s: s.memory.dropped),
    ("store_lost", "Rows neither stored nor spooled.", lambda s: s.memory.lost),
    (
        "store_process_starts",
        "Store processes started (more than one: one died or hung).",
        lambda s: s.memory.store_starts,
    ),
    ("encoder_health_dropped", "Results the encoder health monitor had no room for.", lambda s: s.health_dropped),
    ("watch_matches", "match.<NAME> messages published by watches.", lambda s: s.watch.fired),
    ("watch_suppressed", "Watch matches inside the watch's cooldown (not published).", lambda s: s.watch.suppressed),
    (
        "moments_emitted",
        "Moments (one fused vector per slice of time) handed to bus and memory.",
        lambda s: s.moments.emitted,
    ),
    (
        "moments_late",
        "Vectors that reached a moment's slice after it was closed (left out of it).",
        lambda s: s.moments.late,
    ),
    (
        "moments_forgotten",
        "Open moment slices dropped because a forget overlapped them.",
        lambda s: s.moments.forgotten,
    ),
    (
        "results_dropped",
        "Results dropped because the queue before thumbnails and sinks was full.",
        lambda s: s.fanout.dropped,
    ),
)
GAUGES: tuple[tuple[str, str, Callable[[Status], Num]], ...] = (
    ("store_queue", "Rows waiting for the writer thread.", lambda s: s.memory.queued),
    ("spool_depth", "Rows waiting in the on-disk spool for the store to come back.", lambda s: s.memory.spool_rows),
    ("spool_bytes", "Size of the on-disk spool.", lambda s: s.memory.spool_bytes),
    ("store_lag_seconds", "Age of the oldest row not yet in the store.", lambda s: s.memory.store_lag_s),
    ("results_queue", "Results waiting for thumbnails and the sinks.", lambda s: s.fanout.queued),
    ("watches", "Standing queries (watches) configured.", lambda s: s.watch.watches),
)
SERVICE_COUNTERS: tuple[tuple[str, str, Callable[[Status], Num]], ...] = (
    ("requests", "Query/control requests answered.", lambda s: s.service.served),
    ("bad_requests", "Malformed or refused requests.", lambda s: s.service.bad_requests),
)


class MetricsError(RuntimeError):
    """The metrics port cannot be served (in use, or not allowed)."""


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class DaemonCollector(Collector):
    def __init__(self, status: Callable[[], Status], latencies: Latencies) -> None:
        self.status = status
        self.latencies = latencies

    def collect(self) -> Iterator[Metric]:
        st = self.status()
        yield from self._sources(st.sources)
        yield from self._encoders(st)
        yield from self._health(st)
        for name, doc, value in COUNTERS:
            if _num(v := value(st)):
                yield CounterMetricFamily(P + name, doc, value=v)
        for name, doc, value in GAUGES:
            if _num(v := value(st)):
                yield GaugeMetricFamily(P + name, doc, value=v)
        for name, doc, value in SERVICE_COUNTERS:
            yield CounterMetricFamily(P + name, doc, value=value(st))
        hist = HistogramMetricFamily(P + "pipeline_latency_seconds", "Capture to hand-off to the sinks.")
        buckets, total = self.latencies.pipeline.snapshot()
        hist.add_metric([], buckets, total)
        yield hist
        yield GaugeMetricFamily(P + "uptime_seconds", "Seconds since the daemon started.", value=st.uptime_s)

    @staticmethod
    def _sources(sources: dict[str, SourceStatus]) -> Iterator[Metric]:
        for name, doc, value in SOURCE_COUNTERS:
            fam = CounterMetricFamily(P + name, doc, labels=["source"])
            for src, s in sources.items():
                if _num(v := value(s)):
                    fam.add_metric([src], v)
            yield fam
        depth = GaugeMetricFamily(P + "mailbox_depth", "Frames waiting for inference.", labels=["source"])
        state = GaugeMetricFamily(P + "source_state", "1 for the state each source is in.", labels=["source", "state"])
        for src, s in sources.items():
            depth.add_metric([src], s.queue)
            state.add_metric([src, s.state], 1)
        yield depth
        yield state

    def _encoders(self, st: Status) -> Iterator[Metric]:
        labels = ["model", "modality"]
        model = {m: e.model for m, e in st.encoders.items()}
        for name, doc, value in ENCODER_COUNTERS:
            fam = CounterMetricFamily(P + name, doc, labels=labels)
            for m, e in st.encoders.items():
                fam.add_metric([e.model, m], value(e))
            yield fam
        fam = CounterMetricFamily(P + "submit_errors", "Frames whose inference could not be started.", labels=labels)
        for m, d in st.dispatchers.items():
            fam.add_metric([model.get(m, m), m], d.errors)
        yield fam
        hist = HistogramMetricFamily(P + "inference_latency_seconds", "Inference time per frame.", labels=labels)
        for m, h in self.latencies.inference.items():
            buckets, total = h.snapshot()
            hist.add_metric([model.get(m, m), m], buckets, total)
        yield hist

    @staticmethod
    def _health(st: Status) -> Iterator[Metric]:
        """Per encoder stream ("<modality>:<space>"): its health state, bad and identical vectors, spread."""
        labels = ["modality", "space"]
        state = GaugeMetricFamily(
            P + "encoder_health", "1 for the state each encoder stream is in (ok, nan, constant, collapsed).",
            labels=[*labels, "state"],
        )  # fmt: skip
        nan = CounterMetricFamily(P + "encoder_bad_vectors", "Vectors with NaN/inf or zero norm.", labels=labels)
        same = CounterMetricFamily(
            P + "encoder_identical_vectors", "Identical vectors for different inputs (pairs in a row).", labels=labels
        )
        spread = GaugeMetricFamily(
            P + "encoder_spread", "Mean pairwise cosine of recent vectors of clearly different inputs.", labels=labels
        )
        for key, h in st.health.items():
            modality, _, space = key.partition(":")
            state.add_metric([modality, space, h.state], 1)
            nan.add_metric([modality, space], h.nan)
            same.add_metric([modality, space], h.identical)
            if h.spread is not None:
                spread.add_metric([modality, space], h.spread)
        yield from (state, nan, same, spread)


class MetricsServer:
    """HTTP /metrics on host:port (port 0 = any free one) on its own daemon thread."""

    def __init__(self, host: str, port: int, collector: Collector) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)
        self.host, self.port = host, port
        self._httpd = None

    def start(self) -> None:
        try:
            self._httpd, _ = start_http_server(self.port, self.host, self.registry)
        except OSError as e:
            raise MetricsError(
                f"metrics: cannot listen on {self.host}:{self.port}: {e.strerror or e} "
                "(another sensorium or exporter there? set [metrics] port = another port, 0, or enabled = false)"
            ) from None
        self.port = self._httpd.server_address[1]
        log.info("metrics at %s", self.url)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
