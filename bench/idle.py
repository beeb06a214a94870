"""4. Idle cost: CPU % of one core used by the daemon (and its capture process) with nothing happening.

Default config (screen at 1 fps with its change gate and screen text on, microphone with its silence gate,
speech transcripts on; no camera, as in the goal), the screen an Xvfb showing a still page of text (read once
for text, then left alone), the microphone a silent PulseAudio null sink.
Then the same with the screen changing once a second (a new photo each second through feh), which
makes every capture pass the gate and be encoded, published and stored. The CPU of the feh and Xvfb
processes is not counted: they stand in for the user's desktop.
Last, the still page again with `[speech] enabled = false`: what speech transcripts add to the idle cost. With a
silent microphone no window reaches the audio model, so none reaches the speech worker, whose thread waits
without a timeout while no utterance is open: it should add nothing but the loaded model's memory.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from .common import CpuMeter, DaemonProc, Opts, Table, bench_home, guarded, photos, pulse, xvfb
from .harness import device_config

if TYPE_CHECKING:
    from agent.status import Status

CONFIG = "[camera]\nenabled = false\n"
NO_SPEECH = "[speech]\nenabled = false\n"


def measure(opts: Opts) -> Table:
    t = Table(
        "4. Idle cost: CPU % of one core (daemon + capture process)",
        ["screen", "seconds", "cpu %", "kept/s", "published", "stored"],
    )
    secs = opts.secs(60, 10)
    pics = photos(4, 1024, 768, seed=7)
    from demo.textpages import page

    with bench_home() as tmp, xvfb(tmp) as display, pulse(tmp):
        display.show(page("document", (1024, 768)).rgb)
        with DaemonProc(tmp, device_config(opts.device) + CONFIG) as d:
            cpu, s0, s1 = still(d, opts, secs)
            add_row(t, "static page of text", secs, cpu, s0, s1)
            t.summary["idle.static_cpu_pct"] = cpu
            sp0, sp1 = s0.speech, s1.speech
            t.notes.append(
                f"speech {sp1.state} ({sp1.model}): during the still window the speech worker read "
                f"{sp1.windows - sp0.windows} windows, cut {sp1.utterances - sp0.utterances} utterances, "
                f"transcribed {sp1.transcribed - sp0.transcribed}"
            )

            stop = threading.Event()

            def slideshow() -> None:
                i = 1
                while not stop.is_set():
                    t0 = time.monotonic()
                    display.show(pics[i % len(pics)])  # returns once the new window is up
                    i += 1
                    stop.wait(max(0.0, 1.0 - (time.monotonic() - t0)))

            th = threading.Thread(target=slideshow, daemon=True)
            th.start()
            try:
                time.sleep(2)
                s0 = d.status()
                cpu = CpuMeter(d.pid).measure(secs)
                s1 = d.status()
            finally:
                stop.set()
                th.join(5)
            add_row(t, "changing at 1 fps", secs, cpu, s0, s1)
            t.summary["idle.changing_cpu_pct"] = cpu
        display.show(page("document", (1024, 768)).rgb)
        with DaemonProc(tmp, device_config(opts.device) + CONFIG + NO_SPEECH) as d:
            cpu, s0, s1 = still(d, opts, secs)
            add_row(t, "static page of text, [speech] off", secs, cpu, s0, s1)
            t.summary["idle.static_nospeech_cpu_pct"] = cpu
            on = t.summary["idle.static_cpu_pct"]
            t.summary["idle.speech_added_cpu_pct"] = None if on is None else round(on - cpu, 2)
    t.notes.append("microphone on a silent null sink: its windows are dropped by the silence gate before inference")
    t.notes.append("speech added = static page with speech on - the same with [speech] off")
    t.notes.append("changing: each new photo is read for text too (at most every 2 s)")
    return t


def still(d: DaemonProc, opts: Opts, secs: float) -> tuple[float, Status, Status]:
    """CPU % over `secs` once start-up is done and the page was read; the status before and after."""
    time.sleep(3 if opts.quick else 5)  # start-up work (first frames, Chroma collections) is not idle
    deadline = time.monotonic() + 60  # nor is reading the page of text once
    while (t := d.status().text).state == "on" and t.read < 1 and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(1)
    s0 = d.status()
    cpu = CpuMeter(d.pid).measure(secs)
    return cpu, s0, d.status()


def add_row(t: Table, label: str, secs: float, cpu: float, s0: Status, s1: Status) -> None:
    dt = max(s1.uptime_s - s0.uptime_s, 1e-9)
    kept = sum(v.kept for v in s1.sources.values()) - sum(v.kept for v in s0.sources.values())
    pub = s1.publisher.sent - s0.publisher.sent
    stored = s1.memory.stored - s0.memory.stored
    t.add(label, secs, cpu, kept / dt, pub, stored)


def run(opts: Opts) -> list[Table]:
    return [guarded("4. Idle cost", measure, opts)]
