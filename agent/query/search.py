"""Queries over memory: by text, by an image (its bytes: agent/query/images.py) or "more like" a stored
memory; fused across spaces.

A query is answered in every embedding space that can encode its input (MiniLM text, CLIP text when
installed; the image model's spaces for an image; every space a stored memory has a vector in), and the
per-space rankings are fused by reciprocal rank (RRF, k=60): scores of different models are not
comparable, ranks are. Each fused hit keeps its best cosine score and lists the spaces it was found in.
A text query is also looked up by its words in the keyword index of text memories (screen text, speech;
sinks/memory/keywords.py), whose bm25 ranking counts as one more ranking, space "keywords": so "invoice
4711" finds the memory that reads "Invoice #4711" first even where MiniLM ranks it low. Every ranking is
read RRF_DEPTH deep, so that a memory low in one ranking still adds its rank to another's. Hits of text
memories carry `text` (their words), `frame` (the frame they were read from) and `snippet` (a few words
around the query's, those in [brackets]). Text queries drop hits under the no-answer threshold ([query.min_score],
see Searcher) and say so in the reply ("threshold", "below"), so a question nothing answers gets no answer.
Also the "backfill" op: stored rows in a time window, oldest first, with their vectors.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from agent.moments import MODALITY as MOMENT
from agent.query.images import BadRequest, ImageQueryEncoder, encode_image, has_image, image_of
from sinks.bus import wire
from sinks.memory import Memory
from sinks.memory.keywords import PREFIX_MIN, TOKEN, words
from sinks.memory.rows import KEYWORDS, Hit

MAX_K = 1000
MAX_TEXT = 2000
RRF_K = 60
RRF_DEPTH = 50  # hits read from each ranking before fusing (at least k)
SNIPPET_WORDS = 12
MAX_BACKFILL = 1000  # rows per backfill reply


class QueryEncoder(Protocol):
    """Text to a unit vector in one space (MiniLM's TextEncoder, a CLIP text tower)."""

    space: str

    def encode(self, text: str) -> np.ndarray: ...


def opt_number(body: dict, key: str) -> float | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise BadRequest(f"{key} must be a number (unix seconds) or null")
    return float(v)


def opt_str(body: dict, key: str) -> str | None:
    v = body.get(key)
    if v is None or v == "":
        return None
    if not isinstance(v, str):
        raise BadRequest(f"{key} must be a string or null")
    return v


def int_in(body: dict, key: str, default: int, hi: int) -> int:
    v = body.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= hi:
        raise BadRequest(f"{key} must be an integer from 1 to {hi}")
    return v


@dataclass(frozen=True)
class Window:
    """Filters every query op shares."""

    since: float | None
    until: float | None
    modality: str | None
    source: str | None

    @classmethod
    def parse(cls, body: dict) -> Window:
        since, until = opt_number(body, "since"), opt_number(body, "until")
        if since is not None and until is not None and since > until:
            raise BadRequest("since is after until")
        return cls(since, until, opt_str(body, "modality"), opt_str(body, "source"))


def fuse(rankings: Sequence[Sequence[Hit]], k: int) -> list[dict[str, Any]]:
    """Reciprocal-rank fusion of per-space rankings: sum of 1/(60 + rank) per memory id, best first.

    A hit keeps the fields of its best-scoring space (`space`, `score`) and lists every space it was in.
    The keyword ranking (space "keywords") has no cosine score: its hits take a vector space's score when
    they have one, else keep 0.0, and give their snippet to the fused hit.
    """
    fused: dict[str, dict[str, Any]] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            cur = fused.get(hit.id)
            if cur is None:
                cur = fused[hit.id] = {**asdict(hit), "spaces": [], "rrf": 0.0}
            else:
                if hit.space != KEYWORDS and (cur["space"] == KEYWORDS or hit.score > cur["score"]):
                    cur.update(space=hit.space, score=hit.score)
                for key in ("text", "frame", "snippet", "thumb", "extra"):
                    cur[key] = cur[key] or getattr(hit, key)
            if hit.space not in cur["spaces"]:
                cur["spaces"].append(hit.space)
            cur["rrf"] += 1.0 / (RRF_K + rank)
    out = sorted(fused.values(), key=lambda h: (-h["rrf"], -h["score"], h["id"]))[:k]
    for h in out:
        h["rrf"] = round(h["rrf"], 6)
    return out


def _fold(word: str) -> str:
    """Case and accents away, as the keyword index's tokenizer does ("Müller" → "muller")."""
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c)).casefold()


