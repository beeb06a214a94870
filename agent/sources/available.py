"""Which configured sources this machine can open, and the start-up table that says so."""

from __future__ import annotations

from collections.abc import Sequence

from . import Source

Row = tuple[str, str, str]  # (source, "ok" | "skipped", detail or reason)


class NoSources(RuntimeError):
    """No configured sensor can be opened on this machine."""


def available(sources: Sequence[Source]) -> tuple[list[Source], list[Row]]:
    """Sources that open, and a (name, status, detail) row for every configured source."""
    ok, table = [], []
    for src in sources:
        reason = src.probe()
        if reason is None:
            ok.append(src)
            table.append((src.name, "ok", src.describe()))
        else:
            table.append((src.name, "skipped", reason))
    return ok, table


def format_table(rows: Sequence[Row]) -> str:
    w = max([len(r[0]) for r in rows] + [6])
    lines = [f"{'source':<{w}}  {'status':<8} detail"]
    lines += [f"{n:<{w}}  {s:<8} {d}" for n, s, d in rows]
    return "\n".join(lines)
