"""X from the client side with python-xlib: a plain mapped window (screen-exclusion tests) and who is connected."""

from __future__ import annotations

import Xlib.display
import Xlib.error

from agent.sources.exclude import Rect


class XWin:
    """A plain mapped X window with a title and a class, drawn white by the server."""

    def __init__(self, display: str, title: str, cls: tuple[str, str], r: Rect) -> None:
        self.d = Xlib.display.Display(display)
        scr = self.d.screen()
        self.win = scr.root.create_window(r.x, r.y, r.w, r.h, 0, scr.root_depth, background_pixel=scr.white_pixel)
        self.title(title)
        self.win.set_wm_class(*cls)
        self.win.map()
        self.d.sync()

    def title(self, text: str) -> None:
        self.win.set_wm_name(text)
        self.win.change_property(
            self.d.intern_atom("_NET_WM_NAME"), self.d.intern_atom("UTF8_STRING"), 8, text.encode()
        )
        self.d.sync()

    def move(self, x: int, y: int) -> None:
        self.win.configure(x=x, y=y)
        self.d.sync()

    def unmap(self) -> None:
        self.win.unmap()
        self.d.sync()

    def close(self) -> None:
        """Destroy the window; after the X server died there is nothing left to destroy."""
        try:
            self.win.destroy()
            self.d.close()
        except (Xlib.error.ConnectionClosedError, OSError):
            pass


def x_clients(display: str, pid: int) -> list[int]:
    """Connections process `pid` holds to the X server, as the server lists them (X-Resource extension), by
    their resource-id base; the connection asking is left out."""
    from Xlib.ext import res

    d = Xlib.display.Display(display)
    try:
        own = d.display.info.resource_id_base
        ids = d.res_query_client_ids([{"client": 0, "mask": res.LocalClientPIDMask}]).ids
        return sorted(i.spec.client for i in ids if i.spec.client not in (0, own) and list(i.value) == [pid])
    finally:
        d.close()
