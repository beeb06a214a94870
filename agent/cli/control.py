"""CLI side of the control endpoint: `sensorium pause/resume` and the human `sensorium status` table.

Kept apart from cli.py so the command table there stays short; these only talk to a running daemon
through sinks.client (no openvino import).
"""

from __future__ import annotations

import datetime as dt
import sys

from agent.status import MemoryStatus, SourceStatus, Status
from sinks.bus.keys import ClientKeys
from sinks.client import QueryError, Rejected, request


def _clock(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%H:%M:%S")


def _span(seconds: float) -> str:
    """900 → '15m', as the user most likely typed it."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def _ask(endpoint: str, body: dict, timeout: float, keys: ClientKeys | None = None) -> dict | int:
    """The reply, or an exit code: 2 when the daemon refused the request, 1 when it did not answer."""
    try:
        return request(endpoint, body, timeout=timeout, keys=keys)
    except Rejected as e:
        print(f"sensorium: {e}", file=sys.stderr)
        return 2
    except QueryError as e:
        print(f"sensorium: {e}", file=sys.stderr)
        return 1


def pause(
    endpoint: str, source: str | None, seconds: float | None, timeout: float, keys: ClientKeys | None = None
) -> int:
    reply = _ask(endpoint, {"op": "pause", "source": source, "for": seconds}, timeout, keys)
    if isinstance(reply, int):
        return reply
    until = "until resumed" if reply["until"] is None else f"for {_span(seconds)}, until {_clock(reply['until'])}"
    print(f"paused {', '.join(reply['paused'])} {until}")
    for name, state in reply["states"].items():
        if state != "paused":  # ended/stopped: nothing to pause; otherwise a slow device is still letting go
            print(f"  {name} is {state}")
    return 0


def resume(endpoint: str, source: str | None, timeout: float, keys: ClientKeys | None = None) -> int:
    reply = _ask(endpoint, {"op": "resume", "source": source}, timeout, keys)
    if isinstance(reply, int):
        return reply
    print(f"resumed {', '.join(reply['resumed'])}")
    return 0


def _num(v: float | None, fmt: str = ".1f") -> str:
    return "-" if v is None else format(v, fmt)


def _state(src: SourceStatus) -> str:
    return f"{src.state} until {_clock(src.paused_until)}" if src.paused_until else src.state


def _table(header: list[str], rows: list[list[str]], left: tuple[int, ...] = (0, 1)) -> list[str]:
    """Text columns (`left`) left-aligned, numbers right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(r: list[str]) -> str:
        cells = [c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        return "  ".join(cells).rstrip()

    return [line(header), *map(line, rows)]


def format_status(st: Status) -> str:
    """A compact view of the status: per source state, rates and errors; per encoder latency."""
    rows = []
    for name, s in st.sources.items():
        rate = [_num(s.fps.get(k)) for k in ("in", "kept", "dropped")]
        rows.append([name, _state(s), *rate, str(s.queue), str(s.errors), s.last_error or "-"])
    head = ["source", "state", "in/s", "kept/s", "drop/s", "queue", "errors", "last error"]
    lines = [f"up {st.uptime_s:g}s; rates over the last ~10 s", "", *_table(head, rows, (0, 1, 7)), ""]
    enc_rows = []
    for m, e in st.encoders.items():
        p50, p95 = _num(e.infer_p50_ms), _num(e.infer_p95_ms)
        enc_rows.append([m, st.device.get(m, "?"), str(e.completed), p50, p95, str(e.errors)])
    lines += _table(["encoder", "device", "done", "p50 ms", "p95 ms", "errors"], enc_rows)
    lat, pub, mem = st.latency_ms, st.publisher, st.memory
    lines += [
        "",
        f"capture→sinks p50 {_num(lat.p50)} ms, p95 {_num(lat.p95)} ms; "
        f"published {pub.sent} (dropped {pub.dropped}); stored {mem.stored} (failed {mem.failed})",
        f"store lag {_num(mem.store_lag_s)} s; spool {mem.spool_rows} rows "
        f"({mem.spool_bytes} bytes); {_store_process(mem)}; metrics {st.metrics or 'off'}",
        _disk(mem),
        _text(st),
        _speech(st),
        _watch(st),
        _health(st),
        _moments(st),
        _web(st),
    ]
    return "\n".join(lines)


def _watch(st: Status) -> str:
    w = st.watch
    return f"watches {w.watches}: fired {w.fired}, suppressed by cooldown {w.suppressed}, errors {w.errors}"


def _health(st: Status) -> str:
    """One line: every encoder stream's health; the bad ones with their counts."""
    if not st.health:
        return "encoder health: no vectors yet"
    parts = []
    for key, h in st.health.items():
        if h.state == "ok":
            parts.append(f"{key} ok")
        else:
            spread = "-" if h.spread is None else f"{h.spread:.3f}"
            parts.append(f"{key} {h.state.upper()} (nan {h.nan}, identical {h.identical}, spread {spread})")
    dropped = f" ({st.health_dropped} results not judged: queue full)" if st.health_dropped else ""
    return "encoder health: " + "; ".join(parts) + dropped


def _text(st: Status) -> str:
    t = st.text
    if t.state != "on":
        return f"screen text {t.state}"
    return (
        f"screen text on {t.device or '?'}: read {t.read} frames (skipped {t.skipped}, unchanged {t.unchanged}), "
        f"{t.memories} memories, {t.redacted} redacted, errors {t.errors}; p50 {_num(t.p50_ms)} ms"
    )


def _speech(st: Status) -> str:
    s = st.speech
    if s.state != "on":
        return f"speech {s.state}"
    gated = sum(s.gated.values())
    return (
        f"speech on {s.device or '?'} ({s.model or '?'}): {s.transcribed} utterances transcribed "
        f"({s.audio_s:g} s; dropped {s.dropped}, gated {gated}), {s.memories} memories, errors {s.errors}; "
        f"p50 {_num(s.p50_ms)} ms, end→memory p50 {_num(s.lag_p50_ms)} ms"
    )


def _moments(st: Status) -> str:
    m = st.moments
    if m.state != "on":
        return f"moments {m.state}"
    return (
        f"moments every {m.interval_s:g} s: {m.emitted} emitted, {m.pending} open, {m.late} late vectors left out, "
        f"{m.forgotten} dropped by forget"
    )


def _disk(mem: MemoryStatus) -> str:
    used = "not measured yet" if mem.disk_bytes is None else f"{mem.disk_bytes / 1e6:.1f} MB"
    budget = f"of {mem.budget_bytes / 1e6:.0f} MB" if mem.budget_bytes else "(no size cap)"
    keep = f"kept {mem.retention_days:g} days" if mem.retention_days else "kept forever"
    return f"storage {used} {budget}, {keep}"


def _web(st: Status) -> str:
    w = st.web
    if w.url is None:
        return "web page off"
    return (
        f"web: {w.requests} API requests, {w.refused} refused (token, origin), {w.bad} bad; "
        f"{w.clients} live clients ({w.dropped} events dropped for slow ones)"
    )


def _store_process(mem: MemoryStatus) -> str:
    pid, starts = mem.store_process, mem.store_starts
    if pid is None and not starts:
        return "store in the daemon"
    return f"store process {pid or 'down'}" + (f" (started {starts}×)" if starts > 1 else "")
