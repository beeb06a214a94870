"""Which bands of a screen are read again: only those that changed, whole lines wide."""

import cv2
import numpy as np

from agent.text.changes import changed_bands


def page(h: int = 720, w: int = 1280) -> np.ndarray:
    img = np.full((h, w), 245, np.uint8)
    for i, y in enumerate(range(40, h - 40, 32)):
        cv2.putText(img, f"line {i} of a document that does not change", (20, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 0, 1)
    return img


def test_first_frame_and_a_new_size_are_read_whole():
    cur = page()
    assert changed_bands(None, cur) is None
    assert changed_bands(page(360, 640), cur) is None


def test_an_unchanged_frame_has_no_bands():
    assert changed_bands(page(), page()) == []


def test_a_typed_word_is_read_as_a_full_width_band_around_its_line():
    prev, cur = page(), page()
    cv2.putText(cur, "new words", (600, 300), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 0, 1)
    bands = changed_bands(prev, cur)
    assert bands and len(bands) == 1
    x, y, w, h = bands[0]
    assert (x, w) == (0, 1280)
    assert y <= 300 - 16 and y + h >= 300 + 4  # the whole line, with the margin above and below
    assert h < 100


def test_two_distant_changes_are_two_bands_and_near_ones_merge():
    prev, cur = page(), page()
    cur[100:110, 50:400] = 0
    cur[600:610, 50:400] = 0
    assert len(changed_bands(prev, cur)) == 2
    cur2 = page()
    cur2[100:110, 50:400] = 0
    cur2[120:130, 50:400] = 0
    assert len(changed_bands(prev, cur2)) == 1


def test_a_mostly_changed_frame_is_read_whole():
    prev = page()
    cur = 255 - prev
    assert changed_bands(prev, cur) is None
