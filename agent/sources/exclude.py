"""Screen exclusions, decided before a frame goes anywhere: fixed rectangles and X11 windows by title/class.

Rectangles are always blacked out. A window whose title (_NET_WM_NAME, else WM_NAME) or class (WM_CLASS)
matches a pattern is blacked out too ("mask") or stops capture while it is visible ("skip"; the screen is
not grabbed at all then). Every frame asks the X server for the window list (one round trip) and for the
geometry of the matching windows, so a matched window that moves or opens is covered in the very next
frame; titles are read once per new window and re-read every REFRESH_S, because a title can change (a
browser tab) and reading every title every frame costs a round trip per window.

Privacy fails closed: if the window list cannot be read, `plan` raises and the caller keeps no frame.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

REFRESH_S = 1.0
MODES = ("mask", "skip")


@dataclass(frozen=True)
class Rect:
    x: int
    y: int
    w: int
    h: int

    def clip(self, left: int, top: int, width: int, height: int) -> Rect | None:
        """This rectangle in a region's own coordinates, cut to the region; None if they do not overlap."""
        x0, y0 = max(self.x - left, 0), max(self.y - top, 0)
        x1, y1 = min(self.x + self.w - left, width), min(self.y + self.h - top, height)
        return Rect(x0, y0, x1 - x0, y1 - y0) if x1 > x0 and y1 > y0 else None


@dataclass(frozen=True)
class Window:
    wid: int
    title: str
    classes: tuple[str, ...]


class WindowList(Protocol):
    """Top-level windows of a display; raises on a lost connection."""

    def ids(self) -> list[int]: ...

    def describe(self, wid: int) -> Window | None:
        """Title and class; None when the window is gone."""

    def rect(self, wid: int) -> Rect | None:
        """Absolute rectangle while the window is viewable; None when unmapped or gone."""

    def close(self) -> None: ...


class XWindows:
    """python-xlib view of an X display: _NET_CLIENT_LIST when a window manager keeps it, else root's children."""

    def __init__(self, display: str | None = None) -> None:
        import Xlib.display  # imported here: only a config with exclude_windows needs it
        import Xlib.error

        self._errors = (Xlib.error.BadWindow, Xlib.error.BadDrawable, Xlib.error.BadMatch)
        self.d = Xlib.display.Display(display)
        self.root = self.d.screen().root
        self._clients = self.d.intern_atom("_NET_CLIENT_LIST")
        self._net_name = self.d.intern_atom("_NET_WM_NAME")
        self._utf8 = self.d.intern_atom("UTF8_STRING")

    def ids(self) -> list[int]:
        prop = self.root.get_full_property(self._clients, 0)  # 0 = AnyPropertyType
        if prop is not None and len(prop.value):
            return [int(w) for w in prop.value]
        return [w.id for w in self.root.query_tree().children]

    def describe(self, wid: int) -> Window | None:
        win = self.d.create_resource_object("window", wid)
        try:
            title = win.get_full_text_property(self._net_name, self._utf8) or win.get_wm_name() or ""
            cls = win.get_wm_class() or ()
        except self._errors:
            return None
        return Window(wid, str(title), tuple(str(c) for c in cls))

    def rect(self, wid: int) -> Rect | None:
        """The window's top-level ancestor: with a reparenting window manager that is the frame, whose title
        bar shows the title too."""
        from Xlib import X

        win = self.d.create_resource_object("window", wid)
        try:
            if win.get_attributes().map_state != X.IsViewable:
                return None
            top = win
            for _ in range(8):  # frames nest a level or two; never loop on a broken tree
                parent = top.query_tree().parent
                if parent is None or parent.id in (0, self.root.id):
                    break
                top = parent
            g = top.get_geometry()
            at = self.root.translate_coords(top, 0, 0)
        except self._errors:
            return None
        return Rect(int(at.x), int(at.y), int(g.width), int(g.height))

    def close(self) -> None:
        try:
            self.d.close()
        except Exception:  # already broken with the display: nothing left to release
            pass


@dataclass(frozen=True)
class Plan:
    """What to do with the next frame: grab it and black out `rects`, or do not grab it (`skip`)."""

    rects: list[Rect]
    skip: bool
    windows: int  # matching windows that overlap the region


