"""The daemon's status as typed records: what `sensorium status`, the `sys.status` heartbeat, Prometheus and
the query service's `status` op read.

`to_dict` gives the JSON every reader has seen so far (`status --json`, the heartbeat body); `from_dict`
reads it back, for the CLI, which gets it over the query endpoint. Readers use fields, not `.get()` on
nested dicts; what only one kind of source counts (screen `excluded`/`masked`, camera `grabbed`/
`reconnects`, microphone `samples_in`/`overflows`, ...) is that source's `extras`, kept in the JSON at
the same level as the shared counters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from agent.telemetry.metrics import percentile

Rate = dict[str, float | None]  # per second over the last ~10 s: {"in", "kept", "dropped"}


def _known(cls: type, d: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of `d` that are fields of dataclass `cls` (a newer daemon may send more)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in d.items() if k in names}


@dataclass
class SourceStatus:
    state: str
    captured: int
    kept: int
    errors: int = 0
    last_error: str | None = None
    gated: int | None = None  # None: the source has no gate (bench's synthetic sources)
    paused_until: float | None = None  # unix s, while a timed pause runs
    extras: dict[str, Any] = field(default_factory=dict)  # counters only this kind of source has
    # the pipeline's view of the source
    dropped: int = 0  # replaced in the mailbox before inference took them
    discarded: int = 0  # waiting or in flight when the source was paused
    rejected: int = 0  # refused by the encoder's input check
    queue: int = 0  # waiting in the mailbox now
    fps: Rate = field(default_factory=dict)

    SHARED: ClassVar = ("state", "captured", "kept", "errors", "last_error", "gated", "paused_until")
    PIPELINE: ClassVar = ("dropped", "discarded", "rejected", "queue", "fps")

    @classmethod
    def of(cls, stats: Mapping[str, Any], **pipeline: Any) -> SourceStatus:
        """From a source's `stats()` (Source protocol) and the pipeline's counters for it."""
        shared = {k: stats[k] for k in cls.SHARED if k in stats}
        extras = {k: v for k, v in stats.items() if k not in cls.SHARED and k not in cls.PIPELINE}
        return cls(**shared, extras=extras, **pipeline)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"state": self.state, "captured": self.captured, "kept": self.kept}
        if self.gated is not None:
            out["gated"] = self.gated
        out |= {"errors": self.errors, "last_error": self.last_error, **self.extras}
        if self.paused_until is not None:
            out["paused_until"] = self.paused_until
        return out | {k: getattr(self, k) for k in self.PIPELINE}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SourceStatus:
        extras = {k: v for k, v in d.items() if k not in cls.SHARED and k not in cls.PIPELINE}
        return cls(**_known(cls, d) | {"extras": extras})


@dataclass
class EncoderStatus:
    model: str
    submitted: int = 0
    completed: int = 0
    bad_frames: int = 0
    errors: int = 0
    infer_p50_ms: float | None = None
    infer_p95_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "submitted": self.submitted,
            "completed": self.completed,
            "bad_frames": self.bad_frames,
            "errors": self.errors,
            "model": self.model,
            "infer_p50_ms": self.infer_p50_ms,
            "infer_p95_ms": self.infer_p95_ms,
        }

    @classmethod
    def of(cls, model: str, stats: Mapping[str, int], recent_ms: list[float]) -> EncoderStatus:
        """From an encoder's `stats` (Encoder protocol) and its recent inference times."""
        p50, p95 = percentile(recent_ms, 50), percentile(recent_ms, 95)
        return cls(model, **_known(cls, stats), infer_p50_ms=p50, infer_p95_ms=p95)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EncoderStatus:
        return cls(**_known(cls, d))


@dataclass
class DispatcherStatus:
    rejected: int = 0  # frames the encoder's input check refused
    errors: int = 0  # frames whose inference could not be started


@dataclass
class LatencyStatus:
    """Capture → handed to the sinks, over recent results, in ms (None before the first)."""

    p50: float | None = None
    p95: float | None = None


@dataclass
class PublisherStatus:
    sent: int = 0
    dropped: int = 0
    queued: int = 0


@dataclass
class FanOutStatus:
    queued: int = 0  # results waiting for thumbnails and the sinks
    dropped: int = 0  # results refused because that queue was full
    errors: int = 0  # hand-offs that failed


