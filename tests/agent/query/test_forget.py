"""Forget through the service and the CLI: rows and thumbnails go, subscribers hear `sys.forget`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from agent.query.service import Service
from sinks.bus.publisher import Publisher
from sinks.bus.wire import Message
from sinks.client import Rejected, Subscriber, request
from sinks.memory import Memory
from tests.support.env import sensorium
from tests.support.rows import at
from tests.support.wait import wait_until


@pytest.fixture
def daemon_parts(tmp_path: Path):
    """The daemon's memory, publisher and service on ipc sockets, without sensors or models."""
    mem = Memory(tmp_path / "data", 4, 0.1, True, 40, 100)
    pub = Publisher(f"ipc://{tmp_path}/bus.sock", 100, 100)
    svc = Service(f"ipc://{tmp_path}/query.sock", mem, [], lambda: {}, publish=pub.publish_sys)
    mem.start()
    pub.start()
    svc.start()
    sub = Subscriber(pub.endpoint, "sys.")
    # a SUB hears only what is published after its subscription reached the PUB (slow joiner): probe until it
    # hears one (forgets() below skips the probes still on their way)
    deadline = time.monotonic() + 10
    while True:
        pub.publish_sys("sys.probe", {})
        if sub.recv(timeout=0.05) is not None:
            break
        assert time.monotonic() < deadline, "the subscriber heard no probe within 10 s"
    yield mem, svc, sub
    sub.close()
    svc.close()
    pub.close()
    mem.close()


def forgets(sub: Subscriber, timeout: float) -> list[Message]:
    """The sys.forget messages heard within `timeout` seconds (probes skipped)."""
    out = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        msg = sub.recv(timeout=left)
        if msg is not None and msg.topic == "sys.forget":
            out.append(msg)
    return out


def next_forget(sub: Subscriber, timeout: float = 5.0) -> Message:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        msg = sub.recv(timeout=left)
        if msg is not None and msg.topic == "sys.forget":
            return msg
    raise AssertionError(f"no sys.forget within {timeout:g} s")


def thumbs(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "data" / "thumbs").glob("*/*.jpg"))


def test_forget_op_deletes_rows_and_thumbnails_and_announces_it(daemon_parts, tmp_path: Path) -> None:
    mem, svc, sub = daemon_parts
    now = time.time()
    rows = [at(now - 3600 * h, h) for h in (30, 2, 1)] + [at(now - 60, 9)]
    for r in rows:
        mem.put(r, mem.thumbs.save(r.frame))  # as the daemon's result stage does: thumbnail first
    wait_until(lambda: mem.stats()["stored"] == 4, 30, "the four rows stored")
    assert len(thumbs(tmp_path)) == 4

    reply = request(svc.endpoint, {"op": "forget", "older_than": 1800})  # everything but the last minute
    assert reply["ok"] and reply["count"] == 3 and reply["thumbs"] == 3 and reply["since"] is None
    assert now - 1800 - 5 < reply["until"] <= time.time() - 1800
    msg = next_forget(sub)
    assert msg.header["count"] == 3 and msg.header["until"] == reply["until"] and msg.header["since"] is None
    assert [h.id for h, _ in mem.range(None)] == [rows[3].frame.id]
    assert thumbs(tmp_path) == [f"{rows[3].frame.id}.jpg"]

    for bad in ({"op": "forget"}, {"op": "forget", "since": 10, "until": 5}, {"op": "forget", "until": "x"}):
        with pytest.raises(Rejected):
            request(svc.endpoint, bad)
    assert forgets(sub, 0.5) == []  # refused requests announce nothing
    assert mem.count() == 1


def test_cli_forget_last_minutes(daemon_parts, tmp_path: Path) -> None:
    mem, svc, sub = daemon_parts
    now = time.time()
    old, recent = at(now - 1200, 1), at(now - 120, 2)
    mem.put(old)
    mem.put(recent)
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f"[query]\nendpoint = '{svc.endpoint}'\n")
    out = sensorium("--config", str(cfg), "forget", "--last", "10m", "--json")
    reply = json.loads(out.stdout)
    assert reply["count"] == 1 and reply["until"] is None and now - 601 < reply["since"] < time.time() - 599
    assert next_forget(sub).header["count"] == 1
    assert [h.id for h, _ in mem.range(None)] == [old.frame.id]  # queued rows are written, then forgotten
    refused = sensorium("--config", str(cfg), "forget", check=False)
    assert refused.returncode == 2 and "required" in refused.stderr
