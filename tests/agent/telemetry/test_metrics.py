"""Observability of a real daemon on Xvfb: Prometheus metrics, the sys.status heartbeat, quiet structured logs,
and screen exclusions all the way to the stored thumbnails.

One daemon serves the whole module (starting one costs seconds); the screen changes under it the whole time.
"""

from __future__ import annotations

import re
import socket
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent import config
from agent.sources.exclude import Rect
from agent.telemetry.logs import LogfmtFormatter, kv, quote
from agent.telemetry.metrics import Histogram
from agent.telemetry.prom import MetricsError, MetricsServer
from demo.standins import Display
from sinks.client import Subscriber
from tests.support.daemon import ONLY_SCREEN, start_daemon, status, stop_daemon
from tests.support.env import require, sensorium
from tests.support.xwin import XWin

SECRET = Rect(200, 200, 300, 200)
LOG_WATCH_S = 8.0


class Running:
    def __init__(self, proc, cfg: config.Config, tmp: Path, display: Display) -> None:
        self.proc, self.cfg, self.tmp, self.display = proc, cfg, tmp, display
        self.started_at = time.monotonic()

    def scrape(self) -> dict[tuple[str, tuple], float]:
        url = status(self.cfg)["metrics"]
        assert url.startswith("http://127.0.0.1:"), url
        text = urllib.request.urlopen(url, timeout=5).read().decode()
        out = {}
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return out


