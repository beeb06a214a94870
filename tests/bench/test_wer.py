"""The word error rate of bench/wer.py: the normalisation both sides share, the alignment, the sums."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.wer import align, combine, normalise, score, suffix


@pytest.mark.parametrize(
    ("truth", "whisper"),
    [
        ("Our server costs went up to 4500 dollars a month.", "Our server costs went up to $4,500 a month."),
        ("We need to cut the budget by 10 percent.", "We need to cut the budget by 10%."),
        ("The rent is 1200 euros per month", "The rent is €1,200 per month."),
        ("The rent is twelve hundred euros", "The rent is 1,200 euros."),
        ("Revenue grew in the 3rd quarter", "Revenue grew in the third quarter."),
        ("Let's schedule it for the 22nd of October", "let's schedule it for the twenty-second of october"),
        ("It leaves at a quarter past 7 from platform 2", "It leaves at a quarter past seven from platform two."),
        ("We hired 2 new engineers and 1 designer", "We hired two new engineers and one designer."),
        ("It reached 35 degrees", "It reached 35°."),
        ("Okay, the meeting is at 9:30", "OK. The meeting is at 9 30!"),
        ("Roughly 4.5 million users", "roughly four point five million users"),
        ("Two hundred and five tickets", "205 tickets"),
    ],
)
def test_what_whisper_writes_differently_is_not_an_error(truth: str, whisper: str) -> None:
    s = score(truth, whisper)
    assert s.errors == 0, (normalise(truth), normalise(whisper))
    assert s.wer == 0 and not s.pairs


def test_normalisation_keeps_words_apart_that_differ() -> None:
    assert normalise("Sarah") != normalise("Sara")
    assert normalise("timeout") != normalise("time out")  # a real difference, as in Whisper's normaliser
    assert normalise("Für das nächste Jahr", "de") == ["für", "das", "nächste", "jahr"]  # diacritics kept
    assert normalise("für") != normalise("fur")
    assert normalise("4.5") == ["4.5"] and normalise("4,5") == ["4", "5"]  # only a thousands comma is dropped


def test_number_words_join_only_where_english_allows() -> None:
    assert normalise("one two three") == ["1", "2", "3"]  # digits said one by one stay apart
    assert normalise("nine thirty") == ["9", "30"]  # a time
    assert normalise("twenty twenty six") == ["20", "26"]  # a year said in pairs is not joined (documented)
    assert normalise("two and three") == ["2", "and", "3"]  # "and" joins only after hundred/thousand
    assert normalise("one thousand two hundred and thirty four") == ["1234"]
    assert normalise("three million and change") == ["3000000", "and", "change"]
    assert normalise("a hundred people") == ["a", "hundred", "people"]
    assert normalise("the first of many") == ["the", "1st", "of", "many"]
    assert normalise("the twenty first") == ["the", "21st"]


def test_other_languages_keep_their_number_words() -> None:
    assert normalise("zehn Uhr", "de") == ["zehn", "uhr"]
    assert normalise("ten o'clock", "en") == ["10", "oclock"]
    assert normalise("el 10% del presupuesto", "es") == ["el", "10", "percent", "del", "presupuesto"]


def test_substitutions_deletions_and_insertions_are_counted_apart() -> None:
    s = score("please send the report to Sarah", "please send a report to Sara today")
    assert (s.subs, s.dels, s.ins, s.words) == (2, 0, 1, 6)
    assert s.wer == 3 / 6
    assert s.pairs == [("please send the report to sarah", "please send a report to sara today")]
    d = score("the backup runs every night", "the backup runs")
    assert (d.subs, d.dels, d.ins) == (0, 2, 0)


def test_nothing_heard_is_every_word_deleted_and_text_from_nothing_is_all_insertions() -> None:
    assert score("call me back after lunch", "").dels == 5
    empty = score("", " you")
    assert empty.ins == 1 and empty.words == 0 and empty.wer is None


def test_combine_sums_edits_and_words_not_rates() -> None:
    a = score("one two three four", "one two three five")  # 1 / 4
    b = score("hello", "")  # 1 / 1
    c = combine([a, b])
    assert (c.errors, c.words) == (2, 5) and c.wer == 2 / 5
    assert len(c.pairs) == 2


def test_ordinal_suffixes() -> None:
    assert [suffix(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "101st", "111th",
    ]  # fmt: skip


words = st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=8)


@given(words, words)
def test_alignment_is_a_bounded_edit_distance(ref: list[str], hyp: list[str]) -> None:
    s, d, i = align(ref, hyp)
    assert len(ref) - d + i == len(hyp)  # every truth word is kept, substituted or deleted; insertions add
    assert s + d <= len(ref) and s + i <= len(hyp)
    assert abs(len(ref) - len(hyp)) <= s + d + i <= max(len(ref), len(hyp))
    assert (s + d + i == 0) == (ref == hyp)
    assert sum(align(hyp, ref)) == s + d + i  # symmetric in cost