def _matches(word: str, q: str) -> bool:
    """`word` (folded) is the query word `q`, or starts with it when `q` is PREFIX_MIN letters or more."""
    return word == q or (len(q) >= PREFIX_MIN and not any(c.isdigit() for c in q) and word.startswith(q))


def _matcher(query: str) -> Callable[[str], bool]:
    wanted = [_fold(w) for w in words(query)]
    return lambda word: any(_matches(_fold(word), q) for q in wanted)


def all_words(text: str, query: str) -> bool:
    """Every searchable word of `query` is in `text` (as the keyword index matches them)."""
    found = {_fold(m.group()) for m in TOKEN.finditer(text)}
    return all(any(_matches(w, q) for w in found) for q in (_fold(w) for w in words(query)))


def snippet(text: str, query: str, n: int = SNIPPET_WORDS) -> str:
    """About `n` words of `text` from just before the first word of `query` in it, those words in [brackets]
    (a word of PREFIX_MIN letters matches as a prefix, as in the keyword index); the start if none is."""
    hit = _matcher(query)
    found = list(TOKEN.finditer(text))
    if not found:
        return text[:80]
    first = next((i for i, m in enumerate(found) if hit(m.group())), 0)
    lo = max(0, first - 2)
    hi = min(len(found), lo + n)
    start = 0 if lo == 0 else found[lo].start()
    end = len(text) if hi == len(found) else found[hi - 1].end()
    body = re.sub(TOKEN, lambda m: f"[{m.group()}]" if hit(m.group()) else m.group(), text[start:end])
    return ("…" if start else "") + " ".join(body.split()) + ("…" if end < len(text) else "")