def slideshow(display: Display, stop: threading.Event) -> None:
    rng = np.random.default_rng(0)
    while not stop.is_set():
        display.show(rng.integers(60, 255, (48, 64, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1))
        stop.wait(0.3)


@pytest.fixture(scope="module")
def daemon(model_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    require("Xvfb")
    require("feh")
    tmp = tmp_path_factory.mktemp("obs")
    display = Display(tmp)
    display.start()
    stop = threading.Event()
    show = threading.Thread(target=slideshow, args=(display, stop), daemon=True)
    win = None
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DISPLAY", display.name)
            display.show(np.full((48, 64, 3), 200, np.uint8))
            win = XWin(display.name, "secret-bank", ("bank", "Bank"), SECRET)
            text = (
                f'[daemon]\ndata_dir = "{tmp / "data"}"\ncache_dir = "{model_cache}"\nruntime_dir = "{tmp / "run"}"\n'
                f'log_level = "INFO"\n[screen]\nfps = 8.0\ngate_threshold = 0.0\nexclude_windows = ["secret-bank"]\n'
                f"{ONLY_SCREEN}[store]\nflush_s = 0.3\n"
            )
            proc, cfg = start_daemon(tmp, text)
        show.start()
        running = Running(proc, cfg, tmp, display)
        yield running
        stop.set()
        show.join()
        stop_daemon(proc, tmp)
    finally:
        stop.set()
        if win is not None:
            win.close()
        display.close()


def value(m: dict, name: str, **labels: str) -> float:
    return m[(name, tuple(sorted(labels.items())))]


def test_prometheus_counters_rise_between_scrapes(daemon: Running):
    inf = {"model": "effnet-lite0", "modality": "image"}
    rising = [(f"sensorium_frames_{n}_total", {"source": "screen0"}) for n in ("captured", "kept", "masked")] + [
        ("sensorium_inferences_total", inf),
        ("sensorium_published_messages_total", {}),
        ("sensorium_store_writes_total", {}),  # the first write waits for the store process to start
    ]
    first = daemon.scrape()
    deadline = time.monotonic() + 30
    while True:
        time.sleep(0.5)
        before = status(daemon.cfg)
        second = daemon.scrape()
        after = status(daemon.cfg)
        flat = [n for n, kw in rising if value(second, n, **kw) <= value(first, n, **kw)]
        if not flat:
            break
        assert time.monotonic() < deadline, f"not rising within 30 s: {flat}"
    # the histogram's count is the inferences that reached the sinks; its +Inf bucket equals it
    count = value(second, "sensorium_inference_latency_seconds_count", **inf)
    assert count > 0 and value(second, "sensorium_inference_latency_seconds_bucket", le="+Inf", **inf) == count
    assert value(second, "sensorium_pipeline_latency_seconds_count") > 0
    assert value(second, "sensorium_spool_depth") == 0
    # the drop counter is the mailbox's: between what status says just before and just after the scrape...
    dropped = value(second, "sensorium_frames_dropped_total", source="screen0")
    assert before["sources"]["screen0"]["dropped"] <= dropped <= after["sources"]["screen0"]["dropped"]
    # ...and it is what the rest of the bookkeeping leaves: every kept frame was submitted for inference, refused
    # or dropped, or is still in the mailbox (one more may be between the gate and the mailbox, one in the
    # dispatcher's hand; status reads the counters one after another, so allow a frame either way)
    src, enc, disp = after["sources"]["screen0"], after["encoders"]["image"], after["dispatchers"]["image"]
    accounted = enc["submitted"] + src["rejected"] + disp["errors"] + src["dropped"] + src["discarded"] + src["queue"]
    assert -1 <= src["kept"] - accounted <= 3, (src, enc, disp)
    assert value(second, "sensorium_source_state", source="screen0", state="running") == 1
    assert value(second, "sensorium_frames_rejected_total", source="screen0") == 0


def test_heartbeat_every_second_with_rising_counters(daemon: Running):
    sub = Subscriber(config.bus_endpoint(daemon.cfg), "sys.status")
    beats = []
    deadline = time.monotonic() + 10
    try:
        while len(beats) < 3 and time.monotonic() < deadline:
            msg = sub.recv(timeout=2.0)
            if msg is not None:
                beats.append(msg)
    finally:
        sub.close()
    assert len(beats) >= 3, beats
    seqs = [b.seq for b in beats]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    captured = [b.header["status"]["sources"]["screen0"]["captured"] for b in beats]
    assert captured[0] < captured[-1], captured
    gaps = np.diff([b.header["ts"] for b in beats])
    print(f"heartbeat gaps: {np.round(gaps, 2).tolist()} s")
    assert 0.5 < gaps.mean() < 2.5, gaps  # about one a second, on a fixed schedule (loose: shared cores)


def test_secret_window_is_black_in_stored_thumbnails(daemon: Running):
    deadline = time.monotonic() + 15
    thumbs: list[Path] = []
    while time.monotonic() < deadline and len(thumbs) < 3:
        thumbs = sorted((daemon.tmp / "data").rglob("*.jpg"))
        time.sleep(0.3)
    assert len(thumbs) >= 3, thumbs
    for path in thumbs:
        img = cv2.imread(str(path))
        s = img.shape[1] / 1024  # thumbnails keep the aspect ratio
        x0, y0, x1, y1 = (int(v * s) for v in (SECRET.x, SECRET.y, SECRET.x + SECRET.w, SECRET.y + SECRET.h))
        inner = img[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2]  # JPEG rings a little next to the busy screen
        assert inner.mean() < 8 and inner.max() < 64, (path, float(inner.mean()), int(inner.max()))  # window: 255
        assert img[: y0 - 2].mean() > 50, path  # the rest of the screen is there


def test_log_has_no_per_frame_lines_in_steady_state(daemon: Running):
    """After start-up, a screen that changes several times a second gives no repeated log lines."""
    left = LOG_WATCH_S - (time.monotonic() - daemon.started_at)
    if left > 0:
        time.sleep(left)
    st = status(daemon.cfg)["sources"]["screen0"]
    assert st["kept"] >= 8, st  # frames really flowed
    lines = (daemon.tmp / "daemon.log").read_text().splitlines()
    events = [ln for ln in lines if ln.startswith("ts=")]
    assert events and all(
        re.match(r"ts=\S+Z level=(debug|info|warning|error|critical) logger=\S+ msg=", e) for e in events
    )
    start = next(i for i, ln in enumerate(events) if 'msg="running' in ln or "msg=running" in ln)
    after = [re.sub(r"^ts=\S+ ", "", e) for e in events[start + 1 :]]
    templates = Counter(re.sub(r"\d+(\.\d+)?", "N", e) for e in after)
    print(f"{len(after)} log line(s) after start-up in ~{LOG_WATCH_S:g}s; {st['kept']} frames kept")
    assert all(n == 1 for n in templates.values()), templates
    assert len(after) <= 3, after


def test_busy_metrics_port_is_a_clear_error(tmp_path: Path):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        with pytest.raises(MetricsError, match=rf"cannot listen on 127.0.0.1:{port}.*port"):
            MetricsServer("127.0.0.1", port, _Empty()).start()


def test_busy_metrics_port_stops_the_daemon_with_exit_2(daemon: Running, home, tmp_path: Path):
    """A second daemon (own data dir) asking for the first one's metrics port says so and exits 2."""
    port = int(status(daemon.cfg)["metrics"].rsplit(":", 1)[1].split("/")[0])
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f"{ONLY_SCREEN}[metrics]\nport = {port}\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DISPLAY", daemon.display.name)
        out = sensorium("--config", str(cfg), "run", check=False, timeout=90)
    assert out.returncode == 2, out.stderr
    assert f"metrics: cannot listen on 127.0.0.1:{port}" in out.stderr, out.stderr


def test_off_host_metrics_need_allow_remote(tmp_path: Path):
    path = tmp_path / "c.toml"
    path.write_text('[metrics]\nhost = "0.0.0.0"\n')
    with pytest.raises(config.ConfigError, match=re.escape("'metrics.host' '0.0.0.0' would listen off-host")):
        config.load(path)
    path.write_text('[metrics]\nhost = "0.0.0.0"\nallow_remote = true\n')
    assert config.load(path).metrics.host == "0.0.0.0"
    path.write_text("[metrics]\nport = 70000\n")
    with pytest.raises(config.ConfigError, match=re.escape("'metrics.port' must be 0-65535")):
        config.load(path)


class _Empty:
    def collect(self):
        return iter(())


def test_histogram_is_cumulative():
    h = Histogram((0.01, 0.1))
    for s in (0.005, 0.01, 0.05, 3.0):
        h.observe(s)
    buckets, total = h.snapshot()
    assert buckets == [("0.01", 2), ("0.1", 3), ("+Inf", 4)] and total == pytest.approx(3.065)


def test_logfmt_lines_are_one_event_each():
    import logging

    rec = logging.LogRecord("agent.x", logging.ERROR, __file__, 1, 'bad "frame" %s', ("a b",), None)
    rec.__dict__.update(kv(source="cam0", n=3, why="two\nlines"))
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        rec.exc_info = sys.exc_info()
    line = LogfmtFormatter().format(rec)
    assert "\n" not in line
    assert (
        'level=error logger=agent.x msg="bad \\"frame\\" a b" source=cam0 n=3 why="two\\nlines" exc="Traceback' in line
    )
    assert quote("") == '""' and quote("x=1") == '"x=1"'
