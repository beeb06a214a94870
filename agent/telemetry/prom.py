"""Prometheus text metrics on loopback: a custom collector that reads the daemon's own counters at scrape time.

Nothing is counted twice: every value comes from the same `status()` dict that `sensorium status` and the
`sys.status` heartbeat show, plus the latency histograms the daemon totals on the result path. A scrape
costs one status() call; with no scraper there is no cost at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector, CollectorRegistry

from agent.telemetry.metrics import Histogram

log = logging.getLogger(__name__)

P = "sensorium_"

# status()["sources"][name] key → (metric, help); counters since start, per source
SOURCE_COUNTERS = {
    "captured": ("frames_captured", "Frames (or audio windows) taken from the sensor."),
    "kept": ("frames_kept", "Frames that passed the change/silence gate."),
    "gated": ("frames_gated", "Frames skipped by the gate (no change, or silence)."),
    "dropped": ("frames_dropped", "Frames replaced in the mailbox before inference could take them."),
    "rejected": ("frames_rejected", "Corrupt or odd frames (empty, wrong dtype/channels, NaN) skipped."),
    "discarded": ("frames_discarded", "Frames waiting or in flight when their source was paused."),
    "excluded": ("frames_excluded", "Screen frames not grabbed because an excluded window was visible."),
    "masked": ("frames_masked", "Screen frames with excluded rectangles blacked out."),
    "errors": ("source_errors", "Sensor errors (display lost, camera gone, sound server died)."),
}
# status()["encoders"][modality] key → (metric, help)
ENCODER_COUNTERS = {
    "completed": ("inferences", "Inferences finished."),
    "errors": ("inference_errors", "Inferences that failed."),
    "bad_frames": ("inference_bad_frames", "Frames the encoder's input check refused."),
}
PUBLISHER_COUNTERS = {
    "sent": ("published_messages", "Messages sent on the bus (vectors and sys.* heartbeats)."),
    "dropped": ("publish_dropped", "Messages dropped because the publisher queue was full."),
}
MEMORY_COUNTERS = {
    "stored": ("store_writes", "Rows written to the store."),
    "failed": ("store_failed", "Rows whose first write failed (they went to the spool)."),
    "dropped": ("store_dropped", "Rows refused because the writer queue was full."),
    "lost": ("store_lost", "Rows neither stored nor spooled."),
    "store_starts": ("store_process_starts", "Store processes started (more than one: one died or hung)."),
}
MEMORY_GAUGES = {
    "queued": ("store_queue", "Rows waiting for the writer thread."),
    "spool_rows": ("spool_depth", "Rows waiting in the on-disk spool for the store to come back."),
    "spool_bytes": ("spool_bytes", "Size of the on-disk spool."),
    "store_lag_s": ("store_lag_seconds", "Age of the oldest row not yet in the store."),
}


@dataclass
class Latencies:
    """Histograms the daemon feeds from its result path."""

    inference: dict[str, Histogram] = field(default_factory=dict)  # per modality
    pipeline: Histogram = field(default_factory=Histogram)  # capture → handed to the sinks


class MetricsError(RuntimeError):
    """The metrics port cannot be served (in use, or not allowed)."""


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class DaemonCollector(Collector):
    def __init__(self, status: Callable[[], dict], latencies: Latencies) -> None:
        self.status = status
        self.latencies = latencies

    def collect(self) -> Iterator[Metric]:
        st = self.status()
        yield from self._sources(st.get("sources", {}))
        yield from self._encoders(st.get("encoders", {}), st.get("dispatchers", {}))
        yield from self._flat(st.get("publisher", {}), PUBLISHER_COUNTERS, {})
        yield from self._flat(st.get("memory", {}), MEMORY_COUNTERS, MEMORY_GAUGES)
        svc = st.get("service", {})
        for key, name, doc in (
            ("served", "requests", "Query/control requests answered."),
            ("bad_requests", "bad_requests", "Malformed or refused requests."),
        ):
            if _num(svc.get(key)):
                yield CounterMetricFamily(P + name, doc, value=svc[key])
        hist = HistogramMetricFamily(P + "pipeline_latency_seconds", "Capture to hand-off to the sinks.")
        buckets, total = self.latencies.pipeline.snapshot()
        hist.add_metric([], buckets, total)
        yield hist
        yield GaugeMetricFamily(P + "uptime_seconds", "Seconds since the daemon started.", value=st.get("uptime_s", 0))

    def _sources(self, sources: dict[str, dict]) -> Iterator[Metric]:
        for key, (name, doc) in SOURCE_COUNTERS.items():
            fam = CounterMetricFamily(P + name, doc, labels=["source"])
            for src, s in sources.items():
                if _num(s.get(key)):
                    fam.add_metric([src], s[key])
            yield fam
        depth = GaugeMetricFamily(P + "mailbox_depth", "Frames waiting for inference.", labels=["source"])
        state = GaugeMetricFamily(P + "source_state", "1 for the state each source is in.", labels=["source", "state"])
        for src, s in sources.items():
            depth.add_metric([src], s.get("queue", 0))
            state.add_metric([src, str(s.get("state", "unknown"))], 1)
        yield depth
        yield state

    def _encoders(self, encoders: dict[str, dict], dispatchers: dict[str, dict]) -> Iterator[Metric]:
        labels = ["model", "modality"]
        for key, (name, doc) in ENCODER_COUNTERS.items():
            fam = CounterMetricFamily(P + name, doc, labels=labels)
            for m, e in encoders.items():
                if _num(e.get(key)):
                    fam.add_metric([str(e.get("model", m)), m], e[key])
            yield fam
        fam = CounterMetricFamily(P + "submit_errors", "Frames whose inference could not be started.", labels=labels)
        for m, d in dispatchers.items():
            if _num(d.get("errors")):
                fam.add_metric([str(encoders.get(m, {}).get("model", m)), m], d["errors"])
        yield fam
        hist = HistogramMetricFamily(P + "inference_latency_seconds", "Inference time per frame.", labels=labels)
        for m, h in self.latencies.inference.items():
            buckets, total = h.snapshot()
            hist.add_metric([str(encoders.get(m, {}).get("model", m)), m], buckets, total)
        yield hist

    @staticmethod
    def _flat(d: dict, counters: dict, gauges: dict) -> Iterator[Metric]:
        for key, (name, doc) in counters.items():
            if _num(d.get(key)):
                yield CounterMetricFamily(P + name, doc, value=d[key])
        for key, (name, doc) in gauges.items():
            if _num(d.get(key)):
                yield GaugeMetricFamily(P + name, doc, value=d[key])


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
