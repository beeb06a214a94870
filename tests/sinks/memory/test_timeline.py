"""Memory.timeline against a real embedded Chroma (in this process and in the store process): per stream, the
memories of each bin of a window counted once across spaces and buckets, and the earliest of each bin read back."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from encoders.records import Embedding, Encoded, Frame, text_id
from sinks.memory import Memory
from tests.support.rows import MIDNIGHT, memory, unit

IMG, TXT = "img/4", "txt/4"  # a frame has a row in both, as the image model's own and ConSE vectors


S = 1_000_000_000  # the rows' times are nanoseconds, as captured: float seconds cannot tell 1 ns apart at 1.8e9 s
M = MIDNIGHT * S


def ns(ts: float) -> int:
    return round(ts * 1e9)


def image(source: str, t: int, label: str = "desk") -> Encoded:
    f = Frame(source, "image", np.full((30, 40, 3), 90, np.uint8), t, 0)
    return Encoded(f, tuple(Embedding.of(f, space, unit((1, 0, 0, 0)), labels=(label,)) for space in (IMG, TXT)))


def sound(t: int) -> Encoded:
    f = Frame("mic0", "audio", np.zeros(0, np.float32), t, 0)
    return Encoded(f, (Embedding.of(f, "aud/4", unit((0, 1, 0, 0)), labels=("hum",)),))


def words(t: int, *lines: str) -> Encoded:
    """Screen text: the lines read from one frame, each its own memory ("screen0#text-<ns + n + 1>")."""
    f = Frame("screen0", "image", np.zeros((30, 40, 3), np.uint8), t, 0)
    embs = tuple(
        Embedding(
            f.id, "screen0", "text", TXT, unit((0, 0, 1, 0)), f.ts_ns, 0, text=t, key=text_id("screen0", f.ts_ns, n)
        )
        for n, t in enumerate(lines)
    )
    return Encoded(f, embs)


def moment(t: int) -> Encoded:
    f = Frame("all", "moment", np.zeros(0, np.float32), t, 0)
    return Encoded(f, (Embedding.of(f, TXT, unit((0, 0, 0, 1)), extra={"end": str(t // S + 10)}),))


def memory_ids(items: list[Encoded]) -> dict[str, list[int]]:
    """Each stream's memories (capture ns), once each: what a timeline counts."""
    out: dict[str, set[int]] = {}
    for it in items:
        for e in it.embeddings:
            stream, _, tail = e.id.rpartition("-")
            out.setdefault(stream, set()).add(int(tail))
    return {s: sorted(v) for s, v in out.items()}


