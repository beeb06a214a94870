"""Blocks from OCR lines (geometry only) and Novelty (what a source has not stored yet).

Lines are laid out as an OCR reads a screen: boxes in pixels, in reading order, 14 px text on 18 px rows.
"""

from __future__ import annotations

import time

from agent.text.blocks import MAX_CHARS, Block, Novelty, blocks, normalise
from encoders.records import TextLine

H, STEP = 14, 18  # text height, line pitch


def line(text: str, x: int, row: int, w: int | None = None, score: float = 0.95, top: int = 20) -> TextLine:
    return TextLine(text, (x, top + row * STEP, w if w is not None else 8 * len(text), H), score)


ARTICLE = [
    f"Line {i:02d} of the long article about reading screens, with words that differ: {i * 7919 % 1000}"
    for i in range(60)
]


def page(first: int, rows: int = 20) -> list[TextLine]:
    """Rows `first`..first+rows-1 of ARTICLE, as shown after scrolling down by `first` lines."""
    return [line(ARTICLE[first + r], 40, r) for r in range(rows)]


def texts(found: list[Block]) -> list[str]:
    return [ln.text for b in found for ln in b.lines]


def test_paragraphs_split_at_a_blank_line_and_columns_stay_apart():
    lines = [
        line("First paragraph, first line of text", 40, 0),
        line("and its second line.", 40, 1),
        line("A sidebar on the right", 700, 0),  # same baseline, far away: another column
        line("with two lines", 700, 1),
        line("Second paragraph after a blank line", 40, 3),
    ]
    found = blocks(lines)
    assert [b.text for b in found] == [
        "First paragraph, first line of text\nand its second line.",
        "A sidebar on the right\nwith two lines",
        "Second paragraph after a blank line",
    ]
    first = found[0]
    assert first.box == (40, 20, 8 * len("First paragraph, first line of text"), STEP + H)
    assert first.lines == tuple(lines[:2]) and first.score == 0.95


def test_a_table_row_stays_a_row_and_the_rows_one_block():
    header = [line("Qty", 40, 0), line("Item", 100, 0), line("Price", 260, 0)]
    rows = [line("2", 40, 1), line("USB-C cable", 100, 1), line("9.99", 260, 1)]
    rows += [line("1", 40, 2), line("Keyboard", 100, 2), line("79.00", 260, 2)]
    found = blocks(header + rows)
    assert len(found) == 1
    assert found[0].text == "Qty  Item  Price\n2  USB-C cable  9.99\n1  Keyboard  79.00"
    assert found[0].box == (40, 20, 260 + 8 * 5 - 40, 2 * STEP + H)


def test_a_heading_starts_its_own_block():
    title = TextLine("Screen text", (40, 0, 300, 30), 0.99)
    body = [line("OCR reads the screen line by line", 40, 0, top=36), line("and stores blocks.", 40, 1, top=36)]
    assert [b.text for b in blocks([title, *body])] == ["Screen text", body[0].text + "\n" + body[1].text]


def test_reading_order_is_kept_and_empty_lines_dropped():
    left = [line("left column one", 40, 0), line("left column two", 40, 1)]
    right = [line("right column one", 700, 0), line("right column two", 700, 1)]
    found = blocks([*right, line("   ", 40, 5), *left])  # the OCR read the right column first
    assert [b.text for b in found] == ["right column one\nright column two", "left column one\nleft column two"]


def test_an_evenly_spaced_terminal_is_cut_into_blocks_of_at_most_max_chars():
    lines = [line(f"$ echo {i} && ls -la /var/log/some/long/path/number/{i}", 10, i) for i in range(40)]
    found = blocks(lines)
    assert len(found) > 1 and all(len(b.text) <= MAX_CHARS for b in found)
    assert "\n".join(b.text for b in found) == "\n".join(ln.text for ln in lines)  # nothing lost, in order


def test_a_static_page_is_new_once():
    nov = Novelty()
    first = nov.new(blocks(page(0)))
    assert texts(first) == ARTICLE[:20]
    assert nov.new(blocks(page(0))) == []
    assert nov.repeated == 20


