"""Thumbnails: small JPEGs of kept image frames, filed as thumbs/<local day>/<source>-<ts_ns>.jpg.

The result stage writes one before anything advertises it, so a subscriber never opens a path that is not
there yet: a header and a stored row carry the path of a file on disk, or None. Forget and retention
remove them with their rows; the capture time is in the name, so a range goes without asking the store.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import shutil
import time
from pathlib import Path

import cv2

from encoders.records import Frame
from encoders.resize import shrink

log = logging.getLogger(__name__)

NAME = re.compile(r"-(\d+)\.jpg$")
QUALITY = 80


class Thumbnails:
    """The thumbnail folder of one memory; `root` None: thumbnails are off (nothing is written)."""

    def __init__(self, root: Path | None, width: int) -> None:
        self.root = root
        self.width = width
        self.errors = 0  # thumbnails that could not be encoded or written (their rows carry none)

    def path(self, frame: Frame) -> Path | None:
        if self.root is None or frame.modality != "image":
            return None
        day = time.strftime("%Y-%m-%d", time.localtime(frame.ts_ns / 1e9))
        return self.root / day / f"{frame.id}.jpg"

    def save(self, frame: Frame) -> str | None:
        """Write the frame's thumbnail; its path, or None when off, not an image, or the write failed (counted)."""
        path = self.path(frame)
        if path is None:
            return None
        if path.is_file():  # text read from this frame comes after its image: same thumbnail
            return str(path)
        h, w = frame.data.shape[:2]
        small = shrink(frame.data, self.width, max(1, round(h * self.width / max(w, 1))))
        ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
        try:
            if not ok:
                raise ValueError("JPEG encoding failed")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(jpg.tobytes())
        except (OSError, ValueError) as e:
            self.errors += 1
            log.warning("thumbnail %s not written: %s", path, e)
            return None
        return str(path)

    def bytes(self) -> list[tuple[float, int]]:
        """(capture time, bytes) of every thumbnail, for retention by size; one whose name carries no time
        counts as never removed."""
        if self.root is None or not self.root.is_dir():
            return []
        out = []
        for p in self.root.glob("*/*.jpg"):
            m = NAME.search(p.name)
            out.append((int(m.group(1)) / 1e9 if m else float("inf"), p.stat().st_size))
        return out

    def remove(self, since: float | None, until: float | None) -> int:
        """Delete thumbnails captured in [since, until] (and day folders left empty); returns files removed."""
        if self.root is None or not self.root.is_dir():
            return 0
        removed = 0
        for day in sorted(p for p in self.root.iterdir() if p.is_dir()):
            span = _day_range(day.name)
            if span is None:
                continue
            lo, hi = span
            if (since is not None and hi <= since) or (until is not None and lo > until):
                continue
            if (since is None or since <= lo) and (until is not None and until >= hi):
                removed += sum(1 for _ in day.glob("*.jpg"))
                shutil.rmtree(day, ignore_errors=True)
                continue
            for f in day.glob("*.jpg"):
                m = NAME.search(f.name)
                if m is None:
                    continue
                ts = int(m.group(1)) / 1e9
                if (since is None or ts >= since) and (until is None or ts <= until):
                    f.unlink(missing_ok=True)
                    removed += 1
            if not any(day.iterdir()):
                day.rmdir()
        return removed


def _day_range(name: str) -> tuple[float, float] | None:
    """[start, end) in unix seconds of the local day a folder is named after; None for other names."""
    try:
        day = dt.date.fromisoformat(name)
    except ValueError:
        return None
    start = dt.datetime.combine(day, dt.time()).timestamp()  # thumbs are filed by local day
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time()).timestamp()
    return start, end
