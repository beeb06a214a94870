"""The watch registry and matcher: a sink on the result stage that dot-products every new vector with the
watches' probes and publishes `match.<NAME>` (two frames: topic, header; no vector) on a hit.

Matching runs on the result stage's thread: per vector one (watches × dim) product for its space — 100
watches × 384 floats is a few microseconds — and publishing only enqueues (Publisher._send never waits),
so nothing here blocks on I/O. Adding or removing a watch (the query service's thread) swaps in a new
immutable table; the matcher reads whichever table is current.

Cooldown: a watch fires on a match unless it matched (fired or not) less than `cooldown` seconds before,
by capture time. So one long event — a cat on screen for ten minutes, forced keeps every few seconds —
fires once, and fires again only after `cooldown` seconds with no match at all. The suppressed matches are
counted. A frame matching in several spaces (MiniLM and CLIP) fires once, for its best score.

Ops (Service.ops): watch_add {name, text | image, modality?, source?, threshold?, cooldown?} adds a watch,
or replaces the one with that name (the reply says "replaced": true; its cooldown starts afresh);
watch_list; watch_remove {name} (an unknown name is an error). At most MAX_WATCHES.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from agent.query.search import BadRequest
from agent.watch.spec import MAX_WATCHES, Watch, WatchError, check_name, default_threshold, parse
from agent.watch.store import FILE, WatchFile
from encoders.records import Embedding, Encoded
from sinks.bus import wire

log = logging.getLogger(__name__)

Probes = list[tuple[str, np.ndarray]]  # (space, unit vector)


class TextProbe(Protocol):
    """Text to a unit vector in one space (MiniLM's TextEncoder, a CLIP text tower)."""

    space: str

    def encode(self, text: str) -> np.ndarray: ...


@dataclass(frozen=True)
class _Table:
    """Per space: the watches with a probe there, and their probes as rows of one matrix."""

    watches: dict[str, tuple[Watch, ...]]
    matrix: dict[str, np.ndarray]


@dataclass
class _Cool:
    last_match_ns: int | None = None  # capture time (monotonic) of the last match, fired or not
    fired: int = 0
    suppressed: int = 0
    last_fired: float | None = None  # unix s


class Watches:
    def __init__(
        self,
        data_dir: Path,
        texts: Sequence[TextProbe],
        publish: Callable[[str, dict], None],
        redact: bool,
        image_probes: Callable[[dict], Probes] | None = None,
        max_watches: int = MAX_WATCHES,
    ) -> None:
        """`texts`: the query encoders (the first is the text model, whose space gets the MiniLM defaults);
        `publish(topic, header)`: Publisher.publish_sys; `redact`: leave text memories' words out of match
        headers (Publisher.redact); `image_probes(body)`: an image request's vectors per space (the embed
        op's decoding; None: image watches are refused)."""
        self.texts = list(texts)
        self.text_space = self.texts[0].space if self.texts else None
        self.publish = publish
        self.redact = redact
        self.image_probes = image_probes
        self.max_watches = max_watches
        self.file = WatchFile(data_dir / FILE)
        self._edit = threading.Lock()  # one add or remove at a time (they write the file: never under _lock)
        self._lock = threading.Lock()  # swapping the tables in, and the counters; held for microseconds
        self._watches: dict[str, Watch] = {}
        self._cool: dict[str, _Cool] = {}
        self._table = _Table({}, {})
        self.fired = 0
        self.suppressed = 0
        self.errors = 0  # vectors the matcher could not compare (a bug, or a probe of another size)
        for w in self.file.load():
            try:
                if not w.image:
                    w.probes = dict(self._text_probes(w.text or ""))
                self._watches[w.name] = w
            except Exception as e:  # an encoder that fails must not stop the start
                self.errors += 1
                log.error("watch %s not loaded: %s", w.name, e)
        self._cool = {n: _Cool() for n in self._watches}
        self._rebuild()
        if self._watches:
            log.info("watches loaded: %s", ",".join(self._watches))

    # ---- ops -------------------------------------------------------------------------------------------
    def ops(self) -> dict[str, Callable[[dict], dict[str, Any]]]:
        return {"watch_add": self.add, "watch_list": self.list, "watch_remove": self.remove}

    def add(self, body: dict) -> dict[str, Any]:
        try:
            w = parse(body, round(time.time(), 3))
        except WatchError as e:
            raise BadRequest(str(e)) from None
        if w.image:
            if self.image_probes is None:
                raise BadRequest("image watches need the image decoding of the embed op, which is not available")
            w.probes = dict(self.image_probes(body))
        else:
            w.probes = dict(self._text_probes(w.text or ""))
        if not w.probes:
            raise BadRequest("no encoder can turn this query into a vector")
        with self._edit:
            replaced = w.name in self._watches
            if not replaced and len(self._watches) >= self.max_watches:
                raise BadRequest(f"at most {self.max_watches} watches; remove one first (watch_remove)")
            watches = {**self._watches, w.name: w}
            self._save(watches)  # first: a watch that is not on disk is not added
            with self._lock:
                self._watches = watches
                self._cool = {**self._cool, w.name: _Cool()}
                self._rebuild()
        log.info("watch %s %s: %r", w.name, "replaced" if replaced else "added", w.text if w.text else "<image>")
        return {"watch": w.public(), "replaced": replaced}

    def list(self, body: dict) -> dict[str, Any]:
        with self._lock:
            out = []
            for w in self._watches.values():
                c = self._cool.get(w.name, _Cool())
                out.append({**w.public(), "fired": c.fired, "suppressed": c.suppressed, "last_fired": c.last_fired})
        return {"watches": out, "max": self.max_watches}

    def remove(self, body: dict) -> dict[str, Any]:
        try:
            name = check_name(body.get("name"))
        except WatchError as e:
            raise BadRequest(str(e)) from None
        with self._edit:
            if name not in self._watches:
                raise BadRequest(f"no watch named {name!r}; known: {', '.join(self._watches) or 'none'}")
            watches = {n: w for n, w in self._watches.items() if n != name}
            self._save(watches)
            with self._lock:
                self._watches = watches
                self._cool = {n: c for n, c in self._cool.items() if n != name}
                self._rebuild()
        log.info("watch %s removed", name)
        return {"removed": name}

    def _save(self, watches: dict[str, Watch]) -> None:
        try:
            self.file.save(list(watches.values()))
        except OSError as e:
            raise BadRequest(f"watches not changed: cannot write {self.file.path}: {e.strerror or e}") from None

    def _text_probes(self, text: str) -> Probes:
        return [(enc.space, np.asarray(enc.encode(text), dtype=np.float32)) for enc in self.texts]

    def _rebuild(self) -> None:
        by_space: dict[str, list[Watch]] = {}
        for w in self._watches.values():
            for space in w.probes:
                by_space.setdefault(space, []).append(w)
        matrix = {s: np.stack([w.probes[s] for w in ws]).astype(np.float32) for s, ws in by_space.items()}
        self._table = _Table({s: tuple(ws) for s, ws in by_space.items()}, matrix)

    # ---- sink ------------------------------------------------------------------------------------------
    def put(self, item: Encoded, thumb: str | None = None) -> None:
        table = self._table
        if not table.matrix:
            return
        best: dict[str, tuple[float, Embedding]] = {}  # watch name -> its best match in this item
        for e in item.embeddings:
            m = table.matrix.get(e.space)
            if m is None or m.shape[1] != e.dim:
                continue
            try:
                scores = m @ e.vector
            except Exception:
                self.errors += 1
                log.exception("watch match of %s failed", e.id)
                continue
            for w, score in zip(table.watches[e.space], scores.tolist(), strict=True):
                limit = w.threshold
                if limit is None:
                    limit = default_threshold(e.space, e.modality, self.text_space, w.image)
                if score >= limit and w.wants(e.modality, e.source) and score > best.get(w.name, (-2.0, e))[0]:
                    best[w.name] = (score, e)
        for name, (score, e) in best.items():
            self._hit(table, name, score, e, thumb)

    def _hit(self, table: _Table, name: str, score: float, e: Embedding, thumb: str | None) -> None:
        with self._lock:
            c = self._cool.get(name)
            w = self._watches.get(name)
            if c is None or w is None:  # removed meanwhile
                return
            last = c.last_match_ns
            quiet = last is None or e.mono_ns - last >= w.cooldown * 1e9
            c.last_match_ns = e.mono_ns if last is None else max(last, e.mono_ns)
            if not quiet:
                c.suppressed += 1
                self.suppressed += 1
                return
            c.fired += 1
            c.last_fired = round(time.time(), 3)
            self.fired += 1
        header = wire.header(
            e.id, e.ts_ns / 1e9, e.source, e.modality, e.space, e.dim, e.labels, thumb, e.scores,
            frame=e.frame_id if e.text else None, text=e.text or None, redact=self.redact,
            extra=e.extra if e.text else None,
        )  # fmt: skip
        self.publish(f"match.{name}", {**header, "watch": name, "score": round(score, 4)})

    def close(self) -> None:
        pass

    def stats(self) -> dict[str, int]:
        n = len(self._watches)
        return {"watches": n, "fired": self.fired, "suppressed": self.suppressed, "errors": self.errors}
