"""The daemon's wiring, in this process: a source the test drives, the real image model, result stage, bus,
Chroma memory and query endpoint on real sockets.

What only the wiring can get wrong: a pause reaches the pipeline (results of frames captured before the
pause reply are dropped), forget reaches memory and the bus (`sys.forget`), a header's thumbnail is on disk
when the header arrives, and a late joiner's backfill rows are the live headers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import skimage.data

from agent import config
from agent.daemon import Daemon
from agent.pipeline.mailbox import Mailboxes
from encoders.records import Frame
from sinks.bus.wire import Message
from sinks.client import Subscriber, backfill, request

HOUR_NS = 3600 * 1_000_000_000
PICTURES = (skimage.data.chelsea(), skimage.data.coffee(), skimage.data.astronaut(), skimage.data.rocket())


class HandSource:
    """A Source (agent.sources.Source) whose frames the test posts, stamped as a capture thread would."""

    modality = "image"

    def __init__(self, name: str, post: Callable[[Frame], None]) -> None:
        self.name = name
        self._post = post
        self.state = "stopped"
        self.captured = 0

    def probe(self) -> str | None:
        return None

    def describe(self) -> str:
        return "frames posted by the test"

    def start(self) -> None:
        self.state = "running"

    def stop(self) -> None:
        self.state = "stopped"

    def pause(self, seconds: float | None = None) -> None:
        self.state = "paused"

    def resume(self) -> None:
        self.state = "running"

    def stats(self) -> dict[str, float | int | str]:
        return {"state": self.state, "captured": self.captured, "kept": self.captured, "errors": 0, "last_error": ""}

    def emit(self, data: np.ndarray, ts_ns: int | None = None, mono_ns: int | None = None) -> Frame:
        """Post a frame; `mono_ns` (capture time) may be in the past: a frame still on its way."""
        frame = Frame(self.name, "image", data, ts_ns or time.time_ns(), mono_ns or time.monotonic_ns())
        self.captured += 1
        self._post(frame)
        return frame


class Running:
    def __init__(self, daemon: Daemon, cam: HandSource) -> None:
        self.daemon, self.cam = daemon, cam
        self.query = config.query_endpoint(daemon.cfg)
        self.bus = config.bus_endpoint(daemon.cfg)


@pytest.fixture
def running(tmp_path: Path, model_cache: Path) -> Iterator[Running]:
    path = tmp_path / "cfg.toml"
    path.write_text(
        f'[daemon]\ndata_dir = "{tmp_path / "data"}"\ncache_dir = "{model_cache}"\nruntime_dir = "{tmp_path / "run"}"\n'
        '[device]\nname = "CPU"\n[store]\nflush_s = 0.2\n[metrics]\nenabled = false\n'
    )
    cams: list[HandSource] = []

    def sources(boxes: dict[str, Mailboxes]) -> list[HandSource]:  # injected: no sensor is opened
        cams.append(HandSource("cam0", boxes["image"].put))
        return cams

    daemon = Daemon(config.load(path), sources=sources)  # type: ignore[arg-type]
    daemon.start()
    try:
        yield Running(daemon, cams[0])
    finally:
        daemon.stop()


def until(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(0.02)


def messages_of(sub: Subscriber, frame: Frame, seen: list[Message], timeout: float = 30.0) -> list[Message]:
    """Every message up to and including the first of `frame` (one per space follow it at once)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = sub.recv(timeout=0.5)
        if msg is None:
            continue
        seen.append(msg)
        if msg.id == frame.id:
            while (more := sub.recv(timeout=0.5)) is not None:
                seen.append(more)
            return [m for m in seen if m.id == frame.id]
    raise AssertionError(f"no message for {frame.id}")


def connected(run: Running, sub: Subscriber) -> None:
    """Past the PUB/SUB slow-joiner window: a posted frame's message arrives."""
    for i in range(20):
        frame = run.cam.emit(PICTURES[i % 2])
        msg = sub.recv(timeout=1.0)
        while msg is not None and msg.id != frame.id:
            msg = sub.recv(timeout=1.0)
        if msg is not None:
            while sub.recv(timeout=0.3) is not None:
                pass
            return
    raise AssertionError("the subscriber never heard the daemon")


