"""`sensorium around <memory id | time>`: what every sense captured near a moment, and (`--elsewhere`) the other
times that looked, sounded or read most like it. Built on sinks.client.around like any other tool."""

from __future__ import annotations

import argparse
import datetime as dt
import json

from agent import config as config_mod
from agent.cli.args import load_config as _load
from agent.cli.args import parse_duration, parse_time
from agent.cli.bus import _clock, ask, client_keys, one_line

MAX_WINDOW = 3600.0  # the daemon's limit (agent/query/around.py), checked here for a clear usage error


def window(text: str) -> float:
    seconds = parse_duration(text)
    if seconds > MAX_WINDOW:
        raise argparse.ArgumentTypeError(f"{text!r} is more than {MAX_WINDOW:g} s (1h) each side")
    return seconds


def anchor(text: str) -> tuple[str | None, float | None]:
    """(memory id, None) or (None, unix seconds): a time is what parse_time reads (14:03, ISO, 10m ago)."""
    try:
        return None, parse_time(text)
    except argparse.ArgumentTypeError:
        return text, None


def _signed(seconds: float) -> str:
    a = abs(seconds)
    body = f"{a:.1f} s" if a < 60 else f"{a / 60:.1f} min" if a < 3600 else f"{a / 3600:.1f} h"
    return ("+" if seconds >= 0 else "-") + body


def _what(h: dict) -> str:
    """A memory on one line: its words (screen text, speech), its labels, or the senses a moment fused."""
    if h.get("text"):
        return one_line(h["text"], 70)
    senses = (h.get("extra") or {}).get("senses") if h.get("modality") == "moment" else None
    if senses:
        return ("of " + senses.replace(",", ", "))[:70]
    return ", ".join(h.get("labels") or [])[:70]


def format_reply(reply: dict) -> str:
    at = dt.datetime.fromtimestamp(reply["at"]).isoformat(" ", "milliseconds")
    lines = [f"around {at} (±{reply['window']:g} s)" + (f", memory {reply['id']}" if reply.get("id") else "")]
    if not reply["senses"]:
        lines.append("  no other memories in the window")
    for g in reply["senses"]:
        lines.append(g["sense"])
        for h in g["hits"]:
            lines.append(f"  {_signed(h['dt']):>9}  {_clock(h['ts'])}  {_what(h):<70}  {h['thumb'] or ''}".rstrip())
    if "elsewhere" in reply:
        lines.append("elsewhere")
        if not reply["elsewhere"]:
            lines.append("  nothing like it at another time")
        for t in reply["elsewhere"]:
            when = _clock(t["ts"], "%Y-%m-%d %H:%M:%S")
            senses = ", ".join(t["senses"])
            lines.append(f"  {when}  {t['fused']:.3f}  {senses:<30}  {_what(t):<50}  {t['thumb'] or ''}".rstrip())
    return "\n".join(lines)


def cmd_around(args: argparse.Namespace) -> int:
    from sinks.client import around

    cfg = _load(args)
    id_, at = anchor(args.moment)
    reply = ask(
        lambda: around(
            config_mod.query_endpoint(cfg),
            id=id_,
            at=at,
            window=args.window,
            k=args.k,
            elsewhere=args.elsewhere,
            timeout=args.timeout,
            keys=client_keys(cfg, cfg.query.curve),
        )
    )
    print(json.dumps(reply, indent=2) if args.json else format_reply(reply))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    a = sub.add_parser(
        "around",
        help="what every sense captured near a memory or a time; --elsewhere: other times like it",
        description="Screen, camera, sound, screen text and speech near a moment, grouped by sense, nearest first.",
    )
    a.add_argument("moment", help="a memory id (from query, tail or a bus header) or a time: 14:03, an ISO time, 10m")
    a.add_argument("--window", type=window, default=30.0, help="how far either side: 30s (default), 5m, at most 1h")
    a.add_argument("--elsewhere", action="store_true", help="also the other times most like this moment")
    a.add_argument("-k", type=int, default=10, help="memories per sense, and elsewhere times (1-100)")
    a.add_argument("--json", action="store_true", help="the reply as JSON, for scripts")
    a.add_argument("--timeout", type=float, default=30.0)
    a.set_defaults(fn=cmd_around)
