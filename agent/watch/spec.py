"""What a watch is, how a request or a file entry becomes one, and the default thresholds.

A watch is a name, a query (text now; an image's vectors through the `image_probes` hook of `Watches`),
optional modality/source filters, a threshold and a cooldown. Its probe vectors (one per space a query
encoder covers) are computed once when it is added, so matching a new embedding is a dot product.

Default thresholds (cosine), measured with the built test models (effnet-lite0 + MiniLM-L6;
`pytest -s tests/agent/watch/test_thresholds.py` prints the tables):
- MiniLM text probe vs an image's or a sound's ConSE vector (labels' text embeddings weighted by their
  scores, same space): a right answer scored 0.80 ("a cat" / the cat photo) and 0.60 ("a coffee cup" /
  the espresso photo); over 17 skimage photos × 10 queries the best wrong answer scored 0.54 and most
  were 0.2–0.45 (p95 0.45). CONSE_THRESHOLD = 0.55 sits above the wrong ones, below the right ones — with
  a thin margin (0.54), and a thing the classifier has no label for cannot reach it (the rocket photo is
  "drilling platform, missile" to effnet-lite0: "a rocket" scores 0.42). Set --threshold per watch.
- MiniLM text probe vs a text memory (screen text, speech): right answers 0.37–0.77, wrong ones ≤ 0.23:
  TEXT_THRESHOLD = 0.35.
- Any other space (a CLIP text probe vs CLIP image vectors): 0.25, CLIP's usual match/no-match boundary
  for ViT-B/32-class models (matches ≈ 0.25–0.35, others ≈ 0.15–0.20); not measurable here, the test
  CLIP is random. A user's `threshold` replaces every default for that watch.
- An image watch (the photo's bytes): its image-model vector vs a frame's, IMAGE_THRESHOLD = 0.65: each of the
  17 photos seen again (cropped, scaled, brighter, JPEG'd) scored ≥ 0.80 with itself in effnet-lite0's space,
  every other pair ≤ 0.51. Its ConSE vector is left out (a wrong pair scored 0.85 there).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

MAX_WATCHES = 100
NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
MODALITIES = ("image", "audio", "text", "moment")
MAX_TEXT = 2000
DEFAULT_COOLDOWN_S = 60.0
MAX_COOLDOWN_S = 7 * 86400.0
CONSE_THRESHOLD = 0.55  # text probe vs a ConSE vector (image, audio) in the text encoder's space
TEXT_THRESHOLD = 0.35  # text probe vs a text memory in the text encoder's space
OTHER_THRESHOLD = 0.25  # e.g. CLIP text probe vs CLIP image vectors
IMAGE_THRESHOLD = 0.65  # an image watch: the photo's image-model vector vs a frame's


class WatchError(ValueError):
    """A watch request or file entry that cannot be a watch; the message says which field and why."""


@dataclass
class Watch:
    name: str
    text: str | None  # the query's words; None for an image watch
    modality: str | None = None  # only memories of this modality (None: any)
    source: str | None = None  # only this source ("cam0" also matches "<agent>.cam0")
    threshold: float | None = None  # None: the per-space defaults above
    cooldown: float = DEFAULT_COOLDOWN_S
    created: float = 0.0  # unix s
    image: bool = False  # the query was an image: `probes` are stored, they cannot be recomputed
    probes: dict[str, Any] = field(default_factory=dict)  # space -> unit float32 vector (numpy)

    def public(self) -> dict[str, Any]:
        """What watch_list and watch_add answer (no vectors)."""
        return {
            "name": self.name,
            "text": self.text,
            "image": self.image,
            "modality": self.modality,
            "source": self.source,
            "threshold": self.threshold,
            "cooldown": self.cooldown,
            "created": self.created,
            "spaces": sorted(self.probes),
        }

    def wants(self, modality: str, source: str) -> bool:
        if self.modality is not None and modality != self.modality:
            return False
        return self.source is None or source == self.source or source.rpartition(".")[2] == self.source


def _opt_str(body: dict, key: str) -> str | None:
    v = body.get(key)
    if v is None or v == "":
        return None
    if not isinstance(v, str):
        raise WatchError(f"{key} must be a string or null")
    return v


def _number(body: dict, key: str, lo: float, hi: float, default: float | None) -> float | None:
    v = body.get(key)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not lo <= v <= hi:
        raise WatchError(f"{key} must be a number from {lo:g} to {hi:g}")
    return float(v)


def check_name(v: Any) -> str:
    if not isinstance(v, str) or not NAME.fullmatch(v):
        raise WatchError("name must be 1-64 characters of A-Z a-z 0-9 _ - (it becomes the topic match.<name>)")
    return v


def parse(body: dict, created: float) -> Watch:
    """A watch from a watch_add body or a file entry (no probes yet); WatchError names the bad field."""
    name = check_name(body.get("name"))
    text = _opt_str(body, "text")
    image = bool(body.get("image")) or body.get("image_b64") is not None
    if text is not None and (image or len(text) > MAX_TEXT):
        raise WatchError(f"text is at most {MAX_TEXT} characters, and a watch has text or an image, not both")
    if text is not None and not text.strip():
        raise WatchError("text is empty")
    if text is None and not image:
        raise WatchError("a watch needs text (what to look for) or an image")
    modality = _opt_str(body, "modality")
    if modality is not None and modality not in MODALITIES:
        raise WatchError(f"modality must be one of {', '.join(MODALITIES)} (or null: any)")
    threshold = _number(body, "threshold", -1.0, 1.0, None)
    cooldown = _number(body, "cooldown", 0.0, MAX_COOLDOWN_S, DEFAULT_COOLDOWN_S)
    assert cooldown is not None
    return Watch(name, text, modality, _opt_str(body, "source"), threshold, cooldown, created, image)


def default_threshold(space: str, modality: str, text_space: str | None, image: bool = False) -> float:
    """The threshold for a probe in `space` against a memory of `modality` (see the module docstring)."""
    if image:
        return IMAGE_THRESHOLD
    if space == text_space:
        return TEXT_THRESHOLD if modality == "text" else CONSE_THRESHOLD
    return OTHER_THRESHOLD
