"""5. Memory: peak RSS of the daemon with all three sources and the default models.

Screen on Xvfb (a new photo every 2 s), camera = an MJPEG server on 127.0.0.1 (demo.standins), mic =
a PulseAudio null sink fed noise, so every model runs. RSS of the daemon and of its capture process is
sampled twice a second; the kernel's own high-water marks (VmHWM) are read before it stops.
"""

from __future__ import annotations

import threading
import time

from .common import DaemonProc, Opts, Table, bench_home, guarded, photos, pulse, status_kb, tree, xvfb
from .harness import device_config


def measure(opts: Opts) -> Table:
    from demo.standins import MjpegServer, noise, stop_process, write_wav

    t = Table("5. Memory: RSS with screen + camera + microphone, default models (MB)",
              ["process", "peak RSS (VmHWM)", "last RSS"])  # fmt: skip
    secs = opts.secs(40, 10)
    pics = photos(4, 1024, 768, seed=11)
    with bench_home() as tmp, xvfb(tmp) as display, pulse(tmp) as snd, MjpegServer(photos(5, 640, 480), 15) as cam:
        display.show(pics[0])
        wav = write_wav(tmp / "noise.wav", noise(secs + 60, rate=48000), 48000)
        player = snd.play(wav, wait=False)
        stop = threading.Event()

        def slideshow() -> None:
            i = 1
            while not stop.wait(1.3):
                display.show(pics[i % len(pics)])
                i += 1

        th = threading.Thread(target=slideshow, daemon=True)
        try:
            cfg = device_config(opts.device) + f'[camera]\ndevice = "{cam.url}"\nfps = 5.0\n[screen]\nfps = 2.0\n'
            with DaemonProc(tmp, cfg) as d:
                th.start()
                peak_total = 0
                deadline = time.monotonic() + secs
                while time.monotonic() < deadline:
                    peak_total = max(peak_total, sum(status_kb(p, "VmRSS") for p in tree(d.pid)))
                    time.sleep(0.5)
                procs = tree(d.pid)
                hwm = {p: status_kb(p, "VmHWM") for p in procs}
                rss = {p: status_kb(p, "VmRSS") for p in procs}
                st = d.status()
        finally:
            stop.set()
            stop_process(player)
    for p in procs:
        t.add("daemon" if p == d.pid else f"child {p}", hwm[p] / 1024, rss[p] / 1024)
    t.add("sum of peaks", sum(hwm.values()) / 1024, sum(rss.values()) / 1024)
    t.add("peak of sampled sum", peak_total / 1024, None)
    kept = {n: v.kept for n, v in st.sources.items()}
    t.notes.append(f"{secs:g}s with all sources running; kept frames per source: {kept}")
    t.summary["memory.peak_mb"] = sum(hwm.values()) / 1024
    return t


def run(opts: Opts) -> list[Table]:
    return [guarded("5. Memory", measure, opts)]
