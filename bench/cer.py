"""Character error rate of recognised screen text against the truth of a rendered page.

Recognised lines are matched to truth lines by box overlap: each recognised line goes to the truth line
it overlaps most (`overlap` ≥ 0.5), and among truth lines it overlaps
about as much (a detector's box spanning two grid cells), to the one whose text it is closest to by edit
distance. A truth line's recognised lines are joined left to right, and its errors are the edit distance
to its text; a truth line nothing matched counts every character as an error, and a recognised line that
matched nothing counts every character as an insertion (charged to the size group of the truth line
nearest to it). CER = errors / truth characters. Whitespace runs count as one space.

Pure functions on plain values: the truth is anything with `.text`, `.box`, `.size` (demo.textpages
TruthLine), a recognised line anything with `.text` and `.box` (encoders.records.TextLine).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

Box = tuple[int, int, int, int]  # x, y, w, h
SMALL = 14  # px: the CER goal is for text of at least this size
MIN_OVERLAP = 0.5
TIE = 0.1  # overlaps within this of the best are ties, settled by edit distance


class Truth(Protocol):
    @property
    def text(self) -> str: ...
    @property
    def box(self) -> Box: ...
    @property
    def size(self) -> int: ...


class Found(Protocol):
    @property
    def text(self) -> str: ...
    @property
    def box(self) -> Box: ...


@dataclass
class Score:
    errors: int = 0
    chars: int = 0

    @property
    def cer(self) -> float | None:
        return self.errors / self.chars if self.chars else None

    def add(self, errors: int, chars: int = 0) -> None:
        self.errors += errors
        self.chars += chars


@dataclass
class PageScore:
    total: Score = field(default_factory=Score)
    groups: dict[str, Score] = field(default_factory=dict)  # "<14px", ">=14px"
    missing: list[str] = field(default_factory=list)  # truth lines nothing matched
    extra: list[str] = field(default_factory=list)  # recognised lines that matched no truth line
    pairs: list[tuple[str, str]] = field(default_factory=list)  # (truth, recognised) where they differ


def group(size: int) -> str:
    return f"<{SMALL}px" if size < SMALL else f">={SMALL}px"


def norm(text: str) -> str:
    return " ".join(text.split())


def distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions each cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def overlap(a: Box, b: Box) -> float:
    """How much two boxes cover each other: the shared part of their x spans over the narrower span, times the
    same for y. 1.0 when one box lies inside the other, even a detector's box padded well beyond the ink of a
    small font, or one word read apart from the rest of its line."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    if min(aw, ah, bw, bh) <= 0:
        return 0.0
    ix = min(ax + aw, bx + bw) - max(ax, bx)
    iy = min(ay + ah, by + bh) - max(ay, by)
    if ix <= 0 or iy <= 0:
        return 0.0
    return ix / min(aw, bw) * iy / min(ah, bh)


def _centre_dist(a: Box, b: Box) -> float:
    return ((a[0] + a[2] / 2 - b[0] - b[2] / 2) ** 2 + (a[1] + a[3] / 2 - b[1] - b[3] / 2) ** 2) ** 0.5


def match(truth: Sequence[Truth], found: Sequence[Found]) -> tuple[list[list[int]], list[int]]:
    """For each truth line the indices of the recognised lines matched to it, and the unmatched indices."""
    assigned: list[list[int]] = [[] for _ in truth]
    extra: list[int] = []
    for k, f in enumerate(found):
        ov = [overlap(t.box, f.box) for t in truth]
        best = max(ov, default=0.0)
        if best < MIN_OVERLAP:
            extra.append(k)
            continue
        tied = [i for i, o in enumerate(ov) if o >= best - TIE]
        text = norm(f.text)
        i = min(tied, key=lambda i: (distance(norm(truth[i].text), text) / max(1, len(truth[i].text)), -ov[i]))
        assigned[i].append(k)
    return assigned, extra


def score(truth: Sequence[Truth], found: Sequence[Found]) -> PageScore:
    out = PageScore(groups={group(1): Score(), group(SMALL): Score()})
    assigned, extra = match(truth, found)
    for t, ks in zip(truth, assigned, strict=True):
        want = norm(t.text)
        got = norm(" ".join(found[k].text for k in sorted(ks, key=lambda k: (found[k].box[0], found[k].box[1]))))
        d = distance(want, got) if ks else len(want)
        if not ks:
            out.missing.append(want)
        elif d:
            out.pairs.append((want, got))
        out.total.add(d, len(want))
        out.groups[group(t.size)].add(d, len(want))
    for k in extra:
        text = norm(found[k].text)
        out.extra.append(text)
        out.total.add(len(text))
        if truth:
            near = min(truth, key=lambda t: _centre_dist(t.box, found[k].box))
            out.groups[group(near.size)].add(len(text))
    return out


def combine(scores: Sequence[PageScore]) -> PageScore:
    """Several pages' scores as one (errors and characters summed, not rates averaged)."""
    out = PageScore(groups={group(1): Score(), group(SMALL): Score()})
    for s in scores:
        out.total.add(s.total.errors, s.total.chars)
        for g, v in s.groups.items():
            out.groups.setdefault(g, Score()).add(v.errors, v.chars)
        out.missing += s.missing
        out.extra += s.extra
        out.pairs += s.pairs
    return out