def test_a_pause_drops_results_of_frames_captured_before_its_reply(running: Running) -> None:
    sub = Subscriber(running.bus, "emb.")
    try:
        connected(running, sub)
        status = running.daemon.status
        before_ns = time.monotonic_ns()  # a frame is captured here, and is still being encoded when...
        reply = request(running.query, {"op": "pause", "source": "cam0"})  # ...the pause is answered
        assert reply["paused"] == ["cam0"] and reply["states"] == {"cam0": "paused"}
        late = running.cam.emit(PICTURES[2], mono_ns=before_ns)
        until(lambda: status().sources["cam0"].discarded == 1, 30, "the late frame discarded")
        request(running.query, {"op": "resume", "source": "cam0"})
        fresh = running.cam.emit(PICTURES[3])
        seen: list[Message] = []
        assert messages_of(sub, fresh, seen)  # the bus still carries what comes after the pause...
    finally:
        sub.close()
    assert late.id not in {m.id for m in seen}  # ...but never the frame captured before it
    until(lambda: bool(running.daemon.memory.vectors(fresh.id)), 10, "the fresh frame stored")
    assert running.daemon.memory.vectors(late.id) == {}
    assert not list((running.daemon.cfg.daemon.data_dir / "thumbs").rglob(f"{late.id}.jpg"))
    st = status()
    assert st.sources["cam0"].discarded == 1 and st.encoders["image"].completed >= 2


def test_forget_through_the_daemon_removes_rows_and_thumbnails_and_announces_it(running: Running) -> None:
    sub, forgets = Subscriber(running.bus, "emb."), Subscriber(running.bus, "sys.forget")
    try:
        connected(running, sub)
        now = time.time_ns()
        live: dict[str, list[Message]] = {}
        frames = []
        for i, hours_ago in enumerate((3, 2, 0)):
            frame = running.cam.emit(PICTURES[i], ts_ns=now - hours_ago * HOUR_NS)
            msgs = messages_of(sub, frame, [])
            # the thumbnail a header names is on disk when the header arrives
            assert all(m.thumb and Path(m.thumb).is_file() for m in msgs), [m.header for m in msgs]
            frames.append(frame)
            live[frame.id] = msgs
        per_frame = len(live[frames[0].id])
        memory = running.daemon.memory
        until(lambda: all(len(memory.vectors(f.id)) == per_frame for f in frames), 30, "all rows stored")

        reply = request(running.query, {"op": "forget", "older_than": 1800})
        announced = forgets.recv(timeout=5)
    finally:
        sub.close()
        forgets.close()
    assert reply["ok"] and reply["thumbs"] == 2 and reply["since"] is None
    # the frames of 3 and 2 hours ago, in every space, and the moment of each one's slice (agent/moments.py: closed
    # when a later capture came, and handed to memory before the forget ran)
    assert reply["count"] == 2 * per_frame + 2
    assert announced is not None and announced.topic == "sys.forget"
    assert announced.header["count"] == reply["count"] and announced.header["until"] == reply["until"]

    left = [m for m in backfill(running.query, 0)]
    assert {m.id for m in left} & {f.id for f in frames} == {frames[2].id}
    assert all(m.ts > reply["until"] for m in left)  # connected()'s frames are recent too
    for frame in frames:
        assert any(running.daemon.cfg.daemon.data_dir.rglob(f"{frame.id}.jpg")) == (frame is frames[2])
    # a late joiner's rows are the live headers, built by the same function (only seq and scores are live-only)
    stored = {m.space: m.header for m in left if m.id == frames[2].id}
    for msg in live[frames[2].id]:
        expected = {k: v for k, v in msg.header.items() if k not in ("seq", "scores")}
        assert stored[msg.space] == expected
