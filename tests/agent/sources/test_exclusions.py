"""Screen exclusions on a real X server (Xvfb): a real window, made with python-xlib, titled like a bank.

The screen behind it is a bright photo-viewer window (feh), so a blacked-out rectangle is unmistakable.
"""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import Xlib.error

from agent import config
from agent.pipeline.gate import ChangeGate
from agent.sources.exclude import REFRESH_S, Exclusions, Rect, XWindows, exclusions, parse_patterns
from agent.sources.screen import ScreenSource
from demo.standins import stop_process
from encoders.records import Frame
from tests.support.xwin import XWin

BRIGHT = (230, 230, 230)
WIN = Rect(100, 150, 200, 120)  # where the secret window is mapped (no window manager: it stays there)


def wait_for(cond: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"not within {timeout}s"
        time.sleep(0.02)


@pytest.fixture
def screen(xvfb) -> Iterator:
    xvfb.show(np.tile(np.array(BRIGHT, np.uint8), (300, 400, 1)))
    yield xvfb


def source(frames: list[Frame], patterns: list[str], mode: str = "mask", rects=()) -> ScreenSource:
    ex = exclusions(list(rects), patterns, mode)
    return ScreenSource("screen0", 1, 20.0, ChangeGate(2.0, 60.0), frames.append, ex)


def black(f: Frame, r: Rect) -> bool:
    return int(f.data[r.y : r.y + r.h, r.x : r.x + r.w].max()) == 0


def bright_outside(f: Frame, r: Rect) -> bool:
    """Every pixel outside `r` is still the bright screen."""
    keep = np.ones(f.data.shape[:2], bool)
    keep[r.y : r.y + r.h, r.x : r.x + r.w] = False
    return int(f.data[keep].min()) >= 200


def test_matching_window_is_blacked_out_where_it_is_and_the_rest_is_kept(screen):
    win = XWin(screen.name, "secret-bank - Online Banking", ("bankapp", "Bank"), WIN)
    frames: list[Frame] = []
    src = source(frames, ["secret-bank"])
    assert src.probe() is None
    src.start()
    try:
        wait_for(lambda: len(frames) >= 1, 5)
        first = frames[-1]
        assert black(first, WIN) and bright_outside(first, WIN)
        win.move(500, 400)  # the mask follows the window in the next frame (geometry is read every frame)
        moved = Rect(500, 400, WIN.w, WIN.h)
        wait_for(lambda: black(frames[-1], moved), 3)
        assert bright_outside(frames[-1], moved)
    finally:
        src.stop()
        win.close()
    assert src.stats()["masked"] == src.stats()["captured"] >= 2, src.stats()


def test_class_matches_and_a_title_change_is_seen(screen):
    wallet = XWin(screen.name, "unlocked", ("keepassxc", "KeePassXC"), WIN)
    other = Rect(600, 100, 150, 100)
    notes = XWin(screen.name, "shopping list", ("notes", "Notes"), other)
    frames: list[Frame] = []
    src = source(frames, ["^KeePassXC$", "(?i)bank"])
    src.start()
    try:
        wait_for(lambda: len(frames) >= 1, 5)
        assert black(frames[-1], WIN) and not black(frames[-1], other)  # by class; the notes window stays
        notes.title("My BANK statement")  # titles are re-read within REFRESH_S
        t0 = time.monotonic()
        wait_for(lambda: black(frames[-1], other), 3 * REFRESH_S + 2)
        print(f"title change masked after {time.monotonic() - t0:.2f}s")
    finally:
        src.stop()
        wallet.close()
        notes.close()


def test_window_manager_frames_and_client_list(screen):
    """With a window manager, clients sit in frames (whose title bar shows the title too) and the root's
    _NET_CLIENT_LIST lists them; here the test does what a reparenting WM does."""
    win = XWin(screen.name, "secret-bank", ("b", "B"), WIN)
    decoy = XWin(screen.name, "secret-bank", ("b", "B"), Rect(600, 100, 50, 50))  # mapped, but not a client
    d = win.d
    root = d.screen().root
    frame = Rect(WIN.x, WIN.y - 20, WIN.w, WIN.h + 20)  # a 20 px title bar above the client
    fwin = root.create_window(frame.x, frame.y, frame.w, frame.h, 0, d.screen().root_depth)
    win.win.reparent(fwin, 0, 20)
    fwin.map()
    root.change_property(d.intern_atom("_NET_CLIENT_LIST"), d.intern_atom("WINDOW"), 32, [win.win.id])
    d.sync()
    ex = Exclusions([], parse_patterns(["secret"]), "mask")
    try:
        plan = ex.plan(0, 0, 1024, 768)
    finally:
        ex.close()
        fwin.destroy()  # and the client in it
        d.close()
        decoy.close()
    assert plan.rects == [frame] and not plan.skip


def test_rectangles_are_clipped_to_the_monitor_and_blacked_out(screen):
    frames: list[Frame] = []
    r = Rect(1000, 700, 100, 100)  # runs off the 1024×768 screen
    src = source(frames, [], rects=[[r.x, r.y, r.w, r.h]])
    src.start()
    try:
        wait_for(lambda: len(frames) >= 1, 5)
    finally:
        src.stop()
    f = frames[0]
    inside = Rect(1000, 700, 24, 68)
    assert black(f, inside) and bright_outside(f, inside)


def test_skip_mode_grabs_nothing_while_the_window_is_visible(screen):
    win = XWin(screen.name, "secret-bank", ("bankapp", "Bank"), WIN)
    frames: list[Frame] = []
    src = source(frames, ["secret-bank"], mode="skip")
    src.start()
    try:
        wait_for(lambda: src.excluded >= 10, 5)
        assert frames == [] and src.captured == 0, src.stats()
        win.unmap()
        wait_for(lambda: len(frames) >= 1, 3)
    finally:
        src.stop()
        win.close()
    assert bright_outside(frames[0], Rect(0, 0, 0, 0)), "after the window is gone the full screen is kept"
    assert src.stats()["excluded"] >= 10 and src.stats()["masked"] == 0


def test_window_exclusions_fail_closed_without_x(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":9999")
    ex = Exclusions([], parse_patterns(["bank"]), "mask")
    reason = ex.probe()
    assert reason is not None and "exclude_windows needs an X11 window list" in reason
    with pytest.raises(Xlib.error.DisplayConnectionError, match='display ":9999"'):  # the caller keeps no frame
        ex.plan(0, 0, 10, 10)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("exclude_rects = [[0, 0, -5, 10]]", "'screen.exclude_rects'[0]"),
        ("exclude_rects = [[0, 0, 5]]", "'screen.exclude_rects'[0]"),
        ('exclude_rects = [[0, 0, 5, 5], ["a", 0, 5, 5]]', "'screen.exclude_rects'[1]"),
        ('exclude_windows = ["ok", "(unclosed"]', "'screen.exclude_windows'[1] '(unclosed' is not a valid regular"),
        ('exclude_windows = [""]', "'screen.exclude_windows'[0]"),
        ('exclude_mode = "blur"', "'screen.exclude_mode' must be one of mask, skip"),
    ],
)
def test_bad_exclusions_are_config_errors_naming_the_entry(tmp_path, toml, message):
    path = tmp_path / "c.toml"
    path.write_text(f"[screen]\n{toml}\n")
    with pytest.raises(config.ConfigError) as e:
        config.load(path)
    assert message in str(e.value)


