"""3. Latency capture → published, per source, at 1, 5 and 30 fps, seen by a bus subscriber.

`sensorium run` runs as its own process with the screen on Xvfb, a camera reading a video file, and the
microphone on a PulseAudio null sink fed noise; change gates are off so every captured frame is
encoded. A subscriber in this process takes `time.time()` at receipt minus the header's `ts` (wall
clock stamped at capture), once per frame (its first space). Audio `ts` is the window's start, so the
window length (0.96 s) is subtracted: what remains is the wait after the last sample was captured.
The model's own latency (start_async → callback, p50) comes from the daemon's status.
"""

from __future__ import annotations

import time
from pathlib import Path

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


def run(opts: Opts) -> list[Table]:
    return [guarded("3. Latency capture → published", measure, opts)]
