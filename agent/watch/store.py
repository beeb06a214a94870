"""watches.json in the data dir: written atomically (0600), read at start; a bad file never stops the daemon.

Format: {"version": 1, "watches": [{name, text, modality, source, threshold, cooldown, created, image,
"probes": {space: base64 float32}}]}. Text watches store no probes (they are recomputed at start, so a
changed text model gets fresh ones); image watches store theirs, since the image is not kept.

A file that cannot be read as that format, or with entries that are not watches, is copied aside to
watches.json.bad-<unix s> with an ERROR in the log naming the problem; the daemon starts with the
watches that were valid (none for an unreadable file) and the next change rewrites the file.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np

from agent.watch.spec import Watch, WatchError, parse

log = logging.getLogger(__name__)

VERSION = 1
FILE = "watches.json"


class WatchFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.errors = 0  # files set aside or entries skipped

    def load(self) -> list[Watch]:
        """The watches in the file ([] when there is none, or it is unreadable: then it is set aside)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as e:
            return self._bad(f"cannot read: {e}", [])
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict) or doc.get("version") != VERSION or not isinstance(doc.get("watches"), list):
                raise ValueError(f'not {{"version": {VERSION}, "watches": [...]}}')
        except (ValueError, UnicodeDecodeError) as e:
            return self._bad(f"not a watches file: {e}", [])
        out: list[Watch] = []
        problems: list[str] = []
        for i, entry in enumerate(doc["watches"]):
            try:
                out.append(_entry(entry))
            except (WatchError, ValueError, TypeError) as e:
                problems.append(f"entry {i}: {e}")
        names = [w.name for w in out]
        if len(set(names)) != len(names):
            problems.append("a name appears twice (the last one is kept)")
            out = list({w.name: w for w in out}.values())
        return self._bad("; ".join(problems), out) if problems else out

    def save(self, watches: list[Watch]) -> None:
        """Replace the file in one step (a crash leaves the old file or the new one, never half of one)."""
        doc = {"version": VERSION, "watches": [_dump(w) for w in watches]}
        data = json.dumps(doc, indent=1).encode()
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dfd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def _bad(self, why: str, keep: list[Watch]) -> list[Watch]:
        self.errors += 1
        aside = self.path.with_name(f"{self.path.name}.bad-{int(time.time())}")
        try:
            shutil.copy2(self.path, aside)
            where = f"kept as {aside}"
        except OSError as e:
            where = f"could not be kept aside: {e}"
        log.error("watches file %s: %s; %s; starting with %d watches", self.path, why, where, len(keep))
        return keep


def _entry(entry: object) -> Watch:
    if not isinstance(entry, dict):
        raise WatchError("not an object")
    created = entry.get("created", 0.0)
    w = parse(entry, float(created) if isinstance(created, (int, float)) else 0.0)
    if w.image:
        probes = entry.get("probes")
        if not isinstance(probes, dict) or not probes:
            raise WatchError("an image watch without its probe vectors")
        for space, b64 in probes.items():
            vec = np.frombuffer(base64.b64decode(b64, validate=True), dtype="<f4").astype(np.float32)
            if not vec.size or not np.isfinite(vec).all() or abs(float(np.linalg.norm(vec)) - 1) > 1e-3:
                raise WatchError(f"probe for {space} is not a unit vector")
            w.probes[str(space)] = vec
    return w


def _dump(w: Watch) -> dict:
    d = w.public()
    del d["spaces"]
    if w.image:  # an image cannot be encoded again: keep its vectors
        d["probes"] = {s: base64.b64encode(np.asarray(v, "<f4").tobytes()).decode() for s, v in w.probes.items()}
    return d
