"""The segmenter on synthetic chunk probabilities (edge cases, exact sample bookkeeping) and on real speech run
through the real audio encoder (espeak-ng sentences with silence or quiet noise between them)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from agent.speech.segment import NS, SegmentCfg, Segmenter, Utterance
from encoders.records import Frame
from tests.agent.speech.helpers import play

RATE, WINDOW, CHUNK = 16000, 15360, 512
CHUNKS = WINDOW // CHUNK  # 30 per window
T0 = 1_700_000_000 * NS  # wall clock of sample 0
M0 = 5 * NS  # monotonic clock of sample 0


class Stream:
    """A stream whose sample i has the value i (so any slice says where it came from) and a speech
    probability per chunk; windows are cut from it as the microphone cuts them (window 0.96 s, a hop)."""

    def __init__(self, truth: list[float], hop: int = WINDOW // 2) -> None:
        self.probs = np.asarray(truth, np.float64)
        self.samples = np.arange(len(truth) * CHUNK, dtype=np.float32)
        self.hop = hop

    def starts(self) -> range:
        return range(0, len(self.samples) - WINDOW + 1, self.hop)

    def window(self, start: int) -> tuple[Frame, np.ndarray]:
        """Window at sample `start`; its chunk probabilities are those of the chunks it covers (a chunk
        not aligned to the truth's takes the truth of the chunk its middle falls in)."""
        mid = (start + np.arange(CHUNKS) * CHUNK + CHUNK // 2) // CHUNK
        off = start * NS // RATE
        return Frame("mic0", "audio", self.samples[start : start + WINDOW], T0 + off, M0 + off), self.probs[mid]

    def feed(self, seg: Segmenter, skip: set[int] = frozenset()) -> list[Utterance]:  # type: ignore[assignment]
        out = []
        for s in self.starts():
            if s not in skip:
                out += seg.feed(*self.window(s))
        return out


def seconds(n: float) -> int:
    return round(n * RATE / CHUNK)  # chunks


def truth(*spans: tuple[float, float], total: float, level: float = 0.9) -> list[float]:
    """Per-chunk speech probability: `level` inside the (start_s, end_s) spans, 0.05 elsewhere."""
    p = [0.05] * seconds(total)
    for a, b in spans:
        for c in range(seconds(a), seconds(b)):
            p[c] = level
    return p


def span(u: Utterance) -> tuple[int, int]:
    """(first, last + 1) sample index of the stream the utterance holds, checking it holds them all once."""
    first = int(u.audio[0])
    np.testing.assert_array_equal(u.audio, np.arange(first, first + len(u.audio), dtype=np.float32))
    assert u.start_ns == T0 + first * NS // RATE and u.start_mono == M0 + first * NS // RATE
    return first, first + len(u.audio)


@pytest.mark.parametrize("hop", [7680, 8000, 1600])  # 0.48 s, 0.5 s (not whole chunks), 0.1 s (< the pre-roll)
def test_one_utterance_with_pre_and_post_roll_and_every_sample_once(hop: int) -> None:
    s = Stream(truth((2.0, 4.0), total=8.0), hop=hop)
    seg = Segmenter("mic0", RATE)
    (u,) = s.feed(seg)
    pad = round(0.2 * RATE)
    onset, offset = seconds(2.0) * CHUNK, seconds(4.0) * CHUNK
    first, end = span(u)
    # windows whose chunks are not the truth's read a boundary chunk as the one its middle falls in
    slack = 0 if hop % CHUNK == 0 else CHUNK
    assert abs(first - (onset - pad)) <= slack and abs(end - (offset + pad)) <= slack, (first, end)
    assert u.why == "silence" and u.source == "mic0"
    assert u.end_ns == u.start_ns + len(u.audio) * NS // RATE
    assert not seg.open and seg.deadline() is None


def test_it_ends_when_the_window_holding_min_silence_arrives() -> None:
    s = Stream(truth((1.0, 3.0), total=8.0))
    seg = Segmenter("mic0", RATE)
    for start in s.starts():
        got = seg.feed(*s.window(start))
        end_s = (start + WINDOW) / RATE
        if got:
            break
    assert 3.0 + 0.6 <= end_s < 3.0 + 0.6 + 0.48 + 0.04  # within one hop of the silence being long enough


@pytest.mark.parametrize("hop", [7680, 8000])  # 0.48 s (15 chunks) and 0.5 s (a chunk and a part)
def test_a_pause_shorter_than_min_silence_stays_one_utterance(hop: int) -> None:
    s = Stream(truth((1.0, 3.0), (3.4, 5.0), total=9.0), hop=hop)
    us = s.feed(Segmenter("mic0", RATE))
    assert len(us) == 1
    a, b = span(us[0])
    assert a <= seconds(1.0) * CHUNK and b >= seconds(5.0) * CHUNK


def test_a_pause_longer_than_min_silence_splits() -> None:
    s = Stream(truth((1.0, 3.0), (4.0, 6.0), total=9.0))
    a, b = s.feed(Segmenter("mic0", RATE))
    assert span(a)[1] <= span(b)[0]  # no sample in both
    assert span(b)[0] == seconds(4.0) * CHUNK - round(0.2 * RATE)


def test_hysteresis_between_offset_and_onset_neither_starts_nor_ends() -> None:
    p = truth((1.0, 2.0), total=8.0)
    for c in range(seconds(2.0), seconds(4.0)):
        p[c] = 0.4  # above offset 0.35, below onset 0.5: still speech once started
    (u,) = Stream(p).feed(Segmenter("mic0", RATE))
    assert span(u)[1] >= seconds(4.0) * CHUNK
    assert Stream([0.45] * seconds(6.0)).feed(Segmenter("mic0", RATE)) == []  # never above onset: never starts


def test_a_click_shorter_than_min_speech_is_dropped_and_counted() -> None:
    seg = Segmenter("mic0", RATE)
    assert Stream(truth((1.0, 1.15), total=5.0)).feed(seg) == []
    assert seg.counts["short"] == 1 and seg.counts["utterances"] == 0


def test_windows_that_stop_coming_end_it_by_the_timer() -> None:
    """The speech runs to the end of the last window the microphone kept; the rest was dropped as silent."""
    s = Stream(truth((1.0, 4.0), total=4.0))
    seg = Segmenter("mic0", RATE)
    assert s.feed(seg) == [] and seg.open
    last_end = M0 + (s.starts()[-1] + WINDOW) * NS // RATE
    deadline = seg.deadline()
    assert deadline == last_end + round(0.8 * NS)  # wait_s: 0.6 s of silence is not enough to know
    assert seg.tick(deadline - 1) == []
    (u,) = seg.tick(deadline)
    assert u.why == "timer" and span(u)[1] == s.starts()[-1] + WINDOW  # no post-roll: that audio never came


def test_a_long_gap_ends_it_and_a_short_one_is_zeros() -> None:
    s = Stream(truth((1.0, 7.0), total=10.0))
    starts = list(s.starts())
    # drop the windows starting in [2.9 s, 4.9 s): 2 s of audio missing in the middle of speech
    long_gap = {x for x in starts if 2.9 * RATE <= x < 4.9 * RATE}
    seg = Segmenter("mic0", RATE)
    a, b = s.feed(seg, skip=long_gap)
    assert a.why == "gap" and seg.counts["gaps"] == 1
    assert span(a)[1] <= span(b)[0]
    # now only two windows: 0.96 − 0.48 = 0.48 s of audio missing, less than min_silence
    short_gap = set(starts[6:8])
    seg = Segmenter("mic0", RATE)
    (u,) = s.feed(seg, skip=short_gap)
    hole_start = starts[5] + WINDOW  # end of the last window before the gap
    hole_end = starts[8]
    first = int(u.audio[0])
    assert len(u.audio) >= hole_end - first
    np.testing.assert_array_equal(u.audio[hole_start - first : hole_end - first], 0.0)
    np.testing.assert_array_equal(u.audio[: hole_start - first], np.arange(first, hole_start, dtype=np.float32))
    assert u.audio[hole_end - first] == hole_end  # the audio after the hole is where it belongs in time


def test_max_length_cuts_at_the_quietest_chunk_and_loses_nothing() -> None:
    p = truth((0.5, 70.0), total=72.0)
    dip = seconds(29.0)
    p[dip] = 0.42  # a soft spot in the last 2 s before 30 s: the cut goes after it
    seg = Segmenter("mic0", RATE, SegmentCfg(max_s=30.0))
    us = Stream(p).feed(seg)
    assert [u.why for u in us] == ["max", "max", "silence"] and seg.counts["max_cuts"] == 2
    spans = [span(u) for u in us]
    assert all(b - a <= 30 * RATE for a, b in spans)
    assert spans[0][1] == (dip + 1) * CHUNK  # right after the soft spot
    assert spans[0][1] == spans[1][0] and spans[1][1] == spans[2][0]  # contiguous: nothing lost, nothing twice


def test_a_pause_drops_the_open_utterance_and_windows_captured_before_it() -> None:
    s = Stream(truth((1.0, 6.0), total=9.0))
    seg = Segmenter("mic0", RATE)
    starts = list(s.starts())
    for x in starts[:6]:
        seg.feed(*s.window(x))
    assert seg.open
    frame, _ = s.window(starts[7])
    assert seg.cut(frame.mono_ns) == 1 and not seg.open and seg.counts["discarded"] == 1
    assert seg.feed(*s.window(starts[6])) == [] and seg.feed(*s.window(starts[7])) == []
    assert seg.counts["stale"] == 2
    (u,) = [u for x in starts[8:] for u in seg.feed(*s.window(x))]  # after the pause: a new utterance
    assert span(u)[0] >= starts[8]


def test_late_repeated_and_bad_windows_are_counted_not_used() -> None:
    s = Stream(truth((1.0, 3.0), total=6.0))
    seg = Segmenter("mic0", RATE)
    starts = list(s.starts())
    out = []
    for i, x in enumerate(starts):
        out += seg.feed(*s.window(x))
        if i == 4:
            out += seg.feed(*s.window(starts[2]))  # an old window again
            frame, probs = s.window(x)
            out += seg.feed(frame, np.full(30, np.nan))
            out += seg.feed(Frame("mic0", "audio", np.zeros(100, np.float32), frame.ts_ns, frame.mono_ns), probs)
    assert seg.counts["late"] == 1 and seg.counts["bad"] == 2
    (u,) = out
    span(u)  # still every sample once, in order


# -- real speech through the real audio encoder ---------------------------------------------------------------


def mic(encoder, seg: Segmenter, audio: np.ndarray) -> list[Utterance]:
    out: list[Utterance] = []
    play(encoder, audio, lambda frame, probs: out.extend(seg.feed(frame, probs)), T0, M0)
    return out + seg.tick(M0 + len(audio) * NS // RATE + 2 * NS)  # time passes after the last window


@pytest.mark.parametrize("between", ["silence", "quiet noise"])
def test_real_speech_gives_one_utterance_per_sentence(encoder, spoken, between: str) -> None:
    """Two sentences 2 s apart: digital silence between them (the microphone drops those windows, the
    segmenter sees a gap and its timer) or noise at -45 dBFS (windows arrive, the VAD says no speech)."""
    gap = np.zeros(2 * RATE, np.float32)
    if between == "quiet noise":
        gap = np.random.default_rng(0).normal(0, 10 ** (-45 / 20), gap.shape).astype(np.float32)
    lead = gap[: RATE // 2]
    audio = np.concatenate([lead, spoken[0], gap, spoken[1], gap])
    where = [len(lead), len(lead) + len(spoken[0]), len(lead) + len(spoken[0]) + len(gap)]
    where.append(where[2] + len(spoken[1]))
    seg = Segmenter("mic0", RATE)
    us = mic(encoder, seg, audio)
    assert len(us) == 2, [(u.why, u.seconds) for u in us]
    for u, (a, b) in zip(us, [(where[0], where[1]), (where[2], where[3])], strict=True):
        first = (u.start_mono - M0) * RATE // NS
        # the whole sentence, its first and last 50 ms included, and not much more
        assert first <= a + 800 and first + len(u.audio) >= b - 800, (first, len(u.audio), a, b)
        assert first >= a - round(0.5 * RATE) and first + len(u.audio) <= b + round(1.0 * RATE)
        np.testing.assert_array_equal(u.audio, audio[first : first + len(u.audio)])  # the audio as captured


def test_a_five_minute_monologue_is_cut_into_pieces_of_at_most_30_s_with_nothing_lost_or_twice() -> None:
    seg = Segmenter("mic0", RATE, SegmentCfg(max_s=30.0))
    us = Stream(truth((0.5, 300.0), total=302.0)).feed(seg)
    spans = [span(u) for u in us]
    assert len(us) == 10 and not seg.open and seg.counts["max_cuts"] >= 9
    assert all(b - a <= 30 * RATE for a, b in spans)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))  # contiguous
    assert spans[0][0] <= 0.5 * RATE and spans[-1][1] >= 300 * RATE


def test_a_device_that_vanishes_mid_utterance_ends_it_once_and_its_return_starts_a_new_one() -> None:
    """The capture process dies in the middle of speech (no more windows), is respawned 3 s later, and the
    speaker is still talking: the first part is ended by the timer, the second is a new utterance, and no
    sample is in both."""
    s = Stream(truth((1.0, 9.0), total=10.0))
    starts = list(s.starts())
    lost = {x for x in starts if 3.0 * RATE <= x < 6.0 * RATE}
    seg = Segmenter("mic0", RATE)
    before = [x for x in starts if x < 3.0 * RATE]
    for x in before:
        assert seg.feed(*s.window(x)) == []
    (first,) = seg.tick(seg.deadline())
    assert first.why == "timer"
    after = []
    for x in starts:
        if x not in lost and x not in before:
            after += seg.feed(*s.window(x))
    (second,) = after + seg.finish()
    assert span(first)[1] <= span(second)[0] and seg.counts["utterances"] == 2