def brute(items: list[Encoded], since: float, until: float, bins: int) -> dict[str, tuple[list[int], dict[int, str]]]:
    """Per stream: counts per bin and the earliest id of each bin, in exact arithmetic."""
    lo, hi = ns(since), ns(until)
    out = {}
    for stream, times in memory_ids(items).items():
        counts, first = [0] * bins, {}
        for t in times:
            if lo <= t <= hi:
                i = min(int(Fraction(t - lo) * bins // (hi - lo)), bins - 1)
                counts[i] += 1
                first.setdefault(i, f"{stream}-{t}")
        if any(counts):
            out[stream] = (counts, first)
    return out


def lanes(mem: Memory, since: float, until: float, bins: int) -> dict[str, tuple[list[int], dict[int, str]]]:
    return {lane.stream: (lane.counts, {i: h.id for i, h in lane.items}) for lane in mem.timeline(since, until, bins)}


@pytest.fixture(params=[False, True], ids=["in-process", "store-process"])
def mem(request, tmp_path: Path):
    m = memory(tmp_path, process=request.param)
    yield m
    m.close()


def test_lanes_count_each_memory_once_and_show_the_first_of_each_bin(mem: Memory) -> None:
    t = MIDNIGHT + 3600  # bins of 100 s from t
    items = [image("screen0", (t + s) * S, label=f"at{s}") for s in (5, 50, 99, 150, 420)]  # rows in two spaces
    items += [image("cam0", (t + 260) * S, label="person"), sound((t + 30) * S), sound((t + 31) * S)]
    items += [words((t + 120) * S, "Invoice 4711", "Total 1.250 EUR"), moment((t + 10) * S), moment((t + 580) * S)]
    mem.write(items, {it.frame.id: p for it in items if (p := mem.thumbs.save(it.frame))})
    got = {lane.stream: lane for lane in mem.timeline(t, t + 600, 6)}
    assert list(got) == ["all", "cam0", "mic0", "screen0", "screen0#text"]  # by stream name
    assert got["screen0"].counts == [3, 1, 0, 0, 1, 0]  # not 6, 2, …: a frame is one memory in two spaces
    screen = [(i, h.id, h.ts, h.labels, h.modality, h.source) for i, h in got["screen0"].items]
    assert screen == [
        (0, f"screen0-{(t + 5) * S}", t + 5, ["at5"], "image", "screen0"),
        (1, f"screen0-{(t + 150) * S}", t + 150, ["at150"], "image", "screen0"),
        (4, f"screen0-{(t + 420) * S}", t + 420, ["at420"], "image", "screen0"),
    ]
    assert all(h.thumb and Path(h.thumb).exists() for _, h in got["screen0"].items)
    text = got["screen0#text"]
    assert text.counts == [0, 2, 0, 0, 0, 0] and len(text.items) == 1
    first = text.items[0][1]
    assert (first.text, first.modality, first.source) == ("Invoice 4711", "text", "screen0")
    assert first.frame == f"screen0-{(t + 120) * S}" and first.thumb and Path(first.thumb).exists()
    mic = got["mic0"]
    assert mic.counts == [2, 0, 0, 0, 0, 0] and [(i, h.ts, h.modality) for i, h in mic.items] == [(0, t + 30, "audio")]
    assert got["cam0"].counts == [0, 0, 1, 0, 0, 0] and got["cam0"].items[0][1].labels == ["person"]
    moments = got["all"]
    assert moments.counts == [1, 0, 0, 0, 0, 1] and [h.modality for _, h in moments.items] == ["moment", "moment"]
    assert [i for i, _ in moments.items] == [0, 5] and moments.items[0][1].extra == {"end": str(t + 20)}


def test_bin_edges_and_window_ends_are_exact_across_buckets(mem: Memory) -> None:
    """Rows on the edges of bins and of the window, a nanosecond either side of a bucket boundary (UTC midnight),
    and a width that is not a whole number of nanoseconds: the same bins as exact arithmetic."""
    since, until, bins = MIDNIGHT - 300, MIDNIGHT + 400, 7  # width 100 s; midnight is the start of bin 3
    edges = [(since + 100 * i) * S for i in range(8)]
    times = [since * S - 1, *edges, until * S + 1, M - 1, M + 1, since * S + 100 * S - 1]
    items = [image("screen0", t) for t in times] + [sound(t) for t in times[::2]]
    mem.write(items)
    assert len(mem.store.buckets(IMG, since, until)) == 2
    want = brute(items, since, until, bins)
    assert lanes(mem, since, until, bins) == want
    counts, first = want["screen0"]
    assert counts == [2, 1, 2, 2, 1, 1, 2] and sum(counts) == len(times) - 2  # both window ends in, outside rows out
    assert first[3] == f"screen0-{M}" and first[6] == f"screen0-{(since + 600) * S}"
    # edges between nanoseconds
    assert lanes(mem, since + 0.3, until - 7.7, 9) == brute(items, since + 0.3, until - 7.7, 9)


def test_random_windows_match_exact_arithmetic(tmp_path: Path) -> None:
    mem = memory(tmp_path, thumbnails=False, bucket="1h")
    try:
        rng = np.random.default_rng(5)
        t0 = (MIDNIGHT - 2 * 3600) * S
        items = [
            image(("screen0", "cam0")[i % 2], t0 + int(t)) for i, t in enumerate(rng.integers(0, 4 * 3600 * S, 300))
        ]
        items += [words(t0 + int(t), "a", "b") for t in rng.integers(0, 4 * 3600 * S, 40)]
        mem.write(items)
        assert len(mem.store.buckets(IMG)) == 4
        for _ in range(20):
            since = t0 / S + float(rng.uniform(-600, 3 * 3600))
            until = since + float(rng.uniform(1e-3, 2 * 3600))
            bins = int(rng.integers(1, 50))
            assert lanes(mem, since, until, bins) == brute(items, since, until, bins), (since, until, bins)
    finally:
        mem.close()


def test_an_empty_window_and_an_empty_memory_have_no_lanes(mem: Memory) -> None:
    assert mem.timeline(MIDNIGHT, MIDNIGHT + 86400, 120) == []
    mem.write([image("screen0", (MIDNIGHT + 10) * S), moment((MIDNIGHT + 20) * S)])
    assert mem.timeline(MIDNIGHT + 30, MIDNIGHT + 86400, 120) == []  # a bucket, nothing in the window
    assert mem.timeline(MIDNIGHT - 86400, MIDNIGHT, 120) == []  # before the first bucket
    (lane,) = mem.timeline(MIDNIGHT, MIDNIGHT + 15, 1)
    assert (lane.stream, lane.counts, [h.id for _, h in lane.items]) == ("screen0", [1], [f"screen0-{M + 10 * S}"])


def test_forgotten_memories_leave_the_timeline(mem: Memory) -> None:
    mem.write([image("screen0", M + s * S) for s in (10, 20, 30)])
    mem.forget(MIDNIGHT + 5, MIDNIGHT + 15)
    (lane,) = mem.timeline(MIDNIGHT, MIDNIGHT + 60, 2)
    assert lane.counts == [1, 1] and [h.id for _, h in lane.items] == [f"screen0-{M + 20 * S}", f"screen0-{M + 30 * S}"]
