"""Wires config into sources → mailboxes → dispatchers → encoders → result stage → sinks, and runs until stopped.

Wiring only: every collaborator is built here, once, with what it needs; none is patched afterwards. Start
order is sinks first, sources last; stop order is the reverse, so every captured frame that reached a
mailbox is encoded, published and written before the process exits.
"""

from __future__ import annotations

import logging
import threading
import time

import cv2
import numpy as np

from agent.moments import straddled
from agent.pipeline.dispatcher import Dispatcher, Encoder
from agent.pipeline.fanout import FanOut
from agent.pipeline.mailbox import Mailboxes
from agent.query.images import BadRequest, encode_image, image_of
from agent.query.service import Service
from agent.status import (
    DispatcherStatus,
    EncoderStatus,
    FanOutStatus,
    HealthStatus,
    LatencyStatus,
    MemoryStatus,
    MomentStatus,
    PublisherStatus,
    ServiceStatus,
    SourceStatus,
    SpeechStatus,
    Status,
    TextStatus,
    WatchStatus,
    WebStatus,
)
from agent.telemetry.health import Health
from agent.telemetry.heartbeat import Heartbeat
from agent.telemetry.logs import kv
from agent.telemetry.metrics import Counts, Histogram, Latencies, Rates, percentile
from agent.telemetry.prom import DaemonCollector, MetricsServer
from agent.watch import Watches
from agent.web.app import thumb_links
from agent.web.stream import Stream
from encoders.audio import AudioEncoder
from encoders.clip import ZeroShot
from encoders.image import ImageEncoder
from encoders.modelstore import ModelStore
from encoders.runtime import Runtime, RuntimeConfig
from encoders.text import TextEncoder
from sinks.bus.keys import CurveServer
from sinks.bus.publisher import Publisher

from .config import Config, bus_endpoint, query_endpoint
from .lock import DataDirLock, private_dir
from .parts import (
    SourceFactory,
    clip_text,
    configured_sources,
    image_text,
    memory,
    moment_sink,
    speech_text,
    web_face,
)
from .sources.available import NoSources, available, format_table

log = logging.getLogger(__name__)

__all__ = ["Daemon", "NoSources", "SourceFactory", "configured_sources"]