class Exclusions:
    def __init__(
        self,
        rects: list[Rect],
        patterns: list[re.Pattern[str]],
        mode: str,
        open_windows: Callable[[], WindowList] = XWindows,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"exclude mode must be one of {', '.join(MODES)}, got {mode!r}")
        self.rects = rects
        self.patterns = patterns
        self.mode = mode
        self._open = open_windows
        self._windows: WindowList | None = None
        self._names: dict[int, Window | None] = {}
        self._named_at = 0.0

    @property
    def needs_windows(self) -> bool:
        return bool(self.patterns)

    def probe(self) -> str | None:
        """None when window exclusions can work here; else why not (then the screen must not be captured)."""
        if not self.needs_windows:
            return None
        try:
            self.plan(0, 0, 1, 1)
        except Exception as e:
            reason = (str(e).splitlines() or [type(e).__name__])[0]
            return (
                f"exclude_windows needs an X11 window list: {reason}; nothing is captured without it "
                "(the defaults hide private browser windows and password managers; [screen] exclude_windows = [] "
                "captures with no window exclusions)"
            )
        finally:
            self.close()  # the capture thread opens its own
        return None

    def matches(self, win: Window) -> bool:
        return any(p.search(s) for p in self.patterns for s in (win.title, *win.classes))

    def _matching(self) -> list[int]:
        if self._windows is None:
            self._windows = self._open()
        wl = self._windows
        ids = wl.ids()
        now = time.monotonic()
        if now - self._named_at >= REFRESH_S:  # titles change: re-read them all now and then
            self._names, self._named_at = {}, now
        self._names = {w: self._names[w] if w in self._names else wl.describe(w) for w in ids}
        return [w for w, info in self._names.items() if info is not None and self.matches(info)]

    def plan(self, left: int, top: int, width: int, height: int) -> Plan:
        """Exclusions for a grab of this region (absolute screen coordinates). Raises if windows cannot be read."""
        cut = [r for r in (rect.clip(left, top, width, height) for rect in self.rects) if r]
        if not self.patterns:
            return Plan(cut, False, 0)
        try:
            shown = [r for w in self._matching() if (r := self._rect(w))]
        except Exception:
            self.close()  # reconnect on the next call
            raise
        hits = [r for r in (rect.clip(left, top, width, height) for rect in shown) if r]
        if self.mode == "skip" and hits:
            return Plan(cut, True, len(hits))
        return Plan(cut + hits, False, len(hits))

    def _rect(self, wid: int) -> Rect | None:
        assert self._windows is not None
        return self._windows.rect(wid)

    def close(self) -> None:
        if self._windows is not None:
            self._windows.close()
        self._windows, self._names, self._named_at = None, {}, 0.0


def black_out(image: np.ndarray, rects: list[Rect]) -> None:
    """Zero the rectangles in place (every channel, so BGRA alpha too: nothing of them is left)."""
    for r in rects:
        image[r.y : r.y + r.h, r.x : r.x + r.w] = 0


def parse_rects(values: list, key: str = "screen.exclude_rects") -> list[Rect]:
    """[[x, y, w, h], ...] → Rects; ValueError naming the entry otherwise."""
    out = []
    for i, v in enumerate(values):
        ok = isinstance(v, list) and len(v) == 4 and all(isinstance(n, int) and not isinstance(n, bool) for n in v)
        if not ok or v[2] <= 0 or v[3] <= 0:
            raise ValueError(f"'{key}'[{i}] must be [x, y, width, height] integers with width, height > 0, got {v!r}")
        out.append(Rect(*v))
    return out


def parse_patterns(values: list, key: str = "screen.exclude_windows") -> list[re.Pattern[str]]:
    out = []
    for i, v in enumerate(values):
        if not isinstance(v, str) or not v:
            raise ValueError(f"'{key}'[{i}] must be a non-empty regular expression string, got {v!r}")
        try:
            out.append(re.compile(v))
        except re.error as e:
            raise ValueError(f"'{key}'[{i}] {v!r} is not a valid regular expression: {e}") from None
    return out


def exclusions(rects: Sequence[Sequence[int]], patterns: Sequence[str], mode: str) -> Exclusions | None:
    """From the (validated) config; None when nothing is excluded, so the screen loop skips the check."""
    if not (rects or patterns):
        return None
    return Exclusions([Rect(*r) for r in rects], parse_patterns(list(patterns)), mode)
