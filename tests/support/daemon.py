"""The daemon as its own process with the real CLI, as a user runs it; helpers to start, stop and listen."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from agent import config
from sinks.bus.wire import Message
from sinks.client import QueryError, Subscriber, backfill, request
from tests.support.env import ROOT

ONLY_SCREEN = "[camera]\nenabled = false\n[microphone]\nenabled = false\n"


def start_daemon(tmp_path: Path, text: str) -> tuple[subprocess.Popen, config.Config]:
    """Run `sensorium run` with the config `text`; return once it answers queries."""
    cfg_path = tmp_path / "cfg.toml"
    if "[metrics]" not in text:  # any free port: test daemons run side by side (and next to a user's daemon)
        text += "\n[metrics]\nport = 0\n"
    if "[web]" not in text:
        text += "\n[web]\nport = 0\n"
    cfg_path.write_text(text)
    log = open(tmp_path / "daemon.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "--config", str(cfg_path), "run"], stdout=log, stderr=log, cwd=ROOT
    )
    cfg = config.load(cfg_path)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"daemon exited {proc.returncode}:\n{(tmp_path / 'daemon.log').read_text()}")
        try:
            request(config.query_endpoint(cfg), {"op": "ping"}, timeout=0.5)
            return proc, cfg
        except QueryError:
            time.sleep(0.2)
    proc.kill()
    pytest.fail("daemon did not answer within 90 s")


def stop_daemon(proc: subprocess.Popen, tmp_path: Path) -> float:
    """SIGTERM, expect exit 0; returns how long it took."""
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=15)
    took = time.monotonic() - t0
    assert code == 0, (tmp_path / "daemon.log").read_text()
    return took


def status(cfg: config.Config) -> dict:
    return request(config.query_endpoint(cfg), {"op": "status"})["status"]


def wait_for(sub: Subscriber, pred: Callable[[Message], bool], timeout: float = 30.0) -> Message:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = sub.recv(timeout=1.0)
        if msg is not None and pred(msg):
            return msg
    raise AssertionError("expected message did not arrive")


def wait_stored(cfg: config.Config, msgs: Iterable[Message], timeout: float = 30.0) -> None:
    """Until memory holds every (frame id, space) of these bus messages, read back through the query
    endpoint as any client would; fails after `timeout`."""
    msgs = list(msgs)
    if not msgs:
        return
    want = {(m.header["id"], m.header["space"]) for m in msgs}
    since = min(m.header["ts"] for m in msgs) - 1
    deadline = time.monotonic() + timeout
    while True:
        got = {(m.header["id"], m.header["space"]) for m in backfill(config.query_endpoint(cfg), since)}
        if want <= got:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(want - got)} of {len(want)} vectors not stored within {timeout}s")
        time.sleep(0.1)
