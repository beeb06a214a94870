"""Text lines into blocks (paragraphs, table rows, terminal output), and what of them is new to a source.

OCR reads a screen as boxed lines; a memory is a block: one thought, small enough for MiniLM's 256 tokens
to matter, big enough to carry context. `blocks` works on geometry only:
  1. rows: lines on the same baseline (vertical centres within half a line height) and near each other are
     one row, read left to right: a gap of ≤ ROW_GAP line heights (a detector split a line at a wide
     space), or ≤ CELL_GAP between short boxes (≤ CELL_W line heights wide): a table or grid row stays a
     row ("2  USB-C cable  9.99"). Long lines farther apart (two page columns, a sidebar) stay separate.
  2. blocks: a row joins the block above it when the vertical gap is ≤ PARA_GAP line heights, their
     horizontal extents overlap (same column) and their heights are alike (a heading starts a block).
Blocks come in the order of their first line in the input (the OCR's reading order).

`Novelty` keeps a screen that changes little from being stored again and again: a source remembers the lines
it stored recently, and a block goes on with only the lines it has not seen (scrolling stores what scrolled
in). A line read again with an OCR slip (one character in 20 or so) counts as seen; a changed number does not.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from encoders.records import TextLine

ROW_GAP = 3.0  # line heights between two boxes of one row (a detector's split at a wide space)
CELL_W, CELL_GAP = 16.0, 12.0  # boxes this narrow (≈ 30 characters) are cells: one row up to this far apart
PARA_GAP = 0.8  # line heights of empty space between two rows of one block
HEIGHT_RATIO = 1.5  # taller than this many times the other row: a heading or other text, another block
MAX_CHARS = 1000  # a longer block (a terminal, an editor: evenly spaced lines) is cut: MiniLM reads 256 tokens

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Block:
    text: str  # its lines' text joined by "\n"
    box: Box  # x, y, w, h enclosing its lines
    lines: tuple[TextLine, ...]  # one per row, top to bottom; a row of several boxes is one TextLine

    @property
    def score(self) -> float:
        """Its least sure line's score: how far the block as a whole can be trusted."""
        return min((ln.score for ln in self.lines), default=0.0)


def union(boxes: Iterable[Box]) -> Box:
    bs = list(boxes)
    x0, y0 = min(b[0] for b in bs), min(b[1] for b in bs)
    x1, y1 = max(b[0] + b[2] for b in bs), max(b[1] + b[3] for b in bs)
    return (x0, y0, x1 - x0, y1 - y0)


def block_of(lines: Sequence[TextLine]) -> Block:
    return Block("\n".join(ln.text for ln in lines), union(ln.box for ln in lines), tuple(lines))


def blocks(lines: Sequence[TextLine], max_chars: int = MAX_CHARS) -> list[Block]:
    """Group one frame's lines (reading order, boxes in pixels) into blocks of at most `max_chars` (unless
    one row is longer); empty lines are dropped."""
    rows = _rows([ln for ln in lines if ln.text.strip() and ln.box[3] > 0])
    out: list[list[tuple[int, TextLine]]] = []
    for first, row in sorted(rows, key=lambda r: (r[1].box[1], r[1].box[0])):  # top to bottom
        home = next((b for b in out if _continues(b[-1][1], row) and _size(b) + len(row.text) < max_chars), None)
        if home is None:
            out.append([(first, row)])
        else:
            home.append((first, row))
    out.sort(key=lambda b: min(i for i, _ in b))
    return [block_of([row for _, row in b]) for b in out]


def _size(block: list[tuple[int, TextLine]]) -> int:
    return sum(len(ln.text) + 1 for _, ln in block)


def _rows(lines: list[TextLine]) -> list[tuple[int, TextLine]]:
    """(index of its first line in the input, the row as one TextLine). Lines are visited by vertical centre,
    so a line is compared only with the rows still open around its height: O(n log n) on a normal screen."""
    order = sorted(range(len(lines)), key=lambda i: lines[i].box[1] + lines[i].box[3] / 2)
    rows: list[list[tuple[int, TextLine]]] = []
    open_: list[list[tuple[int, TextLine]]] = []  # rows whose last line is within a line height above
    for i in order:
        ln = lines[i]
        mid = ln.box[1] + ln.box[3] / 2
        open_ = [r for r in open_ if mid - (r[-1][1].box[1] + r[-1][1].box[3] / 2) <= r[-1][1].box[3]]
        row = next((r for r in open_ if any(_same_row(o, ln) for _, o in r)), None)
        if row is None:
            row = []
            rows.append(row)
            open_.append(row)
        row.append((i, ln))
    out = []
    for r in rows:
        cells = sorted((ln for _, ln in r), key=lambda ln: ln.box[0])
        text = "  ".join(ln.text.strip() for ln in cells) if len(cells) > 1 else cells[0].text
        score = min(ln.score for ln in cells)
        out.append((min(i for i, _ in r), TextLine(text, union(ln.box for ln in cells), score)))
    return out


