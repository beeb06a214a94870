"""Scoring an eval run: Recall@1/5/10 and MRR per kind of question, the no-answer rate, and the misses.

A question's rank is that of the first hit captured inside one of its truth intervals (from the truth
source when one is given); no such hit in the top k is a miss (rank None, reciprocal rank 0). A `none`
question is right when the reply is empty ("no memories match"); an answerable question with an empty reply
is a false "no match" (and a miss).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from agent.eval.questions import KINDS, Question

AT = (1, 5, 10)


def same_source(hit_source: str, want: str) -> bool:
    """'screen0' also names '<agent>.screen0' (agents sharing a store prefix their sources)."""
    return hit_source == want or hit_source.rpartition(".")[2] == want


def rank(q: Question, hits: Sequence[dict], slack: float = 0.0) -> int | None:
    """1-based rank of the first right hit, None when none of `hits` is right: captured inside a truth interval
    (± slack), or for a memory with a span (a moment: extra.end) overlapping one."""
    for i, h in enumerate(hits, start=1):
        if q.truth_source is not None and not same_source(str(h.get("source", "")), q.truth_source):
            continue
        start = float(h["ts"])
        end = _end(h, start)
        if any(iv.start - slack <= end and start <= iv.end + slack for iv in q.truth):
            return i
    return None


def _end(h: dict, start: float) -> float:
    """Where a hit's span ends: a moment (a slice of every sense) has extra.end; any other memory is an instant."""
    try:
        end = float((h.get("extra") or {}).get("end", start))
    except (TypeError, ValueError):
        return start
    return end if start <= end <= start + 3600 else start


def _score(h: dict) -> float:
    """A hit's cosine; 0.0 when it has none (found by its words only, or listed by `around` for its time)."""
    v = h.get("score")
    return float(v) if isinstance(v, (int, float)) else 0.0


def brief(h: dict) -> dict[str, Any]:
    """What a miss report shows of a hit: when, where, how close, and what it was."""
    what = h.get("snippet") or h.get("text") or ", ".join((h.get("labels") or [])[:3])
    return {
        "ts": round(float(h["ts"]), 3),
        "source": h.get("source"),
        "modality": h.get("modality"),
        "score": round(_score(h), 3),
        "what": (what or "")[:100],
    }


@dataclass
class Outcome:
    """One question's result. `skipped` says why it was not asked (e.g. the daemon has no around op)."""

    id: str
    kind: str
    query: str
    rank: int | None = None
    empty: bool = False  # the reply was "no memories match"
    top: list[dict[str, Any]] = field(default_factory=list)  # the first three hits, briefly
    expected: list[list[float]] = field(default_factory=list)
    truth_source: str | None = None
    below: int = 0  # hits the daemon's threshold dropped
    best: float | None = None  # best cosine among the returned hits (calibration)
    right_score: float | None = None  # cosine of the first right hit
    skipped: str | None = None
    error: str | None = None

    @property
    def answerable(self) -> bool:
        return self.kind != "none"

    @property
    def ok(self) -> bool:
        if self.answerable:
            return self.rank is not None and self.rank <= 5
        return self.empty


def outcome(q: Question, hits: Sequence[dict], slack: float = 0.0, below: int = 0) -> Outcome:
    r = rank(q, hits, slack) if q.answerable else None
    return Outcome(
        q.id, q.kind, q.query, rank=r, empty=not hits, top=[brief(h) for h in hits[:3]],
        expected=[[i.start, i.end] for i in q.truth], truth_source=q.truth_source, below=below,
        best=max((_score(h) for h in hits), default=None),
        right_score=_score(hits[r - 1]) if r else None,
    )  # fmt: skip


@dataclass
class Row:
    kind: str
    n: int
    recall: dict[int, float]
    mrr: float
    no_match: float  # none: share answered "no memories match"; answerable: share wrongly answered so


def _row(kind: str, outs: Sequence[Outcome]) -> Row:
    n = len(outs)
    if kind == "none":
        return Row(kind, n, {}, 0.0, sum(o.empty for o in outs) / n if n else 0.0)
    ranks = [o.rank for o in outs]
    recall = {a: sum(r is not None and r <= a for r in ranks) / n if n else 0.0 for a in AT}
    mrr = sum(1.0 / r for r in ranks if r) / n if n else 0.0
    return Row(kind, n, recall, mrr, sum(o.empty for o in outs) / n if n else 0.0)


@dataclass
class Report:
    rows: list[Row]  # per kind asked, then "overall" (answerable questions)
    outcomes: list[Outcome]

    def row(self, kind: str) -> Row | None:
        return next((r for r in self.rows if r.kind == kind), None)

    @property
    def misses(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.skipped and not o.error and not o.ok]

    def to_json(self) -> dict[str, Any]:
        def row(r: Row) -> dict[str, Any]:
            d = {"kind": r.kind, "n": r.n}
            if r.kind == "none":
                return d | {"no_answer_rate": round(r.no_match, 4)}
            d |= {f"recall@{a}": round(v, 4) for a, v in r.recall.items()}
            return d | {"mrr": round(r.mrr, 4), "false_no_match": round(r.no_match, 4)}

        return {
            "rows": [row(r) for r in self.rows],
            "questions": [asdict(o) for o in self.outcomes],
            "misses": [o.id for o in self.misses],
            "skipped": {o.id: o.skipped for o in self.outcomes if o.skipped},
            "errors": {o.id: o.error for o in self.outcomes if o.error},
        }


def summarise(outcomes: Sequence[Outcome]) -> Report:
    asked = [o for o in outcomes if not o.skipped and not o.error]
    rows = [_row(k, [o for o in asked if o.kind == k]) for k in KINDS if any(o.kind == k for o in asked)]
    rows.append(_row("overall", [o for o in asked if o.answerable]))
    return Report(rows, list(outcomes))


def table(rep: Report, origin: float = 0.0) -> str:
    """The report as text: one line per kind, then the misses with what came back instead (times in seconds
    from `origin`: the scenario's start; 0 prints unix seconds)."""
    lines = [f"{'kind':<14} {'n':>3}  {'R@1':>5} {'R@5':>5} {'R@10':>5} {'MRR':>5}  no-match"]
    for r in rep.rows:
        if r.kind == "none":
            lines.append(f"{r.kind:<14} {r.n:>3}  {'':>5} {'':>5} {'':>5} {'':>5}  {r.no_match:.2f} (right)")
            continue
        rc = r.recall
        nm = f"{r.no_match:.2f} (wrong)" if r.no_match else "0"
        lines.append(f"{r.kind:<14} {r.n:>3}  {rc[1]:>5.2f} {rc[5]:>5.2f} {rc[10]:>5.2f} {r.mrr:>5.2f}  {nm}")
    skipped = [o for o in rep.outcomes if o.skipped]
    for o in skipped:
        lines.append(f"skipped {o.id}: {o.skipped}")
    for o in rep.outcomes:
        if o.error:
            lines.append(f"error {o.id}: {o.error}")
    if rep.misses:
        lines.append("\nmisses (rank > 5, or an answer where none was right):")
    for o in rep.misses:
        got = "no memories match" if o.empty else f"rank {o.rank}" if o.rank else "not in the top k"
        spans = ", ".join(f"{a - origin:.0f}-{b - origin:.0f}" for a, b in o.expected)
        want = spans if o.answerable else "no match"
        lines.append(f"  {o.id} [{o.kind}] {o.query!r}: {got}; expected {want}")
        for h in o.top:
            lines.append(f"      {h['ts'] - origin:.1f} {h['source']} {h['modality']} {h['score']:.3f} {h['what']}")
    return "\n".join(lines)
