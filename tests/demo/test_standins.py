"""The virtual sensors themselves: what the other tests rely on them for."""

from __future__ import annotations

import mss
import numpy as np
import Xlib.display
from Xlib import X

COLOURS = ((250, 20, 10), (10, 250, 20), (20, 10, 250), (250, 20, 10))


def viewable(name: str) -> int:
    """Top-level windows of display `name` that are mapped."""
    d = Xlib.display.Display(name)
    try:
        return sum(w.get_attributes().map_state == X.IsViewable for w in d.screen().root.query_tree().children)
    finally:
        d.close()


def test_show_returns_once_the_image_is_on_screen_and_the_old_window_is_gone(xvfb):
    with mss.MSS() as sct:
        for rgb in COLOURS:
            xvfb.show(np.tile(np.array(rgb, np.uint8), (30, 40, 1)))
            shot = np.array(sct.grab(sct.monitors[1]))  # at once: no settling time
            assert tuple(shot[384, 512, 2::-1]) == rgb and tuple(shot[5, 5, 2::-1]) == rgb, shot[384, 512]
            assert viewable(xvfb.name) == 1  # the previous viewer went, after the new one was up


def test_a_display_started_again_comes_back_on_the_same_name(xvfb):
    from demo.standins import stop_process

    name = xvfb.name
    stop_process(xvfb._viewer)
    stop_process(xvfb.proc, sig=9)  # the X server dies
    xvfb.start()
    assert xvfb.name == name and xvfb.proc.poll() is None
    xvfb.show(np.full((30, 40, 3), 200, np.uint8))
    with mss.MSS() as sct:
        assert int(np.array(sct.grab(sct.monitors[1]))[..., :3].min()) == 200