@dataclass
class MemoryStatus:
    received: int = 0
    stored: int = 0
    queued: int = 0
    dropped: int = 0
    rejected: int = 0
    failed: int = 0
    lost: int = 0
    purged: int = 0
    recovered: int = 0
    spool_rows: int = 0
    spool_bytes: int = 0
    store_lag_s: float | None = 0.0
    buckets: int | None = None  # None: the store process did not answer
    store_process: int | None = None  # pid of the store's process; None: the store runs in the daemon
    store_starts: int = 0
    thumb_errors: int = 0
    retention_errors: int = 0
    keyword_errors: int = 0  # keyword index (sinks/memory/keywords.py) writes or reads that failed
    disk_bytes: int | None = None  # the data dir on disk, measured every few minutes (None: not yet)
    budget_bytes: int = 0  # store.retention_bytes (0: no cap)
    retention_days: float = 0.0  # store.retention_days (0: keep forever)


@dataclass
class ServiceStatus:
    served: int = 0
    bad_requests: int = 0
    bad_frames: int = 0


@dataclass
class TextStatus:
    """The screen-text worker (agent/text/imagetext.py): frames offered, read, and what came of them."""

    state: str = "off"  # "on", "off" (config), or why it could not start (the model is missing, ...)
    device: str | None = None
    offered: int = 0  # kept frames handed to the worker
    skipped: int = 0  # replaced by a newer frame before the worker took them
    read: int = 0  # frames (their changed bands) read
    unchanged: int = 0  # frames taken but identical to the last one read
    lines: int = 0
    memories: int = 0  # text memories handed to the result stage
    redacted: int = 0  # secrets replaced before anything was stored or published
    errors: int = 0
    discarded: int = 0  # waiting when a forget came
    waiting: int = 0
    p50_ms: float | None = None  # read + embed time of one frame
    p95_ms: float | None = None


@dataclass
class SpeechStatus:
    """The speech-transcript worker (agent/speech/worker.py): utterances cut, transcribed, and what came of them."""

    state: str = "off"  # "on", "off" (config), or why it could not start (the model is missing, ...)
    device: str | None = None
    model: str | None = None
    windows: int = 0  # encoded microphone windows the segmenter read
    gaps: int = 0  # jumps in capture time (windows dropped as silent, or lost): silence to the segmenter
    utterances: int = 0  # cut and queued for the model
    short: int = 0  # speech too short to transcribe (clicks)
    max_cuts: int = 0  # utterances cut at max_s
    dropped: int = 0  # the oldest waiting one, when the queue was full
    discarded: int = 0  # open or waiting when a pause or forget came
    transcribed: int = 0
    gated: dict[str, int] = field(default_factory=dict)  # transcripts not stored, by reason (agent/speech/gates.py)
    trimmed: int = 0  # transcripts stored with a trailing loop cut off
    memories: int = 0  # text memories handed to the result stage
    redacted: int = 0
    bad_audio: int = 0  # utterances with NaN/inf samples (not transcribed)
    clipped: int = 0
    dc_offset: int = 0
    errors: int = 0
    last_error: str | None = None
    waiting: int = 0
    audio_s: float = 0.0  # seconds of audio transcribed
    p50_ms: float | None = None  # transcription of one utterance
    p95_ms: float | None = None
    lag_p50_ms: float | None = None  # end of an utterance → its memory to the result stage
    lag_p95_ms: float | None = None


@dataclass
class WatchStatus:
    """Standing queries (agent/watch): how many, and what their matches did."""

    watches: int = 0
    fired: int = 0  # match.<NAME> messages published
    suppressed: int = 0  # matches inside a watch's cooldown (not published)
    errors: int = 0


@dataclass
class HealthStatus:
    """One encoder stream's health (agent/telemetry/health.py), keyed "<modality>:<space>" in Status.health."""

    state: str = "ok"  # ok | nan | constant | collapsed
    vectors: int = 0
    nan: int = 0  # vectors with NaN/inf or zero norm
    identical: int = 0  # identical vectors for different inputs (consecutive pairs)
    spread: float | None = None  # mean pairwise cosine of recent, clearly different inputs


@dataclass
class WebStatus:
    """The page and HTTP API (agent/web)."""

    url: str | None = None  # without its token; None when off
    requests: int = 0  # /api requests that reached an op
    refused: int = 0  # no or wrong token, another origin
    bad: int = 0  # not an op, not JSON, too big, a write as GET, a thumbnail outside the folder
    clients: int = 0  # live-stream clients now
    events: int = 0  # events handed to the stream
    dropped: int = 0  # events slow stream clients lost


