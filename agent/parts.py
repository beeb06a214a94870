"""Builds each part of the daemon from the config: the sources, the memory, and the workers that may be off
(screen text, speech, moments, the CLIP text tower, the web page). agent/daemon.py wires what these return.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path

from agent.config import Config
from agent.moments import Moments, moment_source
from agent.pipeline.gate import ChangeGate
from agent.pipeline.mailbox import Mailboxes
from agent.query.service import FRAMES, Service
from agent.sources import Source
from agent.sources.camera import CameraSource
from agent.sources.exclude import exclusions
from agent.sources.microphone import MicrophoneSource
from agent.sources.screen import ScreenSource
from agent.sources.supervisor import first_line
from agent.speech.gates import Thresholds
from agent.speech.segment import LATE_S, SegmentCfg
from agent.speech.worker import SpeechText
from agent.text.imagetext import ImageText
from agent.text.redact import Redactor
from agent.web.app import Counts, build
from agent.web.security import Guard, ensure_token
from agent.web.server import WebServer
from agent.web.stream import Stream
from encoders.clip import ClipText
from encoders.modelstore import ModelStore
from encoders.ocr import OcrEngine
from encoders.records import Encoded
from encoders.runtime import Runtime
from encoders.text import TextEncoder
from sinks.memory import Memory

log = logging.getLogger(__name__)

# builds the sources, each posting into its modality's mailboxes ("image", "audio")
SourceFactory = Callable[[Mapping[str, Mailboxes]], list[Source]]


def web_face(cfg: Config, service: Service, stream: Stream, thumbs: Path | None) -> WebServer:
    """The page and HTTP API over the query service's handlers, guarded by the token (agent/web)."""
    counts = Counts()
    guard = Guard(ensure_token(cfg.web.token, cfg.daemon.data_dir))
    app = build(service, guard, stream, thumbs, FRAMES, counts)
    return WebServer(app, cfg.web.host, cfg.web.port, stream, counts)


def configured_sources(cfg: Config, boxes: Mapping[str, Mailboxes], store: ModelStore) -> list[Source]:
    """Every enabled source, posting into its modality's mailboxes (not yet probed)."""
    out: list[Source] = []
    s, c, m = cfg.screen, cfg.camera, cfg.microphone
    if s.enabled:
        gate = ChangeGate(s.gate_threshold, s.force_keep_s)
        hidden = exclusions(s.exclude_rects, s.exclude_windows, s.exclude_mode)
        out.append(ScreenSource(s.name, s.monitor, s.fps, gate, boxes["image"].put, hidden))
    if c.enabled:
        gate = ChangeGate(c.gate_threshold, c.force_keep_s)
        out.append(CameraSource(c.name, c.device, c.fps, gate, boxes["image"].put, c.width, c.height, c.loop))
    if m.enabled:
        meta = store.meta(cfg.models.audio)  # windows are cut at the audio model's rate and length
        device = int(m.device) if m.device.isdigit() else (m.device or None)
        rate, window = int(meta["sample_rate"]), int(meta["window_samples"])
        out.append(MicrophoneSource(m.name, device, rate, window, m.hop_s, m.silence_dbfs, boxes["audio"].put))
    return out


def memory(cfg: Config) -> Memory:
    st = cfg.store
    return Memory(
        cfg.daemon.data_dir,
        st.batch_size,
        st.flush_s,
        st.thumbnails,
        st.thumb_width,
        st.queue_size,
        url=st.url,  # a server that is down does not stop the start: rows spool until it answers
        bucket=st.bucket,
        retention_days=st.retention_days,
        retention_bytes=st.retention_bytes,
        retention_every_s=st.retention_every_s,
        process=st.process,
    )


def image_text(
    cfg: Config, runtime: Runtime, store: ModelStore, embedder: TextEncoder, put: Callable[[Encoded], None], n: int
) -> tuple[ImageText | None, str]:
    """The screen-text worker for `n` sources to read, and its state; None and the reason when it is off or
    cannot start (a missing or broken OCR model costs the screen its text, not the daemon its start)."""
    if not (cfg.ocr.screen or cfg.ocr.camera):
        return None, "off"
    if not n:
        return None, "off: no source to read"
    try:
        engine = OcrEngine(runtime, store.require(cfg.models.ocr))
    except Exception as e:  # ModelNotBuilt, a corrupt IR, no device
        log.error("screen text is off: %s", e)
        return None, f"off: {first_line(e)}"
    redactor = Redactor(cfg.redact.patterns) if cfg.redact.enabled else None
    worker = ImageText(engine, embedder, redactor, put, cfg.ocr.min_interval_s, cfg.ocr.min_score)
    return worker, "on"


def speech_text(
    cfg: Config, runtime: Runtime, store: ModelStore, embedder: TextEncoder, put: Callable[[Encoded], None], n: int
) -> tuple[SpeechText | None, str]:
    """The speech-transcript worker for `n` microphones, and its state; None and the reason when it is off or
    cannot start (a missing or broken speech model costs the transcripts, not the daemon its start)."""
    sp = cfg.speech
    if not sp.enabled:
        return None, "off"
    if not n:
        return None, "off: no microphone"
    try:
        from encoders.asr import Whisper  # here: tokenizers and the decoder load only when speech is on

        model = Whisper(runtime, store.require(cfg.models.speech))
        wait_s = cfg.microphone.hop_s + LATE_S  # no window for this long after the last one: they were silent
        segment = SegmentCfg(sp.onset, sp.offset, sp.min_silence_s, sp.max_s, sp.pad_s, sp.min_speech_s, wait_s)
        thresholds = Thresholds(sp.no_speech, sp.logprob, sp.min_logprob, sp.compression)
        redactor = Redactor(cfg.redact.patterns) if cfg.redact.enabled else None
        rate = int(store.meta(cfg.models.audio)["sample_rate"])  # the windows' rate: the model must take it
        worker = SpeechText(
            model, embedder, redactor, put, rate=rate, language=sp.language, queue=sp.queue, segment=segment,
            thresholds=thresholds,
        )  # fmt: skip
    except Exception as e:  # ModelNotBuilt, a corrupt IR, no device, another sample rate
        log.error("speech transcripts are off: %s", e)
        return None, f"off: {first_line(e)}"
    return worker, "on"


def moment_sink(cfg: Config, space: str, put: Callable[[Encoded], None]) -> Moments | None:
    """The moments sink in the text space `space`, emitting into `put`; None when [moments] is off."""
    mo = cfg.moments
    if not mo.enabled:
        return None
    return Moments(space, mo.interval_s, mo.grace_s, mo.weights, put, source=moment_source(cfg.store.agent))


def clip_text(runtime: Runtime, store: ModelStore, name: str, need: bool) -> ClipText | None:
    """The CLIP text tower when the image model is CLIP-family (and built, or needed: then it must be)."""
    if not need and not store.is_built(name):
        return None
    return ClipText(runtime, store.require(name)) if store.meta(name).get("kind") == "clip" else None
