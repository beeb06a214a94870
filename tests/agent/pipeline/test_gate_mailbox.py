import time

import numpy as np

from agent.pipeline.gate import ChangeGate
from agent.pipeline.mailbox import Mailboxes
from encoders.records import Frame

S = 1_000_000_000


def img(value: int) -> np.ndarray:
    return np.full((120, 160, 4), value, np.uint8)


def test_gate_keeps_first_skips_static_and_forces_keep():
    gate = ChangeGate(threshold=2.0, force_keep_s=5.0)
    kept = [gate.keep(img(100), t * S) for t in range(12)]  # 12 s of a static screen at 1 fps
    assert kept == [True] + [False] * 4 + [True] + [False] * 4 + [True, False]
    assert (gate.kept, gate.skipped, gate.forced) == (3, 9, 2)


def test_gate_keeps_changes_above_threshold_only():
    gate = ChangeGate(threshold=2.0, force_keep_s=600)
    assert gate.keep(img(100), 0)
    assert not gate.keep(img(101), 1)  # 1 grey level: noise
    assert gate.keep(img(140), 2)
    noisy = img(140)
    noisy[:10, :10] = 0  # a small change on a big screen (a blinking cursor) stays below the threshold
    assert not gate.keep(noisy, 3)


def frame(source: str, n: int) -> Frame:
    return Frame(source, "image", np.zeros((2, 2, 3), np.uint8), n, n)  # ts_ns = mono_ns = n


def test_latest_frame_mailbox_drops_and_counts():
    mb = Mailboxes()
    mb.add("a")
    for n in range(5):
        mb.put(frame("a", n))
    got = mb.take(0.01)
    assert got is not None and got.ts_ns == 4  # the latest wins
    assert mb.dropped["a"] == 4
    assert mb.take(0.01) is None


def test_mailboxes_are_served_round_robin():
    mb = Mailboxes()
    mb.add("a", depth=10)
    mb.add("b", depth=10)
    for n in range(3):
        mb.put(frame("a", n))
    mb.put(frame("b", 0))
    order = [mb.take(0.01).source for _ in range(4)]
    assert order == ["a", "b", "a", "a"]
    assert mb.dropped == {"a": 0, "b": 0}


def test_pause_cut_discards_waiting_frames_and_results_captured_before_it():
    mb = Mailboxes()
    mb.add("a", depth=4)
    mb.add("b", depth=4)
    now = time.monotonic_ns()
    for n in range(3):
        mb.put(frame("a", now - 10 + n))
    mb.put(frame("b", now))
    in_flight = mb.take(0.01)  # the dispatcher already has one of a's frames
    assert in_flight is not None and in_flight.source == "a"
    assert mb.cut("a") == 2  # a paused: its two waiting frames go
    assert mb.depth() == {"a": 0, "b": 1} and mb.discarded == {"a": 2, "b": 0}
    assert mb.stale(in_flight)  # its result comes back after the pause: dropped, counted
    assert not mb.stale(frame("b", now))  # other sources are untouched
    assert not mb.stale(frame("a", time.monotonic_ns() + 1))  # captured after resume: kept
    assert mb.discarded == {"a": 3, "b": 0}
    assert mb.take(0.01).source == "b" and mb.take(0.01) is None