def test_scrolling_by_three_lines_gives_only_the_three_that_scrolled_in():
    nov = Novelty()
    nov.new(blocks(page(0)))
    found = nov.new(blocks(page(3)))
    assert texts(found) == ARTICLE[20:23]
    assert len(found) == 1 and found[0].text == "\n".join(ARTICLE[20:23])
    assert found[0].box == (40, 20 + 17 * STEP, 8 * len(ARTICLE[20]), 2 * STEP + H)  # where they are on screen


def test_a_different_document_is_all_new():
    nov = Novelty()
    nov.new(blocks(page(0)))
    other = [
        line(f"Quarterly report, section {i}: revenue grew in region {i * 31 % 97}", 40, r)
        for r, i in enumerate(range(20))
    ]
    assert texts(nov.new(blocks(other))) == [ln.text for ln in other]


def test_an_ocr_slip_counts_as_seen_and_a_real_change_does_not():
    nov = Novelty()
    nov.new(blocks(page(0)))
    slipped = [ln.text for ln in page(0)]
    slipped[0] = slipped[0].replace("article", "artic1e")  # one character misread
    slipped[1] = slipped[1].replace("screens", "screns")  # one dropped
    slipped[2] = slipped[2].replace("words", "w ords").upper()  # a space added, other case
    slipped[3] = slipped[3].replace("Line 03 of", "Line O3 of ").replace("differ", "differ.")  # two slips apart
    slipped[4] = slipped[4].replace("long article about reading", "short note about writing")  # different words
    slipped[5] = slipped[5][:-1] + str((int(slipped[5][-1]) + 1) % 10)  # a number changed: news, not a slip
    again = [TextLine(t, ln.box, ln.score) for t, ln in zip(slipped, page(0), strict=True)]
    assert texts(nov.new(blocks(again))) == [slipped[3], slipped[4], slipped[5]]


def test_noise_is_left_out_and_not_remembered():
    nov = Novelty()
    noisy = [
        line("OK", 40, 0),
        line("|", 40, 1),
        line("Save the file before closing", 40, 2),
        line("blurred words here", 40, 3, score=0.2),
        line("— x —", 40, 5),
    ]
    assert texts(nov.new(blocks(noisy))) == ["Save the file before closing"]
    assert nov.noise == 4 and len(nov) == 1


def test_the_memory_is_bounded_and_forgets_the_least_recently_seen():
    nov = Novelty(capacity=30)
    nov.new(blocks(page(0)))  # lines 0-19
    nov.new(blocks(page(0, rows=5)))  # 0-4 seen again: now the most recent
    nov.new(blocks(page(20)))  # 20-39: 5-14 are forgotten
    assert len(nov) == 30
    assert nov.new(blocks(page(15, rows=5))) == [] and nov.new(blocks(page(0, rows=5))) == []
    assert texts(nov.new(blocks(page(5, rows=10)))) == ARTICLE[5:15]


def test_normalise_ignores_case_spaces_and_edge_punctuation():
    assert normalise("  Hello,  World! ") == normalise("hello, world!") == "hello,world!"
    assert normalise("• item one") == normalise("item one")


def test_cost_per_screen():
    """200 lines, two columns: blocks and novelty stay a few ms (shared 2-core machine)."""
    lines = [line(f"{i}: " + ARTICLE[i % 60], 40 + 560 * (i % 2), i // 2, w=500) for i in range(200)]
    nov = Novelty()
    t0 = time.perf_counter()
    found = blocks(lines)
    t1 = time.perf_counter()
    nov.new(found)
    t2 = time.perf_counter()
    slipped = [TextLine(ln.text[:3] + "#" + ln.text[4:], ln.box, ln.score) for ln in lines]
    assert nov.new(blocks(slipped)) == []
    t3 = time.perf_counter()
    print(f"blocks {1e3 * (t1 - t0):.1f} ms, novelty new {1e3 * (t2 - t1):.1f} ms, slipped {1e3 * (t3 - t2):.1f} ms")
    assert t3 - t0 < 0.5
