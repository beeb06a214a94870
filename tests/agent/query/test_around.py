"""`around`: every sense near a moment, and the other times like it. A real Memory (Chroma) filled with rows of
five senses and moments at known times, a real Service on an ipc socket, asked through sinks.client.around and
the `sensorium around` CLI."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agent.query.around import Around
from agent.query.search import BadRequest
from agent.query.service import Service
from encoders.records import Embedding, Encoded, Frame, text_id
from sinks.client import Rejected, around, request
from sinks.memory import Memory
from tests.support.env import sensorium

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
)

T0 = 1_763_900_000
A = T0 + 1000  # the moment asked about
B = T0 + 5000  # another time: the same screen and the same words on it
C = T0 + 9000  # a time that looked and read otherwise
HOURS = [T0 + 20_000 + 3600 * i for i in range(12)]  # other hours (in other day buckets too)
IMG, CLIP, AUD, TXT = "img/8", "clip/8", "aud/8", "txt/8"
RNG = np.random.default_rng(17)


def direction(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=8).astype(np.float32)


OFFICE, OTHER, FACE, HUM, BUDGET, RECIPE = (direction(s) for s in range(6))


def unit(v: np.ndarray, noise: float = 0.05) -> np.ndarray:
    v = v / np.linalg.norm(v) + RNG.normal(scale=noise, size=v.shape).astype(np.float32)
    return (v / np.linalg.norm(v)).astype(np.float32)


def ns(ts: float) -> int:
    return round(ts * 1e9)


def frame(source: str, modality: str, ts: float) -> Frame:
    return Frame(source, modality, np.full((40, 60, 3), 90, np.uint8), ns(ts), 0)


def image(source: str, ts: float, vec: np.ndarray, label: str) -> Encoded:
    f = frame(source, "image", ts)
    return Encoded(f, tuple(Embedding.of(f, space, unit(vec), labels=(label,)) for space in (IMG, CLIP)))


def sound(ts: float, vec: np.ndarray) -> Encoded:
    f = frame("mic0", "audio", ts)
    return Encoded(f, (Embedding.of(f, AUD, unit(vec), labels=("hum",)),))


def words(source: str, ts: float, text: str, vec: np.ndarray) -> Encoded:
    f = frame(source, "image" if source == "screen0" else "audio", ts)
    e = Embedding(f.id, source, "text", TXT, unit(vec), f.ts_ns, 0, text=text, key=text_id(source, f.ts_ns, 0))
    return Encoded(f, (e,))


def moment(ts: float, vec: np.ndarray) -> Encoded:
    f = frame("all", "moment", ts)
    return Encoded(f, (Embedding.of(f, TXT, unit(vec), extra={"end": str(ts + 10), "senses": "screen0,mic0"}),))


def rows() -> list[Encoded]:
    out = [image("screen0", A + dt, OFFICE, "office") for dt in range(-60, 61, 5)]
    out += [image("cam0", A + dt, FACE, "person") for dt in (-20, 7, 25, 45)]
    out += [sound(A - 3, HUM), sound(A + 12, HUM)]
    out += [
        words("screen0", A + 1, "Budget meeting notes Q3", BUDGET),
        words("mic0", A - 8, "about the budget", BUDGET),
    ]
    out += [moment(A - 5, OFFICE + BUDGET), moment(A + 5, OFFICE + BUDGET)]
    out += [image("screen0", B + dt, OFFICE, "office") for dt in range(-20, 21, 5)]
    out += [words("screen0", B + 2, "Budget meeting notes Q4", BUDGET), moment(B - 5, OFFICE + BUDGET)]
    out += [image("screen0", C + dt, OTHER, "kitchen") for dt in range(-20, 21, 5)]
    out += [words("screen0", C + 1, "Pancake recipe", RECIPE), sound(C, HUM), moment(C - 5, OTHER + RECIPE)]
    for i, t in enumerate(HOURS):  # screen, words and moments at other times, so that a rank means something
        seen, read = direction(100 + i), direction(200 + i)
        out += [image("screen0", t, seen, "desk"), words("screen0", t + 1, f"page {i}", read), moment(t, seen + read)]
    return out


class World:
    def __init__(self, root: Path) -> None:
        self.memory = Memory(root / "data", 8, 0.1, True, 40, 100)
        items = rows()
        self.memory.write(items, {it.frame.id: p for it in items if (p := self.memory.thumbs.save(it.frame))})
        self.endpoint = f"ipc://{root}/query.sock"
        self.service = Service(self.endpoint, self.memory, [], lambda: {})
        self.service.start()

    def around(self, **kw) -> dict:
        return around(self.endpoint, timeout=30, **kw)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("around"))
    yield w
    w.service.close()
    w.memory.close()


def screen_id(ts: float) -> str:
    return f"screen0-{ns(ts)}"


def by_sense(reply: dict) -> dict[str, list[dict]]:
    return {g["sense"]: g["hits"] for g in reply["senses"]}


def test_around_a_frame_lists_every_sense_nearest_first_without_the_frame(world):
    reply = world.around(id=screen_id(A), k=100)
    assert reply["at"] == A and reply["window"] == 30 and "elsewhere" not in reply
    senses = by_sense(reply)
    assert set(senses) == {"image:screen0", "image:cam0", "audio:mic0", "text:screen0", "text:mic0", "moment:all"}
    # groups by their nearest memory: screen text (+1 s) first, then screen frames / sound / moments
    nearest = [abs(g["hits"][0]["dt"]) for g in reply["senses"]]
    assert nearest == sorted(nearest) and reply["senses"][0]["sense"] == "text:screen0"
    screen = senses["image:screen0"]
    assert screen_id(A) not in [h["id"] for h in screen]  # the anchor itself is not listed
    assert {h["dt"] for h in screen} == {float(d) for d in range(-30, 31, 5) if d}  # ±30 in, ±35 out: inclusive
    assert [abs(h["dt"]) for h in screen] == sorted(abs(h["dt"]) for h in screen)
    assert len({h["id"] for h in screen}) == len(screen)  # once per frame, though it has a row in two spaces
    assert all(h["spaces"] == [CLIP, IMG] and h["score"] is None and h["labels"] == ["office"] for h in screen)
    assert all(h["thumb"] and Path(h["thumb"]).exists() for h in screen)
    assert [h["dt"] for h in senses["image:cam0"]] == [7.0, -20.0, 25.0]  # the one at +45 s is outside
    assert [h["dt"] for h in senses["audio:mic0"]] == [-3.0, 12.0]
    text = senses["text:screen0"][0]
    assert (
        text["text"] == "Budget meeting notes Q3" and text["frame"] == screen_id(A + 1) and text["modality"] == "text"
    )
    assert senses["text:mic0"][0]["text"] == "about the budget" and senses["text:mic0"][0]["source"] == "mic0"
    assert [h["dt"] for h in senses["moment:all"]] == [-5.0, 5.0]


def test_k_window_and_a_time(world):
    reply = world.around(at=A + 0.4, window=10, k=3)
    senses = by_sense(reply)
    # a time has no anchor to leave out: the frame at A is the nearest; ties (±10) earlier first
    assert [h["dt"] for h in senses["image:screen0"]] == [-0.4, 4.6, -5.4]
    assert all(abs(h["dt"]) <= 10 for hits in senses.values() for h in hits)
    assert "image:cam0" in senses and [h["dt"] for h in senses["image:cam0"]] == [6.6]
    assert set(senses) == {"image:screen0", "image:cam0", "audio:mic0", "text:screen0", "text:mic0", "moment:all"}


def test_elsewhere_finds_the_other_time_not_its_own_window(world):
    # a window of 60 s holds all of A's screen frames (at 35-60 s they would be another time that looks like it)
    reply = world.around(id=screen_id(A), elsewhere=True, k=5, window=60)
    times = reply["elsewhere"]
    assert times and all(abs(t["ts"] - A) > 60 for t in times)  # nothing from the moment's own window
    assert abs(times[0]["ts"] - B) <= 20 and times[0]["senses"] == ["image:screen0"], times[0]
    assert times[0]["labels"] == ["office"] and times[0]["dt"] == round(times[0]["ts"] - A, 3)
    assert len({round(t["ts"] / 60) for t in times}) == len(times)  # hits within the window of a better one: one time
    # a time: probes from every sense near it; B matches on screen, screen text and moment, C only on sound
    times = world.around(at=A, elsewhere=True)["elsewhere"]
    assert abs(times[0]["ts"] - B) <= 20, times
    assert {"image:screen0", "text:screen0", "moment:all"} <= set(times[0]["senses"])
    assert times[0]["fused"] > max(t["fused"] for t in times[1:])
    c = [t for t in times if abs(t["ts"] - C) <= 30]
    assert c and "audio:mic0" in c[0]["senses"] and "image:screen0" in c[0]["senses"]  # the hum, and some screen


def test_bad_requests_are_answered_and_counted(world):
    bad = [
        {},
        {"id": screen_id(A), "at": A},
        {"id": "screen0-1"},
        {"id": 5},
        {"at": "noon"},
        {"at": A, "window": 0},
        {"at": A, "window": 3601},
        {"at": A, "window": True},
        {"at": A, "k": 0},
        {"at": A, "k": 101},
        {"at": A, "elsewhere": "yes"},
    ]
    before = world.service.stats()["bad_requests"]
    for body in bad:
        with pytest.raises(Rejected):
            request(world.endpoint, {"op": "around", **body}, timeout=30)
    assert world.service.stats()["bad_requests"] == before + len(bad)
    with pytest.raises(Rejected, match="no memory with id 'screen0-1'"):
        world.around(id="screen0-1")
    with pytest.raises(Rejected, match=r"window must be .* at most 3600"):
        world.around(at=A, window=7200)
    with pytest.raises(Rejected) as e:
        world.around(at=T0 - 86400)
    msg = e.value.args[0]
    assert msg.startswith("no memories within 30 s of ") and "memory holds " in msg, msg
    first, last = msg.split("memory holds ")[1].split(" … ")
    assert (
        dt.datetime.fromisoformat(first).timestamp() == A - 60
        and dt.datetime.fromisoformat(last).timestamp() == HOURS[-1] + 1
    )
    assert world.around(at=A)["senses"]  # still serving


def test_cli_human_and_json(world, tmp_path):
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(f'[query]\nendpoint = "{world.endpoint}"\n')
    out = sensorium("--config", str(cfg), "around", screen_id(A), "--window", "10s", "-k", "2", "--elsewhere")
    lines = out.stdout.splitlines()
    assert lines[0].startswith("around ") and "(±10 s)" in lines[0] and screen_id(A) in lines[0]
    assert lines[1] == "text:screen0" and "+1.0 s" in lines[2] and "Budget meeting notes Q3" in lines[2]
    assert "image:screen0" in lines and "elsewhere" in lines
    assert any("office" in line and "image:screen0" in line for line in lines[lines.index("elsewhere") :])
    raw = json.loads(sensorium("--config", str(cfg), "around", screen_id(A), "--json", "-k", "1").stdout)
    assert raw["senses"][0]["hits"][0]["dt"] == 1.0 and raw["senses"][0]["sense"] == "text:screen0"
    bad = sensorium("--config", str(cfg), "around", "screen0-1", check=False)
    assert bad.returncode == 2 and "no memory with id 'screen0-1'" in bad.stderr
    bad = sensorium("--config", str(cfg), "around", "10m", "--window", "2h", check=False)
    assert bad.returncode == 2 and "more than 3600 s" in bad.stderr


def test_a_window_across_a_bucket_boundary_reads_both_buckets(world):
    midnight = (HOURS[7] // 86400) * 86400  # rows are bucketed by UTC day
    assert HOURS[6] < midnight < HOURS[7]
    reply = world.around(at=midnight, window=3600)
    assert [h["ts"] for h in by_sense(reply)["image:screen0"]] == [HOURS[6], HOURS[7]]
    assert [h["ts"] for h in by_sense(reply)["text:screen0"]] == [HOURS[6] + 1, HOURS[7] + 1]


def test_an_empty_memory_says_so(tmp_path):
    memory = Memory(tmp_path / "data", 8, 0.1, False, 40, 100)
    try:
        with pytest.raises(BadRequest, match=r"^no memories within 30 s of .*; memory is empty$"):
            Around(memory)({"at": A})
    finally:
        memory.close()


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(("id", "at", "window", "k", "elsewhere")), value=json_values)
@example(field="at", value=1e300)  # past the calendar: the error still names the time
@example(field="at", value=-1e12)
@example(field="id", value="screen0-99999999999999999999999999")
@example(field="id", value="-")
def test_any_field_value_is_answered(world, field, value):
    body = {"op": "around", "at": A, field: value}
    if field == "id":
        del body["at"]
    try:
        reply = request(world.endpoint, body, timeout=30)
    except Rejected as e:
        assert e.args[0] and not e.args[0].startswith("internal error"), (body, e)
    else:
        assert reply["senses"] or field == "id", body