def _same_row(a: TextLine, b: TextLine) -> bool:
    (ax, ay, aw, ah), (bx, by, bw, bh) = a.box, b.box
    h = min(ah, bh)
    if abs((ay + ah / 2) - (by + bh / 2)) > h / 2 or max(ah, bh) > HEIGHT_RATIO * h:
        return False
    gap = max(bx - (ax + aw), ax - (bx + bw))  # < 0 when they overlap
    return gap <= ROW_GAP * h or (max(aw, bw) <= CELL_W * h and gap <= CELL_GAP * h)


def _continues(above: TextLine, row: TextLine) -> bool:
    (ax, ay, aw, ah), (bx, by, bw, bh) = above.box, row.box
    h = min(ah, bh)
    if max(ah, bh) > HEIGHT_RATIO * h:
        return False
    gap = by - (ay + ah)
    overlap = min(ax + aw, bx + bw) - max(ax, bx)
    return -h / 2 <= gap <= PARA_GAP * h and overlap > 0


# --- novelty ------------------------------------------------------------------------------------------------

CAPACITY = 20_000  # lines remembered per source: a few hours of ordinary screen use
MIN_CHARS = 3  # letters and digits a line needs to be stored: "OK", "x", "|" and icons' OCR are noise
MIN_SCORE = 0.5  # recogniser confidence under which a line is noise
SLIP = 20  # one differing character per this many counts as the same line read again


def normalise(text: str) -> str:
    """What two readings of one line share: case, spaces (OCR adds and drops them) and edge punctuation go."""
    return re.sub(r"\s+", "", text.casefold()).strip(".,;:|·•-_*'\"`")


class Novelty:
    """The lines one source stored recently (least recently seen forgotten first), to store only news."""

    def __init__(
        self, capacity: int = CAPACITY, min_chars: int = MIN_CHARS, min_score: float = MIN_SCORE, fuzzy: bool = True
    ) -> None:
        self.capacity = capacity
        self.min_chars = min_chars
        self.min_score = min_score
        self.fuzzy = fuzzy
        self._seen: OrderedDict[str, None] = OrderedDict()  # normalised line → None, in order of last sight
        self._halves: dict[tuple[int, str], set[str]] = {}  # (side, half) → lines: finds a slip in O(1)
        self.noise = 0  # lines left out as noise
        self.repeated = 0  # lines left out as seen

    def __len__(self) -> int:
        return len(self._seen)

    def new(self, found: Sequence[Block]) -> list[Block]:
        """The blocks with only their lines not seen before (blocks with none left are dropped); those lines
        count as seen from now on, so call this once per frame with what will be stored."""
        out = []
        for block in found:
            fresh = [ln for ln in block.lines if self._fresh(ln)]
            if fresh:
                out.append(block if len(fresh) == len(block.lines) else block_of(fresh))
        return out

    def clear(self) -> None:
        self._seen.clear()
        self._halves.clear()

    def _fresh(self, line: TextLine) -> bool:
        key = normalise(line.text)
        if line.score < self.min_score or sum(c.isalnum() for c in key) < self.min_chars:
            self.noise += 1
            return False
        known = key if key in self._seen else self._near(key) if self.fuzzy else None
        if known is not None:
            self._seen.move_to_end(known)  # still on screen: remembered longer
            self.repeated += 1
            return False
        self._remember(key)
        return True

    def _near(self, key: str) -> str | None:
        """A remembered line that differs from `key` in one stretch of at most one character per SLIP: it
        shares its first or its last half with `key` (one slip leaves one half intact), so only those few are
        compared."""
        limit = max(1, len(key) // SLIP)
        n = len(key)
        lengths = {(n - 2) // 2, (n - 1) // 2, n // 2}  # as a line one shorter, as long, one longer halves it
        for side, half in (h for m in lengths for h in _halves(key, m)):
            for other in self._halves.get((side, half), ()):
                if abs(len(other) - len(key)) <= limit and _one_slip(key, other, limit):
                    return other
        return None

    def _remember(self, key: str) -> None:
        self._seen[key] = None
        for h in _halves(key):
            self._halves.setdefault(h, set()).add(key)
        while len(self._seen) > self.capacity:
            old, _ = self._seen.popitem(last=False)
            for h in _halves(old):
                group = self._halves.get(h)
                if group is not None:
                    group.discard(old)
                    if not group:
                        del self._halves[h]


def _halves(key: str, m: int | None = None) -> list[tuple[int, str]]:
    """Its first and last m = (len - 1) // 2 characters: a slip (one character changed, added or dropped)
    leaves at least one of them intact."""
    m = max((len(key) - 1) // 2 if m is None else m, 1)
    return [(0, key[:m]), (1, key[-m:])]


def _one_slip(a: str, b: str, limit: int) -> bool:
    """Whether a and b differ only within one stretch of at most `limit` characters (a character or two
    misread, added or dropped): O(n), where an edit distance cost ~0.5 ms a pair. A stretch of digits on both
    sides is a number that changed ("9.99" → "9.98", a clock, a counter), not a slip."""
    n = min(len(a), len(b))
    p = 0
    while p < n and a[p] == b[p]:
        p += 1
    s = 0
    while s < n - p and a[-1 - s] == b[-1 - s]:
        s += 1
    if max(len(a), len(b)) - p - s > limit:
        return False
    changed = a[p : len(a) - s] + b[p : len(b) - s]
    return not changed.isdigit()
