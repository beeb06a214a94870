"""3. Latency capture → published, per source, at 1, 5 and 30 fps, seen by a bus subscriber.

`sensorium run` runs as its own process with the screen on Xvfb, a camera reading a video file, and the
microphone on a PulseAudio null sink fed noise; change gates are off so every captured frame is
encoded. A subscriber in this process takes `time.time()` at receipt minus the header's `ts` (wall
clock stamped at capture), once per frame (its first space). Audio `ts` is the window's start, so the
window length (0.96 s) is subtracted: what remains is the wait after the last sample was captured.
The model's own latency (start_async → callback, p50) comes from the daemon's status.

3b. Speech: end of an utterance → its transcript on the bus. `sensorium run` with only the microphone (default
[speech]: Whisper base, min_silence_s 0.6) on a PulseAudio null sink; espeak-ng sentences of demo/speech.py are
played one at a time with silence between. The end of speech is the playback start (just before paplay is
started, so the sink's own delay counts against us) plus the clip's last audible sample; the arrival is the
receive time of the last emb.text.mic0 message holding the sentence's words. The message's own stamp of its
utterance's end (extra "end", post-roll included, on the capture's clock) splits each latency in two: before
it, the post-roll (pad_s) and the capture's buffering; after it, the daemon's part. Of that, the worker's
transcription time (status p50/p95) is most; the rest (a difference of medians, a guide) is the VAD's end
detection (min_silence_s of silence, which the microphone drops as silent, so the segmenter's timer ends the
utterance), the embedding and the bus.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import BenchError, DaemonProc, Opts, Table, bench_home, guarded, percentile, photos, pulse, xvfb
from .harness import device_config

FPS = (1.0, 5.0, 30.0)
IN_DAEMON = "[store]\nprocess = false\n"  # one more run at 30 fps with Chroma in the daemon's process


def video_file(path: Path, n: int = 60, fps: float = 30.0) -> Path:
    """An MJPG AVI of distinct frames: the camera source reads it like a device, looping."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (640, 480))
    if not writer.isOpened():
        raise BenchError("OpenCV cannot write an MJPG video here")
    frames = photos(6, 640, 480, seed=3)
    for i in range(n):
        writer.write(cv2.cvtColor(frames[i % len(frames)], cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def config_text(fps: float, video: Path, device: str) -> str:
    return device_config(device) + (
        f"[screen]\nfps = {fps}\ngate_threshold = 0.0\n"
        f'[camera]\ndevice = "{video}"\nfps = {fps}\ngate_threshold = 0.0\n'
        "[microphone]\nenabled = true\n"
    )


def collect(endpoint: str, seconds: float, window_s: float) -> dict[tuple[str, str], list[float]]:
    """Latency samples (ms) per (modality, source), one per frame id."""
    from sinks.client import Subscriber

    sub = Subscriber(endpoint, "emb.")
    seen: set[str] = set()
    out: dict[tuple[str, str], list[float]] = {}
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            msg = sub.recv(timeout=0.2)
            now = time.time()
            if msg is None or msg.header.get("id") in seen:
                continue
            seen.add(msg.header["id"])
            lat = (now - float(msg.header["ts"])) * 1000
            modality = msg.header.get("modality", "")
            if modality == "audio":
                lat -= window_s * 1000
            out.setdefault((modality, msg.header["source"]), []).append(lat)
    finally:
        sub.close()
    return out


def measure(opts: Opts) -> Table:
    from agent import config
    from demo.standins import noise, write_wav

    t = Table(
        "3. Latency capture → published (bus subscriber), ms",
        ["fps", "source", "n", "p50", "p95", "model p50", "p50 - model", "dropped"],
    )
    window_s = 0.96
    secs = opts.secs(20, 4)
    with bench_home() as tmp, xvfb(tmp) as display, pulse(tmp) as snd:
        display.show(photos(1, 1024, 768, seed=5)[0])
        video = video_file(tmp / "camera.avi")
        wav = write_wav(tmp / "noise.wav", noise((len(FPS) + 1) * (secs + 40), rate=48000), 48000)
        player = snd.play(wav, wait=False)
        try:
            runs = [(fps, f"{fps:g}", "") for fps in FPS] + [(FPS[-1], f"{FPS[-1]:g}, Chroma in daemon", IN_DAEMON)]
            for fps, label, extra in runs:
                with DaemonProc(tmp, config_text(fps, video, opts.device) + extra) as d:
                    time.sleep(2 if opts.quick else 3)  # first frames and compiles are not steady state
                    lat = collect(config.bus_endpoint(d.cfg), max(secs, 3.0 / fps), window_s)
                    st = d.status()
                for (modality, source), values in sorted(lat.items()):
                    if modality == "audio" and label != f"{FPS[0]:g}":
                        continue  # the microphone's rate is its hop, not the fps: one row is enough
                    enc, src = st.encoders.get(modality), st.sources.get(source)
                    model = enc.infer_p50_ms if enc else None
                    p50 = percentile(values, 50)
                    over = None if p50 is None or model is None else round(p50 - model, 2)
                    row = label if modality == "image" else "hop"
                    dropped = src.dropped if src else None
                    t.add(row, source, len(values), p50, percentile(values, 95), model, over, dropped)
                    if not extra:
                        t.summary[f"latency.{source}@{row}.over_model_ms"] = over
        finally:
            from demo.standins import stop_process

            stop_process(player)
    t.notes.append("audio rows: after the window's last sample (ts is the window start; 0.96 s subtracted)")
    t.notes.append(f"window {secs:g}s per rate; screen Xvfb 1024x768, camera 640x480 MJPG file, mic noise")
    t.notes.append("Chroma in daemon: store.process = false, the store's writes holding the daemon's GIL")
    return t


# Short English sentences of demo/speech.py, distinct words each (the first two in quick mode)
SPEECH_SENTENCES = ("budget-report", "call-back", "design-meeting", "refund", "backup", "password", "lights",
                    "server-costs", "mobile-app", "good-morning")  # fmt: skip
SPEECH_CONFIG = "[screen]\nenabled = false\n[camera]\nenabled = false\n[microphone]\nenabled = true\n"
SPEECH_MODELS = ("whisper-base-int8", "whisper-tiny-en")  # the default ([models] speech) first; quick: it alone
WARM_UP = "plants"
AUDIBLE = 0.01  # a sample above this (|x|, full scale 1) is still speech: espeak-ng's clips end in silence


def speech_end_s(audio: Any, rate: int) -> float:
    """Seconds from a clip's start to its last audible sample."""
    import numpy as np

    loud = np.flatnonzero(np.abs(audio) > AUDIBLE)
    return (int(loud[-1]) + 1) / rate if loud.size else 0.0


def words(text: str) -> set[str]:
    return {w for w in re.sub(r"[^\w\s]", " ", text.lower()).split() if len(w) > 3}


def heard(sent: str, transcript: str) -> float:
    """Share of the sentence's words (longer than three letters: not "the", "and") in the transcript."""
    want = words(sent)
    return len(want & words(transcript)) / max(1, len(want))


@dataclass
class Said:
    name: str
    text: str
    end: float  # wall clock of the last audible sample
    exit: float  # paplay's exit (after the sink drained)
    got: list[tuple[float, str, float]]  # (receive time, transcript, its utterance's end) of each message

    @property
    def mine(self) -> list[tuple[float, str, float]]:
        return [m for m in self.got if heard(self.text, m[1]) > 0]

    @property
    def matched(self) -> bool:
        return heard(self.text, " ".join(m[1] for m in self.mine)) >= 0.5

    @property
    def latency_ms(self) -> float | None:
        return (self.mine[-1][0] - self.end) * 1000 if self.matched else None

    def split_ms(self) -> tuple[float, float] | None:
        """The latency in two: end of speech → the utterance's end as the daemon stamped it (its post-roll and
        the capture's buffering), and that → receipt (end detection, transcription, embedding, bus)."""
        if not self.matched:
            return None
        recv, _, end = self.mine[-1]
        return (end - self.end) * 1000, (recv - end) * 1000


def say(snd: Any, sub: Any, tmp: Path, name: str, settle: float, timeout: float = 60.0) -> Said:
    """Play one sentence and gather the transcripts that come until `settle` s pass without one (after the first
    matching one), or `timeout`."""
    from demo.speech import RATE, sentence, synthesise, write_wav

    s = sentence(name)
    audio = synthesise(s)
    wav = write_wav(tmp / f"{name}.wav", audio, RATE)
    t0 = time.time()
    player = snd.play(wav, wait=False)
    said = Said(name, s.text, t0 + speech_end_s(audio, RATE), 0.0, [])
    deadline, quiet_until = time.monotonic() + timeout, None
    try:
        while time.monotonic() < deadline and (quiet_until is None or time.monotonic() < quiet_until):
            if not said.exit and player.poll() is not None:
                said.exit = time.time()
            msg = sub.recv(timeout=0.05)
            if msg is None:
                continue
            said.got.append((time.time(), msg.text or "", float(msg.extra.get("end", "nan"))))
            if said.matched:
                quiet_until = time.monotonic() + settle
    finally:
        from demo.standins import stop_process

        stop_process(player)
    said.exit = said.exit or time.time()
    return said


def wait_running(d: DaemonProc, source: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while (src := d.status().sources.get(source)) is None or src.state != "running":
        if time.monotonic() > deadline:
            raise BenchError(f"{source} not running after {timeout:g} s: {src}")
        time.sleep(0.2)


def speech(opts: Opts) -> Table:
    t = Table(
        "3b. Speech: end of utterance → transcript on the bus (bus subscriber), ms",
        ["model", "part", "n", "p50", "p95"],
    )
    names = SPEECH_SENTENCES[: 2 if opts.quick else len(SPEECH_SENTENCES)]
    models = SPEECH_MODELS[:1] if opts.quick else SPEECH_MODELS
    for model in models:
        speech_run(t, opts, model, names)
    t.notes.append(
        f"sentences {', '.join(names)} (demo/speech.py), one at a time, 1 s of silence between; a warm-up sentence "
        "first, not counted (but in the worker's transcription times, its last 64)"
    )
    t.notes.append("only the microphone runs (screen and camera off); the CPU is shared with whatever else runs here")
    return t


def speech_run(t: Table, opts: Opts, model: str, names: tuple[str, ...]) -> None:
    from agent import config
    from sinks.client import Subscriber

    cfg = device_config(opts.device) + SPEECH_CONFIG + f'[models]\nspeech = "{model}"\n'
    with bench_home() as tmp, pulse(tmp) as snd, DaemonProc(tmp, cfg) as d:
        st = d.status()
        if st.speech.state != "on":
            t.add(model, f"not measured: speech {st.speech.state}", None, None, None)
            return
        mic = d.cfg.microphone.name
        wait_running(d, mic)
        sub = Subscriber(config.bus_endpoint(d.cfg), f"emb.text.{mic}")
        try:
            time.sleep(0.5)  # the subscription reaches the publisher
            warm = say(snd, sub, tmp, WARM_UP, 1.0)  # the first transcription allocates what later ones reuse
            s0 = d.status().speech
            said = []
            for name in names:
                time.sleep(1.0)  # silence between sentences
                said.append(say(snd, sub, tmp, name, 2.0))
            s1 = d.status().speech
        finally:
            sub.close()
    lat = [x.latency_ms for x in said if x.latency_ms is not None]
    exits = [(x.exit - x.end) * 1000 for x in said]
    p50, p95 = percentile(lat, 50), percentile(lat, 95)
    tr50 = s1.p50_ms
    t.add(model, "end of speech → transcript on the bus", len(lat), p50, p95)
    t.add("", "  transcription (worker)", s1.transcribed, tr50, s1.p95_ms)
    t.add("", "  worker lag: utterance end → result stage", s1.transcribed, s1.lag_p50_ms, s1.lag_p95_ms)
    split = [x for x in (s.split_ms() for s in said) if x is not None]
    before, after = [a for a, _ in split], [b for _, b in split]
    t.add("", "  end of speech → utterance end (post-roll, capture)", len(before), percentile(before, 50),
          percentile(before, 95))  # fmt: skip
    t.add("", "  utterance end → on the bus (daemon)", len(after), percentile(after, 50), percentile(after, 95))
    a50 = percentile(after, 50)
    vad = None if a50 is None or tr50 is None else round(a50 - tr50, 1)
    t.add("", "    ≈ end detection, embedding, bus (that p50 - transcription p50)", None, vad, None)
    t.add("", "paplay exit after the end of speech", len(exits), percentile(exits, 50), percentile(exits, 95))
    missed = [f"{x.name} ({' / '.join(m[1] for m in x.got) or 'nothing'})" for x in said if x.latency_ms is None]
    sp = d.cfg.speech
    t.notes.append(
        f"{model} on {s1.device}: utterances {s1.utterances - s0.utterances}, transcribed "
        f"{s1.transcribed - s0.transcribed}, memories {s1.memories - s0.memories}, gated "
        f"{sum(s1.gated.values()) - sum(s0.gated.values())}, dropped {s1.dropped - s0.dropped}; warm-up "
        f"{'heard' if warm.matched else 'not heard'}; not heard: {', '.join(missed) or 'none'}"
    )
    if model == SPEECH_MODELS[0]:
        t.notes.append(
            f"segmenting: min_silence_s {sp.min_silence_s}, pad_s {sp.pad_s}, mic hop {d.cfg.microphone.hop_s} s; "
            "silent windows are dropped by the mic, so the utterance is ended by the worker's timer (its last window's "
            "end + max(hop + 0.32 s, the silence still missing))"
        )
    t.summary[f"latency.speech.{model}.p50_ms"] = p50
    t.summary[f"latency.speech.{model}.p95_ms"] = p95
    t.summary[f"latency.speech.{model}.transcribe_p50_ms"] = tr50
    t.summary[f"latency.speech.{model}.end_detect_p50_ms"] = vad


def run(opts: Opts) -> list[Table]:
    return [guarded("3. Latency capture → published", measure, opts), guarded("3b. Speech latency", speech, opts)]
