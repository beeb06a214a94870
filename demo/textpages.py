"""Screen-text stand-ins: pages a laptop user would see (a document, a terminal, a spreadsheet, a slide, an
invoice, an email), rendered with Pillow and Debian fonts, each with its exact ground truth.

The OCR benchmark scores the engine against the truth (bench/ocr.py) and the demo and e2e tests show the
pages on Xvfb (`Display.show(page.rgb)` from demo/standins.py: rendered at the screen's size, feh shows it
1:1, so the truth boxes are screen coordinates). Every page has its own topic, so a query for a phrase of
one (or a paraphrase of it) has one right answer. Rendering is deterministic: no randomness, fixed fonts.

Every string drawn goes through `Sheet.text`, which records its ink box: the truth is complete by
construction. A line is what a text detector would call one: words with normal spacing; grid cells and
label/value pairs far apart are separate lines.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from demo.standins import MissingTool

Box = tuple[int, int, int, int]  # x, y, w, h in page pixels (like encoders.records.TextLine.box)
SIZES: tuple[tuple[int, int], ...] = ((1280, 720), (1920, 1080))

_DEJAVU = "/usr/share/fonts/truetype/dejavu"
_URW = "/usr/share/fonts/opentype/urw-base35"
# face → (file, the Debian package that ships it; the Makefile's APT_TEST installs them)
FONTS: dict[str, tuple[str, str]] = {
    "sans": (f"{_DEJAVU}/DejaVuSans.ttf", "fonts-dejavu-core"),
    "sans-bold": (f"{_DEJAVU}/DejaVuSans-Bold.ttf", "fonts-dejavu-core"),
    "serif": (f"{_DEJAVU}/DejaVuSerif.ttf", "fonts-dejavu-core"),
    "serif-bold": (f"{_DEJAVU}/DejaVuSerif-Bold.ttf", "fonts-dejavu-core"),
    "mono": (f"{_DEJAVU}/DejaVuSansMono.ttf", "fonts-dejavu-core"),
    "mono-bold": (f"{_DEJAVU}/DejaVuSansMono-Bold.ttf", "fonts-dejavu-core"),
    "helvetica": (f"{_URW}/NimbusSans-Regular.otf", "fonts-urw-base35"),  # Helvetica/Arial metrics
    "helvetica-bold": (f"{_URW}/NimbusSans-Bold.otf", "fonts-urw-base35"),
    "times": (f"{_URW}/NimbusRoman-Regular.otf", "fonts-urw-base35"),  # Times metrics
}


@dataclass(frozen=True)
class TruthLine:
    """One line as drawn: its exact text, its ink box and its font size in pixels."""

    text: str
    box: Box
    size: int


@dataclass(frozen=True)
class Page:
    name: str
    rgb: np.ndarray  # H×W×3 uint8
    lines: list[TruthLine]

    @property
    def text(self) -> str:
        """All of the page's words in drawing order (reading order), one line each."""
        return "\n".join(line.text for line in self.lines)


def font(face: str, size: int) -> ImageFont.FreeTypeFont:
    path, pkg = FONTS[face]
    if not Path(path).is_file():
        raise MissingTool(f"font {path} not found: install it with `sudo apt-get install {pkg}`")
    return _font(path, size)


_cache: dict[tuple[str, int], ImageFont.FreeTypeFont] = {}


def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    key = (path, size)
    if key not in _cache:
        _cache[key] = ImageFont.truetype(path, size)
    return _cache[key]


class Sheet:
    """A canvas that records the truth of every string drawn on it."""

    def __init__(self, name: str, size: tuple[int, int], bg: tuple[int, int, int]) -> None:
        self.name = name
        self.w, self.h = size
        self.img = Image.new("RGB", size, bg)
        self.draw = ImageDraw.Draw(self.img)
        self.lines: list[TruthLine] = []

    def rect(self, box: Box, fill: tuple[int, int, int], outline: tuple[int, int, int] | None = None) -> None:
        x, y, w, h = box
        self.draw.rectangle((x, y, x + w - 1, y + h - 1), fill=fill, outline=outline)

    def hline(self, y: int, x0: int, x1: int, fill: tuple[int, int, int]) -> None:
        self.draw.line((x0, y, x1, y), fill=fill)

    def text(
        self, x: int, y: int, s: str, face: str, size: int, fill: tuple[int, int, int], right: bool = False
    ) -> Box:
        """Draw `s` with its top-left (or, with `right`, its top-right) at (x, y); returns its ink box."""
        f = font(face, size)
        if right:
            x -= round(self.draw.textlength(s, font=f))
        x0, y0, x1, y1 = self.draw.textbbox((x, y), s, font=f)
        if x0 < 0 or y0 < 0 or x1 > self.w or y1 > self.h:
            raise ValueError(f"{self.name}: {s!r} at {x},{y} does not fit a {self.w}x{self.h} page")
        self.draw.text((x, y), s, font=f, fill=fill)
        box = (x0, y0, x1 - x0, y1 - y0)
        self.lines.append(TruthLine(s, box, size))
        return box

    def width(self, s: str, face: str, size: int) -> int:
        return round(self.draw.textlength(s, font=font(face, size)))

    def page(self) -> Page:
        return Page(self.name, np.asarray(self.img, dtype=np.uint8).copy(), list(self.lines))


