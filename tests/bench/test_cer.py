"""The character error rate of bench/cer.py on hand-made truth and readings."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from bench.cer import combine, distance, overlap, score
from encoders.records import TextLine


@dataclass(frozen=True)
class T:
    text: str
    box: tuple[int, int, int, int]
    size: int = 16


def r(text: str, box: tuple[int, int, int, int]) -> TextLine:
    return TextLine(text, box, 0.9)


TRUTH = [
    T("Invoice #4711", (100, 50, 200, 20)),
    T("Müller GmbH", (100, 90, 150, 20)),
    T("small print here", (100, 300, 160, 10), size = 11),
]  # fmt: skip


def test_a_perfect_reading_with_padded_boxes_has_no_errors() -> None:
    found = [
        r("Invoice #4711", (96, 46, 210, 28)),
        r("Müller GmbH", (97, 86, 158, 28)),
        r("small print here", (98, 297, 166, 16)),
    ]
    s = score(TRUTH, found)
    assert (s.total.errors, s.total.chars) == (0, 13 + 11 + 16)
    assert s.total.cer == 0 and not s.missing and not s.extra and not s.pairs


def test_a_substitution_and_a_lost_umlaut_count_one_each() -> None:
    found = [
        r("Invoice #4712", (96, 46, 210, 28)),
        r("Muller GmbH", (97, 86, 158, 28)),
        r("small print here", (98, 297, 166, 16)),
    ]
    s = score(TRUTH, found)
    assert s.total.errors == 2
    assert s.groups[">=14px"].errors == 2 and s.groups[">=14px"].chars == 24
    assert s.groups["<14px"].errors == 0 and s.groups["<14px"].chars == 16
    assert s.total.cer == 2 / 40
    assert ("Invoice #4711", "Invoice #4712") in s.pairs


def test_a_missed_line_counts_in_full_in_its_size_group() -> None:
    s = score(TRUTH, [r("Invoice #4711", (96, 46, 210, 28)), r("Müller GmbH", (97, 86, 158, 28))])
    assert s.missing == ["small print here"]
    assert s.groups["<14px"].errors == 16 and s.groups[">=14px"].errors == 0
    assert s.total.errors == 16


def test_an_extra_line_is_an_insertion_charged_to_the_nearest_lines_group() -> None:
    found = [
        r("Invoice #4711", (96, 46, 210, 28)),
        r("Müller GmbH", (97, 86, 158, 28)),
        r("small print here", (98, 297, 166, 16)),
    ]
    s = score(TRUTH, [*found, r("ghost", (100, 330, 50, 12))])
    assert s.extra == ["ghost"]
    assert s.total.errors == 5 and s.total.chars == 40  # insertions add errors, never truth characters
    assert s.groups["<14px"].errors == 5


def test_a_line_read_in_two_pieces_is_joined_left_to_right() -> None:
    found = [r("#4711", (175, 46, 130, 28)), r("Invoice", (96, 46, 75, 28))]
    s = score(TRUTH[:1], found)
    assert s.total.errors == 0 and not s.extra


def test_a_box_spanning_two_cells_goes_to_the_cell_whose_text_it_reads() -> None:
    cells = [T("1,284", (300, 100, 40, 12), 12), T("1,310", (420, 100, 40, 12), 12)]
    s = score(cells, [r("1,310", (290, 96, 180, 20))])  # covers both ink boxes fully
    assert s.missing == ["1,284"]
    assert s.total.errors == 5


def test_a_reading_elsewhere_on_the_page_does_not_match() -> None:
    s = score(TRUTH[:1], [r("Invoice #4711", (600, 400, 200, 20))])
    assert s.missing == ["Invoice #4711"] and s.extra == ["Invoice #4711"]
    assert s.total.errors == 26 and s.total.cer == 2.0


def test_whitespace_runs_count_as_one_space() -> None:
    s = score([T("IBAN DE44    BIC INGD", (0, 0, 200, 12), 12)], [r(" IBAN DE44 BIC  INGD", (0, 0, 200, 14))])
    assert s.total.errors == 0 and s.total.chars == len("IBAN DE44 BIC INGD")


def test_nothing_read_and_nothing_to_read() -> None:
    empty = score([], [])
    assert empty.total.cer is None
    assert score([], [r("x", (0, 0, 5, 5))]).total.errors == 1


def test_combine_sums_errors_and_characters_not_rates() -> None:
    a = score(TRUTH[:1], [r("Invoice #4712", (96, 46, 210, 28))])  # 1 / 13
    b = score(TRUTH[1:2], [])  # 11 / 11
    c = combine([a, b])
    assert (c.total.errors, c.total.chars) == (12, 24)
    assert c.missing == ["Müller GmbH"]


def test_overlap_is_relative_to_the_narrower_and_the_lower_box() -> None:
    assert overlap((0, 0, 10, 10), (0, 0, 100, 100)) == 1.0
    assert overlap((0, 0, 10, 10), (5, 0, 10, 10)) == 0.5
    assert overlap((0, 0, 10, 10), (10, 0, 10, 10)) == 0.0
    assert overlap((0, 0, 0, 0), (0, 0, 10, 10)) == 0.0
    # one word of a long 9 px line, read with a box padded to 19 px: it lies within the line
    assert overlap((240, 635, 369, 9), (494, 630, 118, 19)) == 115 / 118


def test_a_word_read_apart_from_its_small_line_with_a_padded_box_still_matches() -> None:
    truth = [T("IBAN DE44 5001    BIC INGDDEFFXXX", (240, 635, 369, 9), 12)]
    found = [r("IBAN DE44 5001", (236, 630, 243, 19)), r("BIC INGDDEFFXXX", (494, 630, 118, 19))]
    s = score(truth, found)
    assert s.total.errors == 0 and not s.extra


def test_distance_on_known_pairs() -> None:
    assert distance("kitten", "sitting") == 3
    assert distance("", "abc") == 3
    assert distance("Müller", "Muller") == 1
    assert distance("flaw", "lawn") == 2


@given(st.text(max_size=12), st.text(max_size=12))
def test_distance_is_a_symmetric_bounded_metric(a: str, b: str) -> None:
    d = distance(a, b)
    assert d == distance(b, a)
    assert abs(len(a) - len(b)) <= d <= max(len(a), len(b))
    assert (d == 0) == (a == b)
