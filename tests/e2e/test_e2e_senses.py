"""Camera and microphone through the daemon, with real stand-ins: a PulseAudio null sink played into
with paplay, an MJPEG server on 127.0.0.1, and Xvfb for the screen. The daemon is its own process."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import skimage.data

from agent import config
from demo.standins import MjpegServer, noise, speech, tone, write_wav
from sinks.bus.wire import Message
from sinks.client import Subscriber
from tests.support.daemon import start_daemon, status, stop_daemon, wait_stored
from tests.support.env import sensorium

BASE = "[device]\nname = 'CPU'\n[store]\nflush_s = 0.2\n"
TALK = "Hello there. I am talking to you about the weather today, and then we will go for a long walk by the river."
WINDOW_S = 0.96
WINDOW_BYTES = 15360 * 2  # one 0.96 s window at 16 kHz in 16-bit samples: the least raw audio would take
AUDIO_MAGIC = (b"RIFF", b"OggS", b"fLaC", b"ID3", b"caff", b"FORM", b"\x93NUMPY")
JPEG = b"\xff\xd8\xff"
EDGE_S = 0.3  # output latency of paplay + PulseAudio + capture: windows this close to a clip edge are not judged


def collect(sub: Subscriber, seconds: float, into: list[Message]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        msg = sub.recv(timeout=0.2)
        if msg is not None:
            into.append(msg)


def wait_state(cfg: config.Config, source: str, state: str, timeout: float) -> float:
    """Seconds until `source` reports `state`."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if status(cfg)["sources"][source]["state"] == state:
            return time.monotonic() - t0
        time.sleep(0.05)
    raise AssertionError(f"{source} not {state} within {timeout}s: {status(cfg)['sources'][source]}")


def inside(msg: Message, span: tuple[float, float]) -> bool:
    ts = msg.header["ts"]
    return span[0] + EDGE_S <= ts and ts + WINDOW_S <= span[1] - EDGE_S


def query(cfg_path: Path, *args: str) -> list[dict]:
    return json.loads(sensorium("--config", str(cfg_path), "query", *args, "--json").stdout)


def raw_audio_in(data_dir: Path) -> list[str]:
    """What in the data dir could be raw audio (read after the daemon stopped): files that start like an
    audio container or a numpy array; files large enough to hold one window that are neither the Chroma store
    nor JPEG thumbnails; and in the store, audio rows with a document, a metadata value longer than a label
    list, or a vector longer than an embedding."""
    import chromadb
    from chromadb.config import Settings

    found = []
    store = data_dir / "chroma"
    words = data_dir / "keywords"  # the text memories' keyword index (SQLite): checked below for audio rows
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
        with open(path, "rb") as f:
            head = f.read(8)
        if head.startswith(AUDIO_MAGIC):
            found.append(f"{path}: starts like audio {head!r}")
        elif path.stat().st_size >= WINDOW_BYTES and not {store, words} & {*path.parents} and head[:3] != JPEG:
            found.append(f"{path}: {path.stat().st_size} bytes")
    client = chromadb.PersistentClient(path=str(store), settings=Settings(anonymized_telemetry=False))
    rows = 0
    for col in client.list_collections():
        got = col.get(where={"modality": "audio"}, include=["documents", "metadatas", "embeddings"])
        for id_, doc, meta, vec in zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"], strict=True):
            rows += 1
            long = {k: len(str(v)) for k, v in meta.items() if len(str(v)) > 256}
            if doc or long or len(vec) > 1024:
                found.append(f"{col.name}/{id_}: document {len(doc or '')} chars, long metadata {long}, dim {len(vec)}")
    if (words / "index.sqlite").is_file():
        import sqlite3

        with sqlite3.connect(words / "index.sqlite") as db:
            n = db.execute("select count(*) from docs where modality = 'audio'").fetchone()[0]
        if n:
            found.append(f"{words}: {n} audio rows with words")
    return found if rows else [f"no audio rows in {store} to check"]