class Daemon:
    def __init__(self, cfg: Config, sources: SourceFactory | None = None) -> None:
        """`sources`: builds the sources from the mailboxes (benchmarks inject synthetic ones); None: the
        configured sensors. Raises NoSources when none of them opens."""
        self.cfg = cfg
        d = cfg.daemon
        private_dir(d.data_dir)
        # before any store is opened or socket bound: a second daemon on this data dir stops here
        self.lock = DataDirLock(d.data_dir).acquire()
        private_dir(d.runtime_dir)
        if d.log_level != "DEBUG":  # OpenCV warns on every failed camera reopen; our own log says it once
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        store = ModelStore(d.cache_dir)

        # one mailbox set per model: a slow audio window never waits behind a screen frame
        self.boxes = {"image": Mailboxes(), "audio": Mailboxes()}
        build = sources or (lambda boxes: configured_sources(cfg, boxes, store))
        self.sources, self.table = available(build(self.boxes))
        if not self.sources:
            raise NoSources(format_table(self.table) if self.table else "no sources are enabled in the config")
        for src in self.sources:
            # video: the latest frame wins; audio: a short queue, because every window is different sound
            self.boxes[src.modality].add(src.name, depth=cfg.microphone.queue if src.modality == "audio" else 1)
        modalities = {src.modality for src in self.sources}

        self.memory = memory(cfg)
        # CURVE keys are read here (a missing key stops the start); the authenticator starts with the sockets
        self.curve = CurveServer(d.keys_dir) if cfg.bus.curve or cfg.query.curve else None
        bus_curve, query_curve = (self.curve if cfg.bus.curve else None), (self.curve if cfg.query.curve else None)
        self.publisher = Publisher(bus_endpoint(cfg), cfg.bus.send_hwm, cfg.bus.queue_size, curve=bus_curve)
        self.latencies = Latencies({m: Histogram() for m in self.boxes if m in modalities})
        dev = cfg.device
        self.runtime = Runtime(RuntimeConfig(dev.name, dev.hint, dev.cpu_threads, dev.strict, d.cache_dir / "ov-cache"))
        self.text = TextEncoder(self.runtime, store.require(cfg.models.text))
        # a CLIP-family image model brings its text tower: queries and zero-shot labels in its space
        self.clip_text = clip_text(self.runtime, store, cfg.models.image, need="image" in modalities)
        texts = [self.text, *([self.clip_text] if self.clip_text else [])]  # a query is answered in each space

        # the page's live stream: a sink like the others, and it hears the bus's match and forget announcements
        self.stream = Stream(thumb_links(self.memory.thumbs.root)) if cfg.web.enabled else None
        # standing queries and the encoders' health look at every result, after the publisher and memory
        probes = self._image_probes
        self.watches = Watches(d.data_dir, texts, self._announce, self.publisher.redact, image_probes=probes)
        self.health = Health(derived_spaces={self.text.space})  # non-text vectors there are ConSE
        # moments: a sink of the result stage that puts one fused vector per slice of time back into it
        self.moments = moment_sink(cfg, self.text.space, lambda item: self.fanout.put(item))
        boxes_of = {src.name: self.boxes[src.modality] for src in self.sources}
        sinks = (self.publisher, self.memory, self.watches, self.health, self.moments, self.stream)
        sinks = tuple(s for s in sinks if s is not None)
        self.fanout = FanOut(boxes_of, self.memory.thumbs, sinks, self.latencies)
        self.encoders: dict[str, Encoder] = {}
        if "image" in modalities:
            labeler = ZeroShot(self.clip_text, list(cfg.models.labels)) if self.clip_text else None
            image_model = store.require(cfg.models.image)
            self.encoders["image"] = ImageEncoder(self.runtime, image_model, self.fanout.put, labeler=labeler)
        # speech transcripts: utterances cut from the audio encoder's VAD, read by a worker of their own
        self.mics = {s.name for s in self.sources if s.modality == "audio"}
        n_mics = len(self.mics)
        self.speech, self.speech_state = speech_text(cfg, self.runtime, store, self.text, self.fanout.put, n_mics)
        if "audio" in modalities:
            hear = self.speech.hear if self.speech is not None else None
            audio_model = store.require(cfg.models.audio)
            self.encoders["audio"] = AudioEncoder(self.runtime, audio_model, self.fanout.put, on_speech=hear)
        self.dispatchers = [Dispatcher(self.boxes[m], enc, m) for m, enc in self.encoders.items()]
        # screen text: read from the kept frames of the sources the config names (after exclusions and gate)
        readers = {cfg.screen.name: cfg.ocr.screen, cfg.camera.name: cfg.ocr.camera}
        tapped = [s.name for s in self.sources if s.modality == "image" and readers.get(s.name)]
        self.image_text, self.text_state = image_text(cfg, self.runtime, store, self.text, self.fanout.put, len(tapped))
        if self.image_text is not None or self.speech is not None:  # text memories' read times (OCR, ASR)
            self.latencies.inference["text"] = Histogram()
        if self.image_text is not None:
            for name in tapped:
                self.boxes["image"].tap(name, self.image_text.offer)

        self.service = Service(
            query_endpoint(cfg),
            self.memory,
            texts,
            lambda: self.status().to_dict(),
            self.sources,
            image=self.encoders.get("image"),  # type: ignore[arg-type]  # ImageEncoder.encode_now
            curve=query_curve,
            publish=self._announce,  # sys.forget
            on_pause=self._cut,  # a pause drops the source's frames (and utterances) still waiting or in flight
            flush=self._flush,  # a forget also removes what was encoded (or read) before it
            ops=self.watches.ops(),  # watch_add, watch_list, watch_remove
            on_forget=self._forgetting,  # ... and no open moment brings it back
            min_score=dict(cfg.query.min_score),  # "no memories match" below these
        )
        self.rates = Rates(self._counts)  # fps in/kept/dropped over the last ~10 s, for status
        self.started = time.time()
        self.heartbeat = Heartbeat(self.publisher.publish_sys, self.status)
        self.metrics: MetricsServer | None = None
        if cfg.metrics.enabled:  # last: a scrape may come at once; a busy port stops the start here
            self.metrics = MetricsServer(
                cfg.metrics.host, cfg.metrics.port, DaemonCollector(self.status, self.latencies)
            )
            self.metrics.start()
        # the page and HTTP API over the same handlers; a busy port stops the start
        self.web = web_face(cfg, self.service, self.stream, self.memory.thumbs.root) if self.stream else None

    def start(self) -> None:
        self.memory.start()
        if self.curve is not None:
            self.curve.start()  # before any bind: no client connects unchecked
        self.publisher.start()
        self.health.start()
        self.fanout.start()
        if self.moments is not None:
            self.moments.start()
        if self.image_text is not None:
            self.image_text.start()
        if self.speech is not None:
            self.speech.start()
        self.service.start()
        if self.web is not None:
            self.web.start()
        self.rates.start()
        for dispatcher in self.dispatchers:
            dispatcher.start()
        for src in self.sources:
            src.start()
        self.heartbeat.start()
        fields = kv(
            sources=",".join(s.name for s in self.sources),
            device=",".join(f"{m}:{e.device}" for m, e in self.encoders.items()),
            bus=self.publisher.endpoint,
            query=self.service.endpoint,
            metrics=self.metrics.url if self.metrics else "off",
            web=self.web.url if self.web else "off",
            data=self.cfg.daemon.data_dir,
        )
        log.info("running", extra=fields)

    def stop(self) -> None:
        """Stop capture, drain inference and the result stage, flush sinks, close sockets."""
        t0 = time.monotonic()
        self.heartbeat.close()
        for src in self.sources:
            src.stop()
        for dispatcher in self.dispatchers:
            dispatcher.stop()
        if self.image_text is not None:
            self.image_text.close()
        if self.speech is not None:
            self.speech.close()  # the open utterance and the waiting ones are transcribed (for up to 5 s)
        if self.moments is not None:
            self.fanout.flush()  # every vector is in its slice, then the open slices become moments
            self.moments.close()
        self.fanout.close()
        self.health.close()
        self.publisher.close()
        self.memory.close()
        if self.web is not None:
            self.web.close()
        self.service.close()
        if self.curve is not None:
            self.curve.stop()
        self.rates.close()
        if self.metrics is not None:
            self.metrics.close()
        log.info("stopped in %.2fs: %s", time.monotonic() - t0, self.summary())
        self.lock.release()

    def run(self, stop: threading.Event) -> None:
        self.start()
        try:
            stop.wait()
        finally:
            self.stop()

    def _announce(self, topic: str, body: dict) -> None:
        """sys.* and match.* messages: on the bus, and to the page's live stream."""
        self.publisher.publish_sys(topic, body)
        if self.stream is not None:
            self.stream.publish(topic, body)

    def _image_probes(self, body: dict) -> list[tuple[str, np.ndarray]]:
        """An image watch's probes: the request image's image-model vectors (its ConSE vector in the text space does
        not tell photos apart: agent/watch/spec.py)."""
        rgb = image_of(body)
        if rgb is None:
            raise BadRequest("a watch needs text or an image")
        embs = encode_image(self.encoders.get("image"), rgb)  # type: ignore[arg-type]  # ImageEncoder.encode_now
        return [(e.space, e.vector) for e in embs if e.space != self.text.space]

    def _cut(self, source: str) -> int:
        """`source` was paused: drop what it captured that is still waiting (frames, utterances)."""
        n = self.fanout.cut(source)
        if self.speech is not None and source in self.mics:
            n += self.speech.cut(source)
        return n

    def _flush(self) -> bool:
        """Everything captured so far has reached memory (or is dropped): before a forget."""
        text = self.image_text.flush() if self.image_text is not None else True
        speech = self.speech.flush() if self.speech is not None else True
        return self.fanout.flush() and text and speech

    def _forgetting(self, since: float | None, until: float | None) -> None:
        """A forget of [since, until] (after `_flush`): open moment slices overlapping it are dropped; one the
        timer closed just before is handed to memory first, so the forget removes it too; and the stored moment
        of the slice `since` falls inside goes as well (the forget deletes by `ts`, its slice's start)."""
        if self.moments is None:
            return
        self.moments.forget(since, until)
        self.fanout.flush()
        start = straddled(since, self.cfg.moments.interval_s)
        if start is not None:
            self.memory.forget(start, start)  # that instant: the moment's row (ids carry exact times)

    def _counts(self) -> Counts:
        """Totals the per-second rates in status are computed from: captured, kept, dropped."""
        counts = {}
        for src in self.sources:
            st, dropped = src.stats(), self.boxes[src.modality].dropped[src.name]
            counts[src.name] = {"in": st["captured"], "kept": st["kept"], "dropped": dropped}
        return counts

    def summary(self) -> str:
        s = self.status()
        parts = [f"{n}: captured={v.captured} kept={v.kept} dropped={v.dropped}" for n, v in s.sources.items()]
        return "; ".join([*parts, f"published={s.publisher.sent}", f"stored={s.memory.stored}"])

    def status(self) -> Status:
        fps, depth = self.rates.per_s(), {n: k for b in self.boxes.values() for n, k in b.depth().items()}
        dispatcher_of = {d.name: d for d in self.dispatchers}  # by modality
        sources = {}
        for src in self.sources:
            boxes = self.boxes[src.modality]
            sources[src.name] = SourceStatus.of(
                src.stats(),
                dropped=boxes.dropped[src.name],
                discarded=boxes.discarded[src.name],
                rejected=dispatcher_of[src.modality].rejected_by.get(src.name, 0),
                queue=depth[src.name],
                fps=fps[src.name],
            )
        encoders = {
            m: EncoderStatus.of(getattr(enc, "name", m), enc.stats, enc.latencies()) for m, enc in self.encoders.items()
        }
        recent = self.fanout.recent_ms()
        return Status(
            uptime_s=round(time.time() - self.started, 1),
            device={**{m: e.device for m, e in self.encoders.items()}, "text": self.text.compiled.device},
            sources=sources,
            mailbox_depth=depth,
            encoders=encoders,
            dispatchers={d.name: DispatcherStatus(d.rejected, d.errors) for d in self.dispatchers},
            latency_ms=LatencyStatus(percentile(recent, 50), percentile(recent, 95)),
            publisher=PublisherStatus(**self.publisher.stats()),
            memory=MemoryStatus(**self.memory.stats()),
            service=ServiceStatus(**self.service.stats()),
            fanout=FanOutStatus(**self.fanout.stats()),
            metrics=self.metrics.url if self.metrics else None,
            web=WebStatus(self.web.url, **self.web.stats()) if self.web else WebStatus(),
            text=self._text_status(),
            speech=self._speech_status(),
            watch=WatchStatus(**self.watches.stats()),
            health={k: HealthStatus(**v) for k, v in self.health.stats().items()},  # type: ignore[arg-type]
            health_dropped=self.health.dropped,
            moments=self._moment_status(),
        )

    def _text_status(self) -> TextStatus:
        if self.image_text is None:
            return TextStatus(self.text_state)
        device = getattr(self.image_text.reader, "device", None)
        return TextStatus(self.text_state, device, **self.image_text.stats())

    def _speech_status(self) -> SpeechStatus:
        if self.speech is None:
            return SpeechStatus(self.speech_state)
        model = self.speech.transcriber
        return SpeechStatus(self.speech_state, getattr(model, "device", None), model.name, **self.speech.stats())

    def _moment_status(self) -> MomentStatus:
        if self.moments is None:
            return MomentStatus()
        return MomentStatus("on", self.cfg.moments.interval_s, **self.moments.stats())