# --- the pages ----------------------------------------------------------------------------------------------

INK, GREY, PAPER = (30, 30, 30), (110, 110, 110), (255, 255, 255)


def _titlebar(s: Sheet, title: str, dark: bool = False) -> int:
    """A window's title bar across the top; returns the y where its content starts."""
    s.rect((0, 0, s.w, 30), (45, 45, 48) if dark else (228, 228, 232))
    s.text(14, 8, title, "sans", 13, (200, 200, 200) if dark else (60, 60, 60))
    return 30


def document(size: tuple[int, int]) -> Page:
    """A report in a word processor: light theme, sans headings, serif body at 16 px."""
    s = Sheet("document", size, PAPER)
    top = _titlebar(s, "Dolomites hiking plan.odt - LibreOffice Writer")
    x = max(60, (s.w - 900) // 2)
    y = top + 40
    s.text(x, y, "Hiking trip to the Dolomites in September", "sans-bold", 24, INK)
    y += 48
    s.text(x, y, "Route: Alta Via 1 from Lago di Braies to Belluno, eight stages", "helvetica", 18, GREY)
    y += 44
    body = [
        "We start at the lake on Saturday morning and walk about six hours a day,",
        "sleeping in mountain huts that we booked in March. Each hut serves dinner",
        "and breakfast, so we only carry lunch, water and a light rain jacket.",
        "The hardest stage climbs 1,200 metres to Rifugio Lagazuoi; the cable car",
        "is the fallback if the weather turns. Bring boots that are already worn in.",
    ]
    for line in body:
        s.text(x, y, line, "serif", 16, INK)
        y += 26
    y += 18
    s.text(x, y, "Packing list", "sans-bold", 18, INK)
    y += 34
    for line in [
        "Sleeping bag liner, headlamp, first aid kit and blister plasters",
        "Hut reservation confirmations printed on paper (no signal above 2,000 m)",
        "Cash in euros: most huts do not take cards",
    ]:
        s.text(x + 20, y, line, "times", 17, INK)
        y += 26
    y += 16
    s.text(x, y, "Budget per person: 640 EUR for eight nights with half board.", "serif", 15, INK)
    s.text(x, s.h - 32, "Page 1 of 3    Words: 1,482    English (UK)", "sans", 12, GREY)
    return s.page()


def terminal(size: tuple[int, int]) -> Page:
    """A terminal (dark theme, monospace) where pip fails on an expired certificate."""
    bg, fg, dim, red, green = (24, 24, 28), (215, 215, 215), (140, 140, 150), (240, 90, 80), (120, 210, 120)
    s = Sheet("terminal", size, bg)
    top = _titlebar(s, "anna@thinkpad: ~/projects/weather-station", dark=True)
    x, y, px, step = 12, top + 14, 15, 22
    rows: list[tuple[str, tuple[int, int, int], str]] = [
        ("anna@thinkpad:~/projects/weather-station$ pip install -r requirements.txt", green, "mono"),
        ("Collecting paho-mqtt==2.1.0", fg, "mono"),
        ("WARNING: Retrying after connection broken by SSLError", dim, "mono"),
        ("Could not fetch URL https://pypi.org/simple/paho-mqtt/: There was a problem", fg, "mono"),
        ("confirming the ssl certificate: HTTPSConnectionPool(host='pypi.org', port=443)", fg, "mono"),
        ("ERROR: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed:", red, "mono-bold"),
        ("certificate has expired (_ssl.c:1000)", red, "mono-bold"),
        ("anna@thinkpad:~/projects/weather-station$ date", green, "mono"),
        ("Tue Mar 14 09:41:07 CET 2034", fg, "mono"),
        ("anna@thinkpad:~/projects/weather-station$ sudo timedatectl set-ntp true", green, "mono"),
    ]
    for text, colour, face in rows:
        s.text(x, y, text, face, px, colour)
        y += step
    y += 6
    for text in ["total 24", "-rw-r--r-- 1 anna anna  412 sensors.py", "-rw-r--r-- 1 anna anna 1907 station.toml"]:
        s.text(x, y, text, "mono", 13, dim)
        y += 19
    s.rect((0, s.h - 24, s.w, 24), (40, 40, 46))
    s.text(10, s.h - 19, "[0] 0:bash*  1:vim  2:htop", "mono", 12, (170, 200, 170))
    return s.page()


def spreadsheet(size: tuple[int, int]) -> Page:
    """A spreadsheet grid: Q3 revenue per region, numbers in small cells (11–13 px)."""
    s = Sheet("spreadsheet", size, PAPER)
    top = _titlebar(s, "sales-2026.xlsx - Calc")
    line, head = (200, 200, 205), (236, 238, 242)
    s.rect((0, top, s.w, 28), (246, 246, 248))
    s.text(10, top + 8, "Q3 revenue by region (EUR thousands)", "helvetica-bold", 13, INK)
    cols = ["Region", "July", "August", "September", "Q3 total", "vs Q2"]
    widths = [190, 120, 120, 120, 130, 100]
    rows = [
        ["North", "1,284", "1,310", "1,402", "3,996", "+4.1%"],
        ["South", "978", "1,021", "1,115", "3,114", "+7.9%"],
        ["East", "2,045", "1,987", "2,210", "6,242", "-1.3%"],
        ["West", "1,502", "1,566", "1,490", "4,558", "+2.2%"],
        ["Online store", "3,310", "3,475", "3,702", "10,487", "+12.6%"],
        ["Wholesale", "865", "812", "901", "2,578", "-5.0%"],
        ["Total", "9,984", "10,171", "10,820", "30,975", "+5.3%"],
    ]
    x0, y0, rh = 40, top + 52, 30
    total = sum(widths)
    for r in range(len(rows) + 2):
        s.hline(y0 + r * rh, x0, x0 + total, line)
    x = x0
    for w in [*widths, 0]:
        s.draw.line((x, y0, x, y0 + (len(rows) + 1) * rh), fill=line)
        x += w
    s.rect((x0 + 1, y0 + 1, total - 1, rh - 1), head)
    for r, cells in enumerate([cols, *rows]):
        x = x0
        bold = r == 0 or cells[0] == "Total"
        for c, (cell, w) in enumerate(zip(cells, widths, strict=True)):
            face = "sans-bold" if bold else "sans"
            px = 12 if r else 13
            if c == 0:
                s.text(x + 8, y0 + r * rh + 9, cell, face, px, INK)
            else:
                s.text(x + w - 8, y0 + r * rh + 9, cell, face, px, INK, right=True)
            x += w
    y = y0 + (len(rows) + 1) * rh + 30
    s.text(x0, y, "Note: Online store grew fastest after the September price change.", "helvetica", 14, GREY)
    s.text(x0, y + 26, "Source: ERP export 2026-10-02, figures unaudited", "sans", 11, GREY)
    s.text(10, s.h - 22, "Sheet 1 of 2    Sum=30,975    Average=5,162.5", "sans", 11, GREY)
    return s.page()


def slide(size: tuple[int, int]) -> Page:
    """A presentation slide: light text on a dark background, 24 px and up."""
    s = Sheet("slide", size, (18, 32, 58))
    light, accent = (240, 240, 245), (255, 196, 80)
    x = s.w // 10
    y = s.h // 8
    s.text(x, y, "Roadmap 2027: the offline voice assistant", "sans-bold", 40, light)
    y += 86
    for line in [
        "Wake word and speech recognition run on the device",
        "No audio ever leaves the kitchen speaker",
        "Beta for 500 households in April, launch in October",
        "Battery life goal: two days on one charge",
    ]:
        s.text(x + 40, y, line, "sans", 28, light)
        y += 56
    s.text(x, s.h - s.h // 8, "Product team offsite, Lisbon", "helvetica", 24, accent)
    return s.page()


def invoice(size: tuple[int, int]) -> Page:
    """An invoice in a PDF viewer: Müller GmbH, Invoice #4711, with small print."""
    s = Sheet("invoice", size, (82, 86, 92))
    sheet_w = min(900, s.w - 80)
    px0 = (s.w - sheet_w) // 2
    s.rect((px0, 20, sheet_w, s.h - 40), PAPER)
    x, right = px0 + 50, px0 + sheet_w - 50
    y = 50
    s.text(x, y, "Müller GmbH", "helvetica-bold", 24, INK)
    s.text(right, y + 4, "Invoice #4711", "helvetica-bold", 20, INK, right=True)
    s.text(x, y + 38, "Schloßstraße 12, 80331 München", "helvetica", 14, GREY)
    s.text(right, y + 38, "Date: 28 October 2026", "helvetica", 14, INK, right=True)
    s.text(right, y + 60, "Due: 27 November 2026", "helvetica", 14, INK, right=True)
    y += 110
    s.text(x, y, "Bill to: Jörg Schäfer, Gärtnerei am Südhang", "sans", 15, INK)
    y += 44
    s.rect((x - 6, y - 6, right - x + 12, 30), (238, 240, 244))
    s.text(x, y, "Description", "sans-bold", 14, INK)
    s.text(right - 260, y, "Qty", "sans-bold", 14, INK, right=True)
    s.text(right, y, "Amount", "sans-bold", 14, INK, right=True)
    y += 38
    for desc, qty, amount in [
        ("Greenhouse heating controller HX-200", "2", "1,380.00 EUR"),
        ("Installation and wiring, on site", "6 h", "534.00 EUR"),
        ("Soil moisture sensors, set of 10", "1", "249.00 EUR"),
    ]:
        s.text(x, y, desc, "sans", 14, INK)
        s.text(right - 260, y, qty, "sans", 14, INK, right=True)
        s.text(right, y, amount, "sans", 14, INK, right=True)
        y += 30
    s.hline(y + 2, x, right, (180, 180, 185))
    y += 14
    s.text(right - 260, y, "Net", "sans", 14, INK, right=True)
    s.text(right, y, "2,163.00 EUR", "sans", 14, INK, right=True)
    s.text(right - 260, y + 26, "VAT 19%", "sans", 14, INK, right=True)
    s.text(right, y + 26, "410.97 EUR", "sans", 14, INK, right=True)
    s.text(right - 260, y + 56, "Total due", "sans-bold", 16, INK, right=True)
    s.text(right, y + 56, "2,573.97 EUR", "sans-bold", 16, INK, right=True)
    y = s.h - 110
    s.text(x, y, "Please transfer the total within 30 days, quoting the invoice number.", "sans", 13, GREY)
    s.text(x, y + 22, "IBAN DE44 5001 0517 5407 3249 31    BIC INGDDEFFXXX", "mono", 12, GREY)
    s.text(x, y + 42, "Amtsgericht München HRB 123456, Geschäftsführer: Klaus Müller", "sans", 11, GREY)
    return s.page()


def email(size: tuple[int, int]) -> Page:
    """An email in a mail client: the landlord announces heating maintenance."""
    s = Sheet("email", size, PAPER)
    top = _titlebar(s, "Inbox - Thunderbird")
    side = 230
    s.rect((0, top, side, s.h - top), (243, 244, 247))
    y = top + 16
    for folder in ["Inbox (3)", "Drafts", "Sent", "Archive", "Spam"]:
        s.text(18, y, folder, "sans", 13, INK)
        y += 28
    x = side + 30
    y = top + 20
    s.text(x, y, "Heating maintenance on Friday: radiators off from 8 to 14", "sans-bold", 18, INK)
    y += 40
    s.text(x, y, "From: Petra Novak <p.novak@hausverwaltung-lindenhof.de>", "sans", 14, GREY)
    s.text(x, y + 22, "To: all tenants of Lindenhof 7", "sans", 14, GREY)
    s.text(x, y + 44, "Date: Wed, 4 Nov 2026 17:05", "sans", 14, GREY)
    y += 86
    for line in [
        "Dear tenants,",
        "",
        "the boiler in the basement gets its yearly service this Friday. Between",
        "8 am and 2 pm there will be no heating and no hot water in the building.",
        "Please leave the radiator valves open and make sure the technician can",
        "reach the meters in the storage rooms. If Friday does not suit you,",
        "reply by Thursday noon and we will find another slot for your flat.",
        "",
        "Kind regards,",
        "Petra Novak, property management",
    ]:
        if line:
            s.text(x, y, line, "helvetica", 16, INK)
        y += 25
    return s.page()


PAGES: dict[str, Callable[[tuple[int, int]], Page]] = {
    "document": document,
    "terminal": terminal,
    "spreadsheet": spreadsheet,
    "slide": slide,
    "invoice": invoice,
    "email": email,
}


def page(name: str, size: tuple[int, int] = (1280, 720)) -> Page:
    """One page by name, rendered for a `size` = (width, height) screen."""
    if name not in PAGES:
        raise KeyError(f"no page {name!r}; there are {', '.join(PAGES)}")
    return PAGES[name](size)


def pages(size: tuple[int, int] = (1280, 720)) -> list[Page]:
    return [build(size) for build in PAGES.values()]


def save(p: Page, path: Path) -> Path:
    """The page as a PNG (what feh shows); its truth as a text file next to it, one line a line."""
    Image.fromarray(p.rgb).save(path, format="PNG")
    path.with_suffix(".txt").write_text(p.text + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m demo.textpages", description="Write the text pages as PNGs.")
    ap.add_argument("out", type=Path, help="directory for <name>-<w>x<h>.png and .txt")
    ap.add_argument("--size", default="1280x720", help="screen size WxH (default 1280x720)")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))
    args.out.mkdir(parents=True, exist_ok=True)
    for p in pages((w, h)):
        print(save(p, args.out / f"{p.name}-{w}x{h}.png"))


if __name__ == "__main__":
    main()