def test_sounds_are_labelled_silence_is_gated_and_speech_is_found(pulse, home, tmp_path):
    clips = {
        "Speech": speech(tmp_path / "talk.wav", TALK),
        "Music": write_wav(tmp_path / "tone.wav", tone(3.0), 48000),
        "Noise": write_wav(tmp_path / "noise.wav", noise(3.0), 48000),
    }
    text = BASE + "[screen]\nenabled = false\n[camera]\nenabled = false\n"
    proc, cfg = start_daemon(tmp_path, text)
    sub = Subscriber(config.bus_endpoint(cfg), "emb.audio.mic0")
    msgs: list[Message] = []
    spans: dict[str, tuple[float, float]] = {}
    try:
        wait_state(cfg, "mic0", "running", 15)
        collect(sub, 2.0, msgs)  # silence first: every window gated
        silent = status(cfg)["sources"]["mic0"]
        for label, wav in clips.items():
            t0 = time.time()
            pulse.play(wav)
            spans[label] = (t0, time.time())
            collect(sub, 1.5, msgs)  # a silent gap, so no judged window spans two clips
        st = status(cfg)["sources"]["mic0"]
        wait_stored(cfg, msgs)
        hits = query(tmp_path / "cfg.toml", "someone talking", "--modality", "audio", "-k", "5")
    finally:
        sub.close()
        stop_daemon(proc, tmp_path)

    assert silent["windows"] >= 2 and silent["gated"] == silent["windows"] and silent["kept"] == 0, silent
    assert st["samples_dropped"] == 0 and st["overflows"] == 0 and st["bad"] == 0 and st["dropped"] == 0, st
    conse = [m for m in msgs if m.header["space"] == "minilm-l6/384"]
    assert {m.topic for m in msgs} == {"emb.audio.mic0"} and len(conse) == st["kept"], st
    for label, span in spans.items():
        judged = [m for m in conse if inside(m, span)]
        assert len(judged) >= 2, (label, span, [m.header["ts"] for m in conse])
        tops = [m.header["labels"][0] for m in judged]
        assert tops.count(label) == len(tops), (label, tops)
        gaps_ms = np.diff(sorted(m.header["ts"] for m in judged)) * 1000
        assert np.all(np.abs(gaps_ms - 480) <= 5), gaps_ms  # contiguous: one hop apart, nothing lost
    assert hits and hits[0]["modality"] == "audio" and hits[0]["labels"][0] == "Speech", hits
    assert spans["Speech"][0] - 1 <= hits[0]["ts"] <= spans["Speech"][1], (hits[0], spans)
    assert not hits[0]["thumb"] and st["kept"] >= 6
    assert raw_audio_in(cfg.daemon.data_dir) == []  # no raw audio kept, in files or in the store


def test_screen_camera_and_microphone_share_one_memory(xvfb, pulse, home, tmp_path):
    xvfb.show(skimage.data.chelsea())
    talk = speech(tmp_path / "talk.wav", TALK)
    with MjpegServer([skimage.data.coffee()], fps=10) as cam:
        keep = "fps = 2.0\nforce_keep_s = 2.0\n"  # the screen and camera are static: forced keeps reach the bus
        # speech transcripts off: this is about the senses' vectors (tests/e2e/test_e2e_speech.py is about speech)
        text = BASE + f"[screen]\n{keep}[camera]\ndevice = '{cam.url}'\n{keep}[speech]\nenabled = false\n"
        proc, cfg = start_daemon(tmp_path, text)
        sub = Subscriber(config.bus_endpoint(cfg), "emb.")
        talking = threading.Event()

        def keep_talking() -> None:
            while not talking.is_set():
                pulse.play(talk)

        voice = threading.Thread(target=keep_talking, daemon=True)
        msgs: list[Message] = []
        try:
            wait_state(cfg, "cam0", "running", 15)
            voice.start()
            collect(sub, 8.0, msgs)
            cam.stop()  # the camera's server crashes mid-run
            wait_state(cfg, "cam0", "reconnecting", 5)
            collect(sub, 2.0, msgs)
            cam.start()
            back_after = wait_state(cfg, "cam0", "running", 10)
            restarted = time.time()
            collect(sub, 10.0 - back_after, msgs)
            talking.set()
            st = status(cfg)
            wait_stored(cfg, msgs)
            hits = query(tmp_path / "cfg.toml", "someone talking", "-k", "100", "--all")  # also the unlike senses
            cat = query(tmp_path / "cfg.toml", "a cat", "-k", "3")
        finally:
            talking.set()
            sub.close()
            stop_daemon(proc, tmp_path)
            voice.join(timeout=30)
    print(f"camera back {back_after:.2f} s after its server restarted; encoders {st['encoders']}")
    # (a moment, emb.moment.all, would come only once a slice is 40 s past: not within this run, allowed anyway)
    assert {m.topic for m in msgs} - {"emb.moment.all"} == {"emb.image.screen0", "emb.image.cam0", "emb.audio.mic0"}
    assert any(m.topic == "emb.image.cam0" and m.header["ts"] >= restarted for m in msgs), "camera did not resume"
    cam0 = st["sources"]["cam0"]
    assert cam0["reconnects"] >= 1 and cam0["state"] == "running", cam0
    assert all(s["state"] == "running" for s in st["sources"].values()), st["sources"]
    assert {h["source"] for h in hits} == {"screen0", "cam0", "mic0"}, hits  # one memory for every sense
    assert hits[0]["source"] == "mic0" and hits[0]["labels"][0] == "Speech", hits[0]
    assert cat[0]["source"] == "screen0", cat
