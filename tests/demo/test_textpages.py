"""The screen-text pages: what they show, that their truth describes the pixels, and that Xvfb shows them 1:1."""

from __future__ import annotations

import re
from pathlib import Path

import mss
import numpy as np
import pytest
from PIL import Image

from demo.textpages import FONTS, PAGES, SIZES, font, page, pages, save

# phrases the e2e tests and the issue look for, each on one page only
PHRASES = {
    "invoice": ["Invoice #4711", "Müller GmbH"],
    "terminal": ["certificate has expired", "CERTIFICATE_VERIFY_FAILED"],
    "spreadsheet": ["Q3 revenue"],
    "document": ["Dolomites"],
    "slide": ["offline voice assistant"],
    "email": ["Heating maintenance"],
}
DARK = {"terminal", "slide"}


def words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-zäöüß]{4,}", text.lower())}


@pytest.mark.parametrize("size", SIZES)
def test_every_page_renders_at_the_screen_size_with_its_truth_inside(size: tuple[int, int]) -> None:
    w, h = size
    for p in pages(size):
        assert p.rgb.shape == (h, w, 3) and p.rgb.dtype == np.uint8
        assert len(p.lines) >= 6, p.name
        for line in p.lines:
            x, y, bw, bh = line.box
            assert line.text.strip() and 0 <= x and 0 <= y and x + bw <= w and y + bh <= h, (p.name, line)
            assert bh >= line.size * 0.5 and bw >= line.size * 0.4, (p.name, line)  # an ink box, not a point


def test_each_truth_box_holds_ink_and_the_text_drawn_again_there_matches() -> None:
    """Draw each truth line's text again, alone, with the page's font: its ink box has the truth box's size."""
    from PIL import ImageDraw

    for p in pages():
        scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
        faces = list(FONTS)
        for line in p.lines:
            x, y, bw, bh = line.box
            crop = p.rgb[y : y + bh, x : x + bw].astype(int)
            assert np.ptp(crop) > 60, (p.name, line.text)  # glyphs against the background
            sizes = set()
            for face in faces:
                x0, y0, x1, y1 = scratch.textbbox((0, 0), line.text, font=font(face, line.size))
                sizes.add((x1 - x0, y1 - y0))
            assert (bw, bh) in sizes, (p.name, line)


def test_sizes_span_small_and_large_text_with_light_and_dark_themes() -> None:
    all_sizes = {line.size for p in pages() for line in p.lines}
    assert min(all_sizes) == 11 and max(all_sizes) >= 24
    assert any(s < 14 for s in all_sizes) and any(s >= 14 for s in all_sizes)
    for p in pages():
        bg = np.median(p.rgb.reshape(-1, 3), axis=0).mean()  # the background is most of the page
        assert (bg < 80) if p.name in DARK else (bg > 200), (p.name, bg)
    terminal = page("terminal")
    assert {line.size for line in terminal.lines} <= {12, 13, 14, 15, 16}


def test_phrases_are_on_their_page_only_and_topics_do_not_overlap() -> None:
    ps = {p.name: p for p in pages()}
    assert set(ps) == set(PAGES) == set(PHRASES)
    for name, phrases in PHRASES.items():
        for phrase in phrases:
            on = [n for n, p in ps.items() if phrase in p.text]
            assert on == [name], (phrase, on)
    for a in ps:
        for b in ps:
            if a < b:
                wa, wb = words(ps[a].text), words(ps[b].text)
                assert len(wa & wb) / len(wa | wb) < 0.1, (a, b, wa & wb)


def test_rendering_is_deterministic() -> None:
    for name in PAGES:
        one, two = page(name, (1920, 1080)), page(name, (1920, 1080))
        assert np.array_equal(one.rgb, two.rgb) and one.lines == two.lines


def test_bad_names_and_screens_too_small_are_clear_errors() -> None:
    with pytest.raises(KeyError, match="no page 'nope'"):
        page("nope")
    with pytest.raises(ValueError, match="does not fit a 400x300 page"):
        page("document", (400, 300))


def test_save_writes_the_png_and_its_truth(tmp_path: Path) -> None:
    p = page("invoice")
    path = save(p, tmp_path / "invoice.png")
    assert np.array_equal(np.asarray(Image.open(path).convert("RGB")), p.rgb)
    assert path.with_suffix(".txt").read_text(encoding="utf-8").splitlines() == [line.text for line in p.lines]


def test_xvfb_shows_a_page_pixel_for_pixel(xvfb) -> None:
    """Rendered at the screen's size, feh shows the page 1:1: the truth boxes are screen coordinates."""
    for name in ("invoice", "terminal"):
        p = page(name, (1024, 768))  # the xvfb fixture's screen
        xvfb.show(p.rgb)
        with mss.MSS() as sct:
            shot = np.array(sct.grab(sct.monitors[1]))[..., 2::-1]
        assert shot.shape == p.rgb.shape
        assert np.array_equal(shot, p.rgb), np.argwhere(shot != p.rgb)[:3]
