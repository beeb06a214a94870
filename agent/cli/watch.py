"""`sensorium watch add|list|remove`: standing queries in the running daemon (ops watch_add/_list/_remove).

A watch compares every new embedding with its query and publishes `match.<NAME>` on the bus on a match;
read them with `sensorium tail match.` (or `match.NAME`), or any bus subscriber.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys

from agent import config as config_mod
from agent.cli.args import load_config as _load
from agent.cli.args import parse_duration
from agent.cli.bus import client_keys, read_image_file
from sinks.bus.keys import KeysError

MODALITIES = ("image", "audio", "text", "moment")


def _ask(args: argparse.Namespace, body: dict, blob: bytes | None = None) -> dict | None:
    from sinks.client import QueryError, request_parts

    cfg = _load(args)
    try:
        keys = client_keys(cfg, cfg.query.curve)
        return request_parts(config_mod.query_endpoint(cfg), body, timeout=args.timeout, keys=keys, blob=blob)[0]
    except (QueryError, KeysError) as e:
        print(f"sensorium: {e}", file=sys.stderr)
        return None


def _cooldown(text: str) -> float:
    """A duration (60s, 5m) or 0: every matching memory fires."""
    return 0.0 if text.strip() in ("0", "0s") else parse_duration(text)


def _describe(w: dict) -> str:
    what = repr(w["text"]) if w.get("text") is not None else "<image>"
    only = " ".join(f"{k}={w[k]}" for k in ("modality", "source") if w.get(k))
    limit = "default" if w.get("threshold") is None else f"{w['threshold']:g}"
    return f"{w['name']:<16} {what}  {only + '  ' if only else ''}threshold {limit}, cooldown {w['cooldown']:g}s"


def cmd_add(args: argparse.Namespace) -> int:
    body: dict = {"op": "watch_add", "name": args.name, "text": args.text, "modality": args.modality}
    body["source"], body["threshold"] = args.source, args.threshold
    if args.cooldown is not None:
        body["cooldown"] = args.cooldown
    blob = None
    if args.image:
        blob = read_image_file(args.image)  # bytes: the daemon opens no file a client names
        if blob is None:
            return 2
        body["image"] = True
    reply = _ask(args, body, blob)
    if reply is None:
        return 1
    if args.json:
        print(json.dumps(reply["watch"]))
        return 0
    print(("replaced " if reply["replaced"] else "added ") + _describe(reply["watch"]))
    print(f"matches are published on match.{args.name}: sensorium tail match.{args.name}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    reply = _ask(args, {"op": "watch_list"})
    if reply is None:
        return 1
    if args.json:
        print(json.dumps(reply["watches"], indent=2))
        return 0
    if not reply["watches"]:
        print("no watches (sensorium watch add NAME TEXT)")
    for w in reply["watches"]:
        last = w.get("last_fired")
        when = dt.datetime.fromtimestamp(last).isoformat(" ", "seconds") if last else "never"
        print(f"{_describe(w)}; fired {w['fired']} (last {when}), suppressed {w['suppressed']}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    reply = _ask(args, {"op": "watch_remove", "name": args.name})
    if reply is None:
        return 1
    print(f"removed {reply['removed']}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    w = sub.add_parser(
        "watch",
        help="standing queries: publish match.<NAME> on the bus when something matching is seen or heard",
        description="Standing queries in the running daemon. Every new embedding is compared with each watch's "
        "query; a match publishes match.<NAME> (the memory's header, thumbnail and score) on the bus "
        "(`sensorium tail match.`). A cooldown (default 60 s) lets one long event fire once: no new match "
        "message until the watch saw no match for that long. Watches are kept in the data dir across restarts.",
    )
    ws = w.add_subparsers(dest="watch_cmd", required=True)
    a = ws.add_parser("add", help="add a watch (replaces one of the same name)")
    a.add_argument("name", help="1-64 of A-Z a-z 0-9 _ -; the bus topic is match.NAME")
    what = a.add_mutually_exclusive_group(required=True)
    what.add_argument("text", nargs="?", help='what to look for, e.g. "a person at the door"')
    what.add_argument("--image", metavar="FILE", help="a photo: frames that look like it (its bytes are sent)")
    a.add_argument("--modality", choices=MODALITIES, help="only memories of this kind (text: screen text, speech)")
    a.add_argument("--source", help="only this source, e.g. cam0")
    a.add_argument(
        "--threshold", type=float, help="cosine score a memory must reach (default per space: 0.55 for images and "
        "sounds, 0.35 for text memories with the MiniLM model, 0.25 for CLIP; 0.65 for an --image watch)",
    )  # fmt: skip
    a.add_argument("--cooldown", type=_cooldown, metavar="DURATION", help="e.g. 60s, 5m, 0 (default 60s)")
    a.add_argument("--json", action="store_true")
    a.add_argument("--timeout", type=float, default=10.0)
    a.set_defaults(fn=cmd_add)
    ls = ws.add_parser("list", help="the watches, with how often each fired")
    ls.add_argument("--json", action="store_true")
    ls.add_argument("--timeout", type=float, default=10.0)
    ls.set_defaults(fn=cmd_list)
    rm = ws.add_parser("remove", help="remove a watch")
    rm.add_argument("name")
    rm.add_argument("--timeout", type=float, default=10.0)
    rm.set_defaults(fn=cmd_remove)