@dataclass
class MomentStatus:
    """Moments (agent/moments.py): one fused vector per slice of time from every sense."""

    state: str = "off"  # "on" or "off" (config)
    interval_s: float | None = None
    vectors: int = 0  # text-space vectors taken into slices
    emitted: int = 0  # moments handed to the result stage (bus and memory)
    pending: int = 0  # slices still open (within their grace)
    late: int = 0  # vectors that arrived after their slice was closed (left out)
    empty: int = 0  # closed slices with nothing that weighs (no moment)
    forgotten: int = 0  # pending slices dropped because a forget overlapped them


@dataclass
class Status:
    uptime_s: float
    device: dict[str, str]  # modality (and "text") → the device its model runs on
    sources: dict[str, SourceStatus]
    mailbox_depth: dict[str, int]
    encoders: dict[str, EncoderStatus]
    dispatchers: dict[str, DispatcherStatus]
    latency_ms: LatencyStatus
    publisher: PublisherStatus
    memory: MemoryStatus
    service: ServiceStatus
    fanout: FanOutStatus = field(default_factory=FanOutStatus)
    metrics: str | None = None  # where Prometheus scrapes, None when off
    web: WebStatus = field(default_factory=WebStatus)
    text: TextStatus = field(default_factory=TextStatus)
    speech: SpeechStatus = field(default_factory=SpeechStatus)
    watch: WatchStatus = field(default_factory=WatchStatus)
    health: dict[str, HealthStatus] = field(default_factory=dict)
    health_dropped: int = 0  # results the health monitor had no room for (not judged)
    moments: MomentStatus = field(default_factory=MomentStatus)

    def to_dict(self) -> dict[str, Any]:
        """The JSON of `status --json` and of the heartbeat's `status`."""
        return {
            "uptime_s": self.uptime_s,
            "device": dict(self.device),
            "sources": {n: s.to_dict() for n, s in self.sources.items()},
            "mailbox_depth": dict(self.mailbox_depth),
            "encoders": {m: e.to_dict() for m, e in self.encoders.items()},
            "dispatchers": {m: _flat(d) for m, d in self.dispatchers.items()},
            "latency_ms": _flat(self.latency_ms),
            "publisher": _flat(self.publisher),
            "memory": _flat(self.memory),
            "service": _flat(self.service),
            "fanout": _flat(self.fanout),
            "metrics": self.metrics,
            "web": _flat(self.web),
            "text": _flat(self.text),
            "speech": _flat(self.speech),
            "watch": _flat(self.watch),
            "health": {k: _flat(h) for k, h in self.health.items()},
            "health_dropped": self.health_dropped,
            "moments": _flat(self.moments),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Status:
        return cls(
            uptime_s=d["uptime_s"],
            device=dict(d.get("device", {})),
            sources={n: SourceStatus.from_dict(s) for n, s in d.get("sources", {}).items()},
            mailbox_depth=dict(d.get("mailbox_depth", {})),
            encoders={m: EncoderStatus.from_dict(e) for m, e in d.get("encoders", {}).items()},
            dispatchers={
                m: DispatcherStatus(**_known(DispatcherStatus, x)) for m, x in d.get("dispatchers", {}).items()
            },
            latency_ms=LatencyStatus(**_known(LatencyStatus, d.get("latency_ms", {}))),
            publisher=PublisherStatus(**_known(PublisherStatus, d.get("publisher", {}))),
            memory=MemoryStatus(**_known(MemoryStatus, d.get("memory", {}))),
            service=ServiceStatus(**_known(ServiceStatus, d.get("service", {}))),
            fanout=FanOutStatus(**_known(FanOutStatus, d.get("fanout", {}))),
            metrics=d.get("metrics"),
            web=WebStatus(**_known(WebStatus, d.get("web") or {})),
            text=TextStatus(**_known(TextStatus, d.get("text", {}))),
            speech=SpeechStatus(**_known(SpeechStatus, d.get("speech", {}))),
            watch=WatchStatus(**_known(WatchStatus, d.get("watch", {}))),
            health={k: HealthStatus(**_known(HealthStatus, h)) for k, h in d.get("health", {}).items()},
            health_dropped=d.get("health_dropped", 0),
            moments=MomentStatus(**_known(MomentStatus, d.get("moments", {}))),
        )


def _flat(record: Any) -> dict[str, Any]:
    return {f.name: getattr(record, f.name) for f in fields(record)}
