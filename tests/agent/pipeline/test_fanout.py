"""The result stage with real mailboxes and real thumbnails on disk; sinks that record what they are handed."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from agent.pipeline.fanout import FanOut
from agent.pipeline.mailbox import Mailboxes
from agent.telemetry.metrics import Histogram, Latencies
from encoders.records import Embedding, Encoded, Frame
from sinks.memory.thumbs import Thumbnails


class Recorder:
    """A sink that notes, at the moment it is handed a result, whether the advertised thumbnail exists."""

    def __init__(self, fail_first: int = 0) -> None:
        self.got: list[tuple[str, str | None, bool]] = []
        self.fail_first = fail_first

    def put(self, item: Encoded, thumb: str | None = None) -> None:
        if self.fail_first:
            self.fail_first -= 1
            raise RuntimeError("sink broke")
        self.got.append((item.frame.id, thumb, thumb is not None and Path(thumb).is_file()))


def result(source: str = "cam0", modality: str = "image") -> Encoded:
    data = np.full((48, 64, 3), 120, np.uint8) if modality == "image" else np.zeros(16000, np.float32)
    frame = Frame(source, modality, data, time.time_ns(), time.monotonic_ns())
    vec = np.ones(4, np.float32) / 2
    return Encoded(frame, (Embedding.of(frame, "t/4", vec),), infer_ms=3.0)


def stage(tmp_path: Path, sinks, **kw) -> tuple[FanOut, Mailboxes]:
    boxes = Mailboxes()
    boxes.add("cam0")
    boxes.add("mic0", depth=4)
    lat = Latencies({"image": Histogram(), "audio": Histogram()})
    thumbs = Thumbnails(tmp_path / "thumbs", 32)
    return FanOut({"cam0": boxes, "mic0": boxes}, thumbs, sinks, lat, **kw), boxes


def test_every_sink_gets_a_thumbnail_that_is_already_on_disk(tmp_path: Path) -> None:
    bus, memory = Recorder(), Recorder()
    fanout, _ = stage(tmp_path, (bus, memory))
    fanout.start()
    items = [result() for _ in range(5)] + [result("mic0", "audio")]
    for it in items:
        fanout.put(it)
    assert fanout.flush(10)
    fanout.close()
    assert bus.got == memory.got
    assert [(i, exists) for i, _, exists in bus.got[:5]] == [(it.frame.id, True) for it in items[:5]]
    assert bus.got[5] == (items[5].frame.id, None, False)  # audio: no thumbnail, and the header says so
    assert fanout.latencies.pipeline.snapshot()[0][-1] == ("+Inf", 6) and len(fanout.recent_ms()) == 6


def test_results_captured_before_a_pause_cut_never_reach_a_sink(tmp_path: Path) -> None:
    sink = Recorder()
    fanout, boxes = stage(tmp_path, (sink,))
    before = result()  # captured, then still being encoded when the source is paused
    fanout.put(before)
    assert fanout.cut("cam0") == 0  # nothing was waiting in the mailbox itself
    after = result()
    fanout.put(after)
    fanout.start()
    assert fanout.flush(10)
    fanout.close()
    assert [i for i, _, _ in sink.got] == [after.frame.id]
    assert boxes.discarded["cam0"] == 1 and not list((tmp_path / "thumbs").rglob(f"{before.frame.id}.jpg"))


def test_a_full_queue_drops_and_counts_and_a_failing_sink_does_not_stop_the_stage(tmp_path: Path) -> None:
    sink = Recorder(fail_first=1)
    fanout, _ = stage(tmp_path, (sink,), queue_size=3)
    items = [result() for _ in range(5)]
    for it in items:  # the stage is not running yet: the queue fills
        fanout.put(it)
    assert fanout.stats() == {"queued": 3, "dropped": 2, "errors": 0}
    fanout.start()
    assert fanout.flush(10)
    fanout.close()
    assert [i for i, _, _ in sink.got] == [it.frame.id for it in items[1:3]]  # the first one broke the sink
    assert fanout.stats() == {"queued": 0, "dropped": 2, "errors": 1}
