"""Server mode and the spool against a real `chroma run` on 127.0.0.1, stopped and restarted mid-run."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import skimage.data

from agent import config
from sinks.client import request
from sinks.memory import Memory
from tests.support.daemon import ONLY_SCREEN, start_daemon, status, stop_daemon
from tests.support.env import IN_CI
from tests.support.rows import balanced, item, unit

CHROMA = Path(__file__).resolve().parents[3] / ".venv" / "bin" / "chroma"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ChromaServer:
    def __init__(self, path: Path, log: Path) -> None:
        self.path, self.log, self.port = path, log, free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [str(CHROMA), "run", "--path", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            try:
                urllib.request.urlopen(self.url + "/api/v2/heartbeat", timeout=1).read()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("chroma run did not answer within 30 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def server(tmp_path: Path):
    if not CHROMA.exists():
        if IN_CI:
            pytest.fail(f"{CHROMA} missing")
        pytest.skip(f"{CHROMA} missing")
    srv = ChromaServer(tmp_path / "server", tmp_path / "chroma.log")
    yield srv
    srv.stop()


def wait_until(pred, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_server_stopped_and_restarted_mid_run_loses_nothing(server: ChromaServer, tmp_path: Path) -> None:
    data = tmp_path / "agent"
    opts = {"batch_size": 4, "flush_s": 0.1, "thumbnails": False, "thumb_width": 8, "queue_size": 1000}
    rng = np.random.default_rng(0)
    vec = lambda: unit(rng.standard_normal(4))  # noqa: E731

    server.start()
    mem = Memory(data, **opts, url=server.url, retry_s=0.2)
    mem.start()
    for i in range(20):
        mem.put(item(i, vec()))
    wait_until(lambda: mem.stats()["stored"] == 20)

    server.stop()  # mid-run: the next writes fail and go to the spool, counted
    for i in range(20, 50):
        mem.put(item(i, vec()))
    wait_until(lambda: mem.stats()["queued"] == 0)
    st = mem.stats()
    assert (st["stored"], st["spool_rows"], st["lost"]) == (20, 30, 0) and st["failed"] > 0 and balanced(st), st
    assert st["spool_bytes"] > 30 * 16 and st["store_lag_s"] > 0
    mem.close()  # the daemon stops while the server is down: the spool stays on disk

    # started again while the server is still down: no crash, the spool is found, new rows join it
    mem = Memory(data, **opts, url=server.url, retry_s=0.2)
    assert mem.stats()["recovered"] == 30
    mem.start()
    for i in range(50, 60):
        mem.put(item(i, vec()))
    wait_until(lambda: mem.stats()["queued"] == 0)
    assert mem.stats()["spool_rows"] == 40 and balanced(mem.stats())
    with pytest.raises(Exception):  # noqa: B017 - reads fail while the store is down; the service answers the error
        mem.search("t/4", vec(), k=3)

    server.start()  # same data dir: the 20 stored rows are still there; the spool replays in order
    wait_until(lambda: mem.stats()["spool_rows"] == 0)
    for i in range(60, 65):
        mem.put(item(i, vec()))
    mem.close()
    st = mem.stats()
    assert st["recovered"] + st["received"] == 30 + 15 and st["stored"] == 45 and balanced(st), st
    assert st["store_lag_s"] == 0 and not list((data / "spool").glob("*.spool"))

    check = Memory(tmp_path / "reader", **opts, url=server.url)  # what is in Chroma: every row, once
    assert check.count("t/4") == 65
    rows = check.range(None, limit=100)
    assert [h.id for h, _ in rows] == [item(i, vec()).frame.id for i in range(65)]


def test_daemon_starts_with_the_server_down_and_catches_up(server: ChromaServer, xvfb, home, tmp_path: Path) -> None:
    xvfb.show(skimage.data.chelsea())
    text = (
        "[device]\nname = 'CPU'\n[screen]\nfps = 5.0\ngate_threshold = 0.0\n"
        f"[store]\nbatch_size = 4\nflush_s = 0.2\nurl = '{server.url}'\nagent = 'desk'\n" + ONLY_SCREEN
    )
    proc, cfg = start_daemon(tmp_path, text)  # nothing listens at store.url yet: the daemon runs anyway
    try:
        wait_until(lambda: status(cfg)["memory"]["spool_rows"] >= 8, timeout=60)
        st = status(cfg)["memory"]
        assert st["stored"] == 0 and st["lost"] == 0 and balanced(st), st
        server.start()
        wait_until(lambda: status(cfg)["memory"]["stored"] >= st["spool_rows"] + 4, timeout=60)
        assert list(status(cfg)["sources"]) == ["desk.screen0"]  # this agent's rows are its own in a shared store
        request(config.query_endpoint(cfg), {"op": "pause", "source": "screen0"})  # the short name works too
        wait_until(lambda: status(cfg)["memory"]["queued"] == 0)
        st = status(cfg)["memory"]
        assert st["spool_rows"] == 0 and st["received"] == st["stored"] and balanced(st), st
        reader = Memory(tmp_path / "reader", 1, 0.1, False, 8, 1, url=server.url)
        assert sum(reader.count(s) for s in reader.spaces()) == st["stored"]  # every row in Chroma, once
        assert {hit.source for hit, _ in reader.range(0, limit=1000)} == {"desk.screen0"}
    finally:
        stop_daemon(proc, tmp_path)
