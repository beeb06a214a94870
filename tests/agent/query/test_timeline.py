"""`timeline`: a window in equal bins, per stream its counts and the first memory of each bin. A real Memory (Chroma,
the store in a child process as the daemon runs it) with rows of five streams, a real Service on an ipc socket,
asked through sinks.client.timeline and raw requests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agent.query.service import Service
from agent.query.timeline import Timeline
from encoders.records import Embedding, Encoded, Frame, text_id
from sinks.client import Rejected, request, timeline
from sinks.memory import Memory

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
)

S = 1_000_000_000
DAY = 1_763_856_000  # a UTC midnight: the day bucket starts here
T = DAY + 9 * 3600  # 09:00, the hour asked about (bins of 60 s)
VEC = np.full(4, 0.5, np.float32)


def frame(source: str, modality: str, ts: float) -> Frame:
    return Frame(source, modality, np.full((30, 40, 3), 90, np.uint8), round(ts * S), 0)


def image(source: str, ts: float, label: str) -> Encoded:
    f = frame(source, "image", ts)
    return Encoded(f, tuple(Embedding.of(f, space, VEC, labels=(label,)) for space in ("img/4", "txt/4")))


def sound(ts: float) -> Encoded:
    f = frame("mic0", "audio", ts)
    return Encoded(f, (Embedding.of(f, "aud/4", VEC, labels=("speech",)),))


def said(ts: float, text: str) -> Encoded:
    f = frame("mic0", "audio", ts)
    return Encoded(
        f, (Embedding(f.id, "mic0", "text", "txt/4", VEC, f.ts_ns, 0, text=text, key=text_id("mic0", f.ts_ns, 0)),)
    )


def moment(ts: float) -> Encoded:
    f = frame("all", "moment", ts)
    return Encoded(f, (Embedding.of(f, "txt/4", VEC, extra={"end": str(ts + 10)}),))


def rows() -> list[Encoded]:
    out = [image("screen0", T + s, f"page{s}") for s in range(0, 3600, 7)]  # 515 frames, ~8.6 a bin
    out += [image("cam0", T + s, "person") for s in (125, 130, 3599)]
    out += [sound(T + s) for s in range(60, 120, 2)]  # bin 1 only
    out += [said(T + 61, "the budget is late"), said(T + 1800, "lunch")]
    out += [moment(T + s) for s in range(0, 3600, 10)]
    out += [image("screen0", T - 1, "before"), image("screen0", T + 3600.5, "after")]  # just outside the hour
    return out


class World:
    def __init__(self, root: Path) -> None:
        self.memory = Memory(root / "data", 64, 0.1, True, 40, 1000, process=True)
        items = rows()
        self.memory.write(items, {it.frame.id: p for it in items if (p := self.memory.thumbs.save(it.frame))})
        self.endpoint = f"ipc://{root}/query.sock"
        self.service = Service(self.endpoint, self.memory, [], lambda: {})
        self.service.start()

    def timeline(self, **kw) -> dict:
        return timeline(self.endpoint, timeout=30, **kw)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("timeline"))
    yield w
    w.service.close()
    w.memory.close()


def test_an_hour_in_minutes_has_a_lane_per_stream_with_counts_and_first_memories(world):
    reply = world.timeline(since=T, until=T + 3600, bins=60)
    assert (reply["since"], reply["until"], reply["bins"], reply["width"]) == (T, T + 3600, 60, 60.0)
    lanes = {lane["lane"]: lane for lane in reply["lanes"]}
    assert [lane["lane"] for lane in reply["lanes"]] == ["all", "cam0", "mic0", "mic0#text", "screen0"]
    kinds = {name: (lane["source"], lane["modality"]) for name, lane in lanes.items()}
    assert kinds == {
        "all": ("all", "moment"),
        "cam0": ("cam0", "image"),
        "mic0": ("mic0", "audio"),
        "mic0#text": ("mic0", "text"),
        "screen0": ("screen0", "image"),
    }
    screen = lanes["screen0"]
    want = [len([s for s in range(0, 3600, 7) if 60 * i <= s < 60 * (i + 1)]) for i in range(60)]
    assert screen["counts"] == want and sum(want) == 515  # once each, though every frame has rows in two spaces
    assert [it["bin"] for it in screen["items"]] == list(range(60))
    firsts = [min(s for s in range(0, 3600, 7) if s >= 60 * i) for i in range(60)]
    assert [it["ts"] for it in screen["items"]] == [T + s for s in firsts]
    item = screen["items"][1]
    assert item["id"] == f"screen0-{(T + 63) * S}" and item["labels"] == ["page63"] and item["text"] is None
    assert set(item) == {"bin", "id", "ts", "source", "modality", "labels", "thumb", "text"}
    assert Path(item["thumb"]).exists()
    assert lanes["cam0"]["counts"][2] == 2 and lanes["cam0"]["counts"][59] == 1 and sum(lanes["cam0"]["counts"]) == 3
    assert [it["ts"] for it in lanes["cam0"]["items"]] == [T + 125, T + 3599]
    assert lanes["mic0"]["counts"][1] == 30 and sum(lanes["mic0"]["counts"]) == 30
    text = lanes["mic0#text"]["items"]
    assert [(it["bin"], it["text"], it["modality"]) for it in text] == [
        (1, "the budget is late", "text"),
        (30, "lunch", "text"),
    ]
    assert lanes["all"]["counts"] == [6] * 60 and lanes["all"]["items"][0]["modality"] == "moment"
    assert json.loads(json.dumps(reply)) == reply  # plain JSON


def test_default_bins_the_whole_day_and_a_quiet_window(world):
    reply = world.timeline(since=DAY, until=DAY + 86400)
    assert reply["bins"] == 120 and reply["width"] == 720.0
    screen = next(lane for lane in reply["lanes"] if lane["lane"] == "screen0")
    assert sum(screen["counts"]) == 517 and len(screen["counts"]) == 120  # the hour and the two just outside it
    assert [it["labels"] for it in screen["items"]][:2] == [["before"], ["page0"]]  # 08:48-09:00, 09:00-09:12
    assert world.timeline(since=DAY - 86400, until=DAY - 1)["lanes"] == []
    assert world.timeline(since=T + 3601, until=T + 7200, bins=1)["lanes"] == []


def test_bad_requests_are_answered_and_counted(world):
    bad = [
        ({}, "timeline needs since as a number"),
        ({"since": T}, "timeline needs until as a number"),
        ({"since": "09:00", "until": T}, "timeline needs since as a number"),
        ({"since": True, "until": T}, "timeline needs since"),
        ({"since": T, "until": T}, "since must be before until"),
        ({"since": T + 1, "until": T}, "since must be before until"),
        ({"since": T, "until": T + 32 * 86400}, "the window is 32 days long; at most 31 days"),
        ({"since": T, "until": T + 60, "bins": 0}, "bins must be an integer from 1 to 500"),
        ({"since": T, "until": T + 60, "bins": 501}, "bins must be an integer from 1 to 500"),
        ({"since": T, "until": T + 60, "bins": 2.5}, "bins must be an integer"),
        ({"since": T, "until": T + 60, "bins": "10"}, "bins must be an integer"),
    ]
    before = world.service.stats()["bad_requests"]
    for body, message in bad:
        with pytest.raises(Rejected, match=message):
            request(world.endpoint, {"op": "timeline", **body}, timeout=30)
    assert world.service.stats()["bad_requests"] == before + len(bad)
    assert request(world.endpoint, {"op": "timeline", "since": T, "until": T + 60, "bins": None})["bins"] == 120
    assert world.timeline(since=T, until=T + 31 * 86400, bins=500)["lanes"]  # the longest window, the most bins


def test_the_handler_over_an_in_process_store(tmp_path):
    memory = Memory(tmp_path / "data", 8, 0.1, False, 40, 100)
    try:
        assert Timeline(memory)({"since": T, "until": T + 60}) == {
            "since": T,
            "until": T + 60,
            "bins": 120,
            "width": 0.5,
            "lanes": [],
        }
        memory.write([said(T + 1.25, "hello"), image("screen0", T + 59.9, "late")])
        lanes = Timeline(memory)({"since": T, "until": T + 60, "bins": 120})["lanes"]
        assert [(lane["lane"], lane["counts"].index(1), lane["items"][0]["bin"]) for lane in lanes] == [
            ("mic0#text", 2, 2),
            ("screen0", 119, 119),
        ]
    finally:
        memory.close()


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(("since", "until", "bins")), value=json_values)
@example(field="since", value=-1e12)
@example(field="until", value=1e300)
@example(field="since", value=T + 3600 - 1e-9)
def test_any_field_value_is_answered(world, field, value):
    body = {"op": "timeline", "since": T, "until": T + 3600, field: value}
    try:
        reply = request(world.endpoint, body, timeout=30)
    except Rejected as e:
        assert e.args[0] and not e.args[0].startswith("internal error"), (body, e)
    else:
        assert all(sum(lane["counts"]) for lane in reply["lanes"]), body
