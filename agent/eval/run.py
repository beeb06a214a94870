"""Asks a running daemon a question set through sinks.client, as any user's tool would, and scores it.

Every question is a `query` op (its text and filters, k = 10); an `around` question asks its anchor query
first, then the `around` op on the top hit, and ranks the memories of the sense it names. A daemon without
the around op skips those questions with the reason (the rest still count).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agent.eval.questions import Question, QuestionSet, SetError
from agent.eval.score import Outcome, Report, outcome, summarise
from sinks.bus.keys import ClientKeys
from sinks.client import QueryError, Rejected, request

K = 10
AROUND_WINDOW_S = 30.0


def _ask(endpoint: str, body: dict, keys: ClientKeys | None, timeout: float) -> dict:
    return request(endpoint, body, timeout=timeout, keys=keys)


def memory_span(endpoint: str, keys: ClientKeys | None = None, timeout: float = 60.0) -> tuple[float, float] | None:
    """(oldest capture time in memory, now), None when memory is empty: truth outside it cannot be found."""
    import time

    rows = _ask(endpoint, {"op": "backfill", "since": 0, "limit": 1}, keys, timeout)["rows"]
    return (float(rows[0]["ts"]), time.time()) if rows else None


def ask(endpoint: str, q: Question, keys: ClientKeys | None = None, timeout: float = 30.0) -> tuple[list[dict], int]:
    """The hits a question gets (best first) and how many the daemon's threshold dropped."""
    body: dict[str, Any] = {"op": "query", "text": q.query, "k": K, "modality": q.modality, "source": q.source}
    reply = _ask(endpoint, body, keys, timeout)
    hits, below = reply["results"], int(reply.get("below", 0))
    if q.kind != "around":
        return hits, below
    if not hits:  # no anchor: nothing around it either
        return [], below
    around = _ask(endpoint, {"op": "around", "id": hits[0]["id"], "window": AROUND_WINDOW_S, "k": K}, keys, timeout)
    want = q.sense or ""
    for group in around.get("senses", []):
        name = group.get("sense", f"{group.get('modality')}:{group.get('source')}")
        mod, _, src = name.partition(":")
        if name == want or (f"{mod}:{src.rpartition('.')[2]}" == want):
            return list(group.get("hits", [])), below
    return [], below


def run(
    endpoint: str,
    qset: QuestionSet,
    keys: ClientKeys | None = None,
    timeout: float = 30.0,
    progress: Callable[[Outcome], object] | None = None,
) -> Report:
    """Every question of `qset` (absolute times) against the daemon at `endpoint`; the scored report."""
    if qset.relative:
        raise SetError(f"{qset.path}: truth times are seconds from a start; give the scenario's start time")
    outcomes: list[Outcome] = []
    no_around: str | None = None
    for q in qset.questions:
        if q.kind == "around" and no_around:
            o = Outcome(q.id, q.kind, q.query, skipped=no_around)
        else:
            try:
                hits, below = ask(endpoint, q, keys, timeout)
                o = outcome(q, hits, qset.slack, below)
            except Rejected as e:
                if q.kind == "around" and "unknown op" in str(e):
                    no_around = "this daemon has no around op (its version predates it)"
                    o = Outcome(q.id, q.kind, q.query, skipped=no_around)
                else:
                    o = Outcome(q.id, q.kind, q.query, error=str(e))
            except QueryError:
                raise  # no daemon: nothing else will work either
        outcomes.append(o)
        if progress is not None:
            progress(o)
    return summarise(outcomes)