class Searcher:
    """Runs query and backfill requests against `memory` with the daemon's encoders.

    `min_score`: the no-answer threshold of text queries, per kind of memory (modality) in the text encoder's
    space, whose cosines it was calibrated on (bench/eval.py --calibrate). A hit is kept when its cosine in that
    space reaches its modality's threshold, or it was found in another space (no calibrated threshold there),
    or by the keyword index with every word of the query in its text. So "a giraffe" gets "no memories match"
    rather than the least unlike frame. A request with "threshold": false gets every hit.
    """

    def __init__(
        self,
        memory: Memory,
        texts: Sequence[QueryEncoder],
        image: ImageQueryEncoder | None,
        min_score: Mapping[str, float] | None = None,
    ) -> None:
        self.memory = memory
        self.texts = list(texts)
        self.image = image
        self.min_score = dict(min_score or {})

    def query(self, body: dict) -> list[dict[str, Any]]:
        return self.answer(body)["results"]

    def answer(self, body: dict) -> dict[str, Any]:
        """The query op's reply: "results", and for text queries "threshold" (per modality, null when off)
        and "below" (hits the threshold dropped from what the results would have shown)."""
        given = [key for key in ("text", "like") if body.get(key) is not None] + ["image"] * has_image(body)
        if len(given) != 1:
            raise BadRequest("give exactly one of text, an image (image_b64, or image: true + its bytes) or like")
        k, win = int_in(body, "k", 5, MAX_K), Window.parse(body)
        use = body.get("threshold", True)
        if not isinstance(use, bool):
            raise BadRequest("threshold must be true (the default: drop hits below query.min_score) or false")
        kind = given[0]
        if kind == "text":
            probes = self._text(body["text"])
        elif kind == "image":
            probes = self._image(body)
        else:
            probes = self._like(body["like"])
        exclude = body["like"] if kind == "like" else None  # more like this, not this again
        n = max(k, RRF_DEPTH) + (exclude is not None)
        rankings = []
        for space, vec in probes:
            hits = self.memory.search(space, vec, n, win.since, win.until, win.modality, win.source)
            # moments (agent/moments.py) summarise the memories around them: listed only when asked for, so a
            # plain query answers with what was captured, not with a slice's echo of it
            rankings.append([h for h in hits if h.id != exclude and (win.modality or h.modality != MOMENT)])
        if kind == "text":
            rankings.append(self.memory.find_words(body["text"], n, win.since, win.until, win.modality, win.source))
        gate = kind == "text" and use and any(v > 0 for v in self.min_score.values())
        if not gate:
            out, below = fuse(rankings, k), 0
        else:
            keep = self._passing(rankings, body["text"])
            out, below = [], 0
            for h in fuse(rankings, MAX_K):
                if len(out) == k:
                    break
                if h["id"] in keep:
                    out.append(h)
                else:
                    below += 1
        if kind == "text":
            for h in out:
                if h["text"] and not h["snippet"]:  # found by meaning only: show where its words are
                    h["snippet"] = snippet(h["text"], body["text"])
            return {"results": out, "threshold": self.min_score if gate else None, "below": below}
        return {"results": out}

    def _passing(self, rankings: Sequence[Sequence[Hit]], text: str) -> set[str]:
        """Ids of the hits that clear the no-answer threshold (see the class docstring)."""
        space = self.texts[0].space
        keep: set[str] = set()
        for ranking in rankings:
            for h in ranking:
                if h.space == KEYWORDS:
                    ok = bool(h.text) and all_words(h.text or "", text)
                elif h.space == space:
                    ok = h.score >= self.min_score.get(h.modality, 0.0)
                else:
                    ok = True
                if ok:
                    keep.add(h.id)
        return keep

    def _text(self, text: Any) -> list[tuple[str, np.ndarray]]:
        if not isinstance(text, str) or not text.strip() or len(text) > MAX_TEXT:
            raise BadRequest(f"text must be a non-empty string of at most {MAX_TEXT} characters")
        if not self.texts:
            raise BadRequest("this daemon has no text encoder")
        return [(enc.space, enc.encode(text)) for enc in self.texts]

    def _image(self, body: dict) -> list[tuple[str, np.ndarray]]:
        rgb = image_of(body)
        if rgb is None:  # not reached: query() calls this when has_image(body)
            raise BadRequest("no image in the request")
        return [(e.space, e.vector) for e in encode_image(self.image, rgb)]

    def _like(self, id_: Any) -> list[tuple[str, np.ndarray]]:
        if not isinstance(id_, str) or not id_ or len(id_) > MAX_TEXT:
            raise BadRequest("like must be a memory id (a string, as in query results and bus headers)")
        vectors = self.memory.vectors(id_)
        if not vectors:
            raise BadRequest(f"no memory with id {id_!r}")
        return list(vectors.items())

    def backfill(self, body: dict) -> tuple[dict[str, Any], list[np.ndarray]]:
        """Stored rows since `since`, oldest first: bus-style headers (no seq) and their vectors."""
        if body.get("since") is None:
            raise BadRequest("backfill needs since (unix seconds)")
        win, limit = Window.parse(body), int_in(body, "limit", MAX_BACKFILL, MAX_BACKFILL)
        rows = self.memory.range(win.since, win.until, win.modality, win.source, limit)
        headers, vectors = [], []
        for hit, vec in rows:
            vec = np.ascontiguousarray(vec, dtype=wire.DTYPE)
            dim = int(vec.shape[0])
            h = wire.header(
                hit.id, hit.ts, hit.source, hit.modality, hit.space, dim, hit.labels, hit.thumb,
                frame=hit.frame, text=hit.text, extra=hit.extra,
            )  # fmt: skip  # the query endpoint is local or CURVE (check_bind): the words may travel
            headers.append(h)
            vectors.append(vec)
        return {"rows": headers, "more": len(rows) == limit}, vectors
