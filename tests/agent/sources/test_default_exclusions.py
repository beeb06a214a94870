"""The default exclude_windows (configs/default.toml): private browser windows and password managers are
masked out of the box, ordinary windows are not, and capture still works where the window list is readable
(Xvfb without a window manager, as the tests and `make demo` run)."""

from __future__ import annotations

import numpy as np
import pytest

from agent import config
from agent.pipeline.gate import ChangeGate
from agent.sources.exclude import Exclusions, Rect, Window, exclusions, parse_patterns
from agent.sources.screen import ScreenSource
from encoders.records import Frame
from tests.support.wait import wait_until
from tests.support.xwin import XWin

DEFAULTS = config.load().screen


def defaults() -> Exclusions:
    ex = exclusions(DEFAULTS.exclude_rects, DEFAULTS.exclude_windows, DEFAULTS.exclude_mode)
    assert ex is not None
    return ex


HIDDEN = [  # (title, WM_CLASS) as these apps set them on X11
    ("Mozilla Firefox Private Browsing", ("Navigator", "firefox")),
    ("Bank login — Mozilla Firefox Private Browsing", ("Navigator", "firefox")),
    ("Bank login - Mozilla Firefox (Private Browsing)", ("Navigator", "Firefox")),
    ("Start — LibreWolf Private Browsing", ("Navigator", "librewolf")),
    ("New Tab - Google Chrome (Incognito)", ("google-chrome", "Google-chrome")),
    ("GitHub - Chromium (Incognito)", ("chromium", "Chromium")),
    ("New Private Tab - Brave", ("brave-browser", "Brave-browser")),
    ("GitHub - Brave (Private)", ("brave-browser", "Brave-browser")),
    ("Bing - [InPrivate] - Microsoft\u200b Edge", ("microsoft-edge", "Microsoft-edge")),
    ("Explore. Privately. — Tor Browser", ("Navigator", "Tor Browser")),
    ("about:tor", ("Navigator", "Tor Browser")),
    ("Passwords.kdbx [Locked] - KeePassXC", ("keepassxc", "KeePassXC")),
    ("unlocked", ("keepassxc", "KeePassXC")),
    ("Database.kdbx - KeePass", ("keepass2", "KeePass2")),
    ("All Items — 1Password", ("1password", "1Password")),
    ("Bitwarden", ("bitwarden", "Bitwarden")),
    ("Enpass", ("Enpass", "Enpass")),
    ("Proton Pass", ("proton-pass", "Proton Pass")),
    ("Passwords and Keys", ("seahorse", "Seahorse")),
    ("Login", ("org.gnome.seahorse.Application", "org.gnome.seahorse.Application")),
    ("Wallet Manager", ("kwalletmanager5", "kwalletmanager5")),
    ("LastPass Vault - Google Chrome", ("google-chrome", "Google-chrome")),
    ("Vaults | Bitwarden Web Vault — Mozilla Firefox", ("Navigator", "firefox")),
]
SHOWN = [
    ("feh [1 of 1] - /tmp/pytest-of-me/pytest-3/test_private_browsing0/slide1.png", ("feh", "feh")),
    ("GitHub - Google Chrome", ("google-chrome", "Google-chrome")),
    ("Reddit — Mozilla Firefox", ("Navigator", "firefox")),
    ("Private API docs — Mozilla Firefox", ("Navigator", "firefox")),
    ("How to use Private Browsing in Firefox | Firefox Help — Mozilla Firefox", ("Navigator", "firefox")),
    ("Incognito mode explained - Google Chrome", ("google-chrome", "Google-chrome")),
    ("keepassxc - Google Search — Mozilla Firefox", ("Navigator", "firefox")),
    ("me@laptop: ~/src/keepassxc", ("gnome-terminal-server", "Gnome-terminal")),
    ("Tor Project | Anonymity Online — Mozilla Firefox", ("Navigator", "firefox")),
    ("secret-santa.txt - gedit", ("gedit", "Gedit")),
    ("Settings", ("gnome-control-center", "Gnome-control-center")),
]


@pytest.mark.parametrize(("title", "cls"), HIDDEN)
def test_private_browsing_and_password_managers_match_the_defaults(title, cls):
    assert defaults().matches(Window(1, title, cls))


@pytest.mark.parametrize(("title", "cls"), SHOWN)
def test_ordinary_windows_do_not(title, cls):
    assert not defaults().matches(Window(1, title, cls))


def test_the_defaults_are_on_and_a_user_list_replaces_them(tmp_path):
    assert len(DEFAULTS.exclude_windows) >= 5 and DEFAULTS.exclude_mode == "mask"
    path = tmp_path / "c.toml"
    path.write_text('[screen]\nexclude_windows = ["(?i)bank"]\n')
    assert config.load(path).screen.exclude_windows == ("(?i)bank",)
    path.write_text("[screen]\nexclude_windows = []\n")
    s = config.load(path).screen
    assert exclusions(s.exclude_rects, s.exclude_windows, s.exclude_mode) is None  # off: no window list needed


BRIGHT = (230, 230, 230)
PRIVATE, WALLET, NOTES = Rect(100, 150, 200, 120), Rect(400, 150, 200, 120), Rect(100, 400, 200, 120)


def black(f: Frame, r: Rect) -> bool:
    return int(f.data[r.y : r.y + r.h, r.x : r.x + r.w].max()) == 0


def test_on_xvfb_the_defaults_mask_a_private_window_and_a_password_manager_and_keep_the_rest(xvfb):
    """No window manager: the window list is the root's children (feh's viewer among them), readable, so
    the probe passes and capture runs; only the two private windows are black."""
    xvfb.show(np.tile(np.array(BRIGHT, np.uint8), (300, 400, 1)))
    wins = [
        XWin(xvfb.name, "Mozilla Firefox Private Browsing", ("Navigator", "firefox"), PRIVATE),
        XWin(xvfb.name, "Passwords.kdbx - KeePassXC", ("keepassxc", "KeePassXC"), WALLET),
        XWin(xvfb.name, "Reddit - Mozilla Firefox", ("Navigator", "firefox"), NOTES),  # WM_NAME: Latin-1
    ]
    frames: list[Frame] = []
    src = ScreenSource("screen0", 1, 20.0, ChangeGate(2.0, 60.0), frames.append, defaults())
    try:
        assert src.probe() is None
        src.start()
        wait_until(lambda: len(frames) >= 1, 5, "a frame")
    finally:
        src.stop()
        for w in wins:
            w.close()
    f = frames[0]
    assert black(f, PRIVATE) and black(f, WALLET)
    keep = np.ones(f.data.shape[:2], bool)
    for r in (PRIVATE, WALLET):
        keep[r.y : r.y + r.h, r.x : r.x + r.w] = False
    assert int(f.data[keep].min()) >= 200, "the ordinary window and the screen around are kept"
    assert src.stats()["masked"] >= 1


def test_without_a_window_list_the_defaults_fail_closed_and_say_how_to_turn_them_off(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":9999")
    reason = Exclusions([], parse_patterns(list(DEFAULTS.exclude_windows)), "mask").probe()
    assert reason is not None
    assert "exclude_windows needs an X11 window list" in reason and "exclude_windows = []" in reason