def test_exclusions_load_from_config(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[screen]\nexclude_rects = [[1, 2, 3, 4]]\nexclude_windows = ["(?i)bank"]\nexclude_mode = "skip"\n')
    s = config.load(path).screen
    ex = exclusions(s.exclude_rects, s.exclude_windows, s.exclude_mode)
    assert ex is not None and ex.rects == [Rect(1, 2, 3, 4)] and ex.mode == "skip" and ex.needs_windows
    assert exclusions((), (), "mask") is None


def test_window_exclusions_fail_closed_when_x_goes_away_mid_run(screen):
    """The X server dies under a running capture and comes back with the secret window open again: no
    frame is posted unchecked meanwhile, the source says why it stopped, and once the window is back every
    frame is masked again (the window list is read from the new server, not from a dead connection)."""
    win = XWin(screen.name, "secret-bank", ("bankapp", "Bank"), WIN)
    frames: list[Frame] = []
    ex = exclusions([], ["secret-bank"], "mask")
    src = ScreenSource("screen0", 1, 20.0, ChangeGate(0.0, 60.0), frames.append, ex)  # every grab is posted
    again = None
    src.start()
    try:
        wait_for(lambda: len(frames) >= 3, 5)
        stop_process(screen.proc, sig=signal.SIGKILL)  # no goodbye to any client
        wait_for(lambda: src.state == "reconnecting", 5)
        down = src.stats()
        posted = len(frames)
        screen.start()  # the same display name, empty: no viewer, no windows
        again = XWin(screen.name, "secret-bank", ("bankapp", "Bank"), WIN)
        mapped_ns = time.time_ns()

        def judged() -> list[Frame]:
            """Frames grabbed well after the map, so surely planned after it (frames are stamped at the grab)."""
            return [f for f in frames if f.ts_ns > mapped_ns + 200_000_000]

        wait_for(lambda: len(judged()) >= 5, 20)
    finally:
        src.stop()
        for w in (win, again):
            if w is not None:
                w.close()
    assert down["errors"] >= 1 and down["last_error"], down  # why it is not capturing
    assert down["captured"] == posted, down  # nothing grabbed after the server went
    assert all(black(f, WIN) for f in frames[:posted]), "unmasked before the server died"
    assert all(black(f, WIN) for f in judged()), "the window came back and a frame was posted unmasked"
    print(f"while the display was gone: {down['last_error']!r}")


def test_window_exclusions_fail_closed_when_the_window_list_connection_is_cut(screen):
    """The window list's own X connection breaks while the screen stays up and the secret window open: a
    capture that went on without a window list would post the window. Every frame must stay masked, the
    source says why it stopped, and it recovers with a new window list."""
    win = XWin(screen.name, "secret-bank", ("bankapp", "Bank"), WIN)
    opened: list[XWindows] = []

    def open_windows() -> XWindows:
        opened.append(XWindows())
        return opened[-1]

    frames: list[Frame] = []
    ex = Exclusions([], parse_patterns(["secret-bank"]), "mask", open_windows)
    src = ScreenSource("screen0", 1, 20.0, ChangeGate(0.0, 60.0), frames.append, ex)  # every grab is posted
    src.start()
    try:
        wait_for(lambda: len(frames) >= 3, 5)
        errors, posted, lists = src.errors, len(frames), len(opened)
        opened[-1].d.display.socket.shutdown(socket.SHUT_RDWR)  # the connection drops under the live capture
        wait_for(lambda: len(frames) >= posted + 5, 10)
    finally:
        src.stop()
        win.close()
    unmasked = [i for i, f in enumerate(frames) if not black(f, WIN)]
    assert unmasked == [], f"frames {unmasked} of {len(frames)} show the secret window (cut after {posted})"
    assert src.errors == errors + 1 and "closed" in src.last_error, src.stats()  # why it stopped
    assert len(opened) == lists + 1, "the window list was not opened again"
    assert src.stats()["masked"] == src.stats()["captured"] == len(frames), src.stats()
