"""5. Memory: peak RSS of the daemon with all three sources and the default models, with and without speech.

Screen on Xvfb (a new photo every 1.3 s), camera = an MJPEG server on 127.0.0.1 (demo.standins), mic =
a PulseAudio null sink fed espeak-ng sentences (demo/speech.py) between bursts of noise, so every model runs,
Whisper too. RSS of the daemon and of its capture process is sampled twice a second; the kernel's own
high-water marks (VmHWM) are read before it stops. The same again with `[speech] enabled = false`: the
difference is what speech transcripts add (the Whisper model, its compiled graphs and buffers).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from .common import DaemonProc, Opts, Table, bench_home, guarded, photos, pulse, status_kb, tree, xvfb
from .harness import device_config

SAID = ("budget-report", "design-meeting", "server-costs", "refund")  # English sentences of demo/speech.py
NO_SPEECH = "[speech]\nenabled = false\n"


def mic_feed(path: Path, seconds: float) -> Path:
    """A WAV of at least `seconds`: each sentence, a second of silence, two seconds of noise, a second of silence."""
    from demo.speech import RATE, synthesise, write_wav

    rng = np.random.default_rng(0)
    quiet = np.zeros(RATE, np.float32)
    parts: list[np.ndarray] = []
    n, i = 0, 0
    while n < seconds * RATE:
        noise = (0.3 * rng.uniform(-1, 1, 2 * RATE)).astype(np.float32)
        for x in (synthesise(SAID[i % len(SAID)]), quiet, noise, quiet):
            parts.append(x)
            n += x.size
        i += 1
    return write_wav(path, np.concatenate(parts), RATE)


def measure(opts: Opts) -> Table:
    t = Table("5. Memory: RSS with screen + camera + microphone, default models (MB)",
              ["speech", "process", "peak RSS (VmHWM)", "last RSS"])  # fmt: skip
    secs = opts.secs(40, 15)
    peaks = {}
    for label, on in (("on", True), ("off", False)):
        peaks[label] = one_run(t, opts, label, on, secs)
    t.summary["memory.peak_mb"] = peaks["on"]
    t.summary["memory.nospeech_peak_mb"] = peaks["off"]
    t.summary["memory.speech_added_mb"] = round(peaks["on"] - peaks["off"], 1)
    t.notes.append("speech added = sum of peaks with speech on - the same with [speech] off")
    return t


def one_run(t: Table, opts: Opts, label: str, speech: bool, secs: float) -> float:
    """One daemon with every source for `secs`: its rows, and the sum of its processes' peaks (MB)."""
    from demo.standins import MjpegServer, stop_process

    pics = photos(4, 1024, 768, seed=11)
    with bench_home() as tmp, xvfb(tmp) as display, pulse(tmp) as snd, MjpegServer(photos(5, 640, 480), 15) as cam:
        display.show(pics[0])
        player = snd.play(mic_feed(tmp / "mic.wav", secs + 60), wait=False)
        stop = threading.Event()

        def slideshow() -> None:
            i = 1
            while not stop.wait(1.3):
                display.show(pics[i % len(pics)])
                i += 1

        th = threading.Thread(target=slideshow, daemon=True)
        try:
            cfg = device_config(opts.device) + f'[camera]\ndevice = "{cam.url}"\nfps = 5.0\n[screen]\nfps = 2.0\n'
            with DaemonProc(tmp, cfg + ("" if speech else NO_SPEECH)) as d:
                th.start()
                peak_total = 0
                deadline = time.monotonic() + secs
                late = deadline + 60  # with speech on, go on until Whisper has transcribed once (its buffers)
                while time.monotonic() < deadline or (speech and time.monotonic() < late and not heard(d)):
                    peak_total = max(peak_total, sum(status_kb(p, "VmRSS") for p in tree(d.pid)))
                    time.sleep(0.5)
                procs = tree(d.pid)
                hwm = {p: status_kb(p, "VmHWM") for p in procs}
                rss = {p: status_kb(p, "VmRSS") for p in procs}
                st = d.status()
        finally:
            stop.set()
            if th.is_alive():
                th.join(5)
            stop_process(player)
    for p in procs:
        t.add(label, "daemon" if p == d.pid else f"child {p}", hwm[p] / 1024, rss[p] / 1024)
    t.add(label, "sum of peaks", sum(hwm.values()) / 1024, sum(rss.values()) / 1024)
    t.add(label, "peak of sampled sum", peak_total / 1024, None)
    t.notes.append(f"speech {label}: {secs:g}s with all sources running; kept frames per source: "
                   f"{ {n: v.kept for n, v in st.sources.items()} }; {speech_note(st.speech)}")  # fmt: skip
    return sum(hwm.values()) / 1024


def heard(d: DaemonProc) -> bool:
    return d.status().speech.transcribed > 0


def speech_note(sp: Any) -> str:
    if sp.state != "on":
        return f"speech {sp.state}"
    return f"{sp.model} cut {sp.utterances} utterances, transcribed {sp.transcribed} ({sp.memories} memories)"


def run(opts: Opts) -> list[Table]:
    return [guarded("5. Memory", measure, opts)]
