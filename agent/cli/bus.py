"""`sensorium tail`, `query`, `embed` and `keys generate`: the bus and memory from the outside.

Built on sinks.client like any other tool (no openvino import); with CURVE on (bus.curve / query.curve)
they use this machine's client key from the keys dir.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from agent import config as config_mod
from agent.cli.args import load_config as _load
from agent.cli.args import parse_time
from agent.config import Config
from sinks.bus.keys import ClientKeys, KeysError

T = TypeVar("T")


def client_keys(cfg: Config, curve: bool) -> ClientKeys | None:
    return ClientKeys.load(cfg.daemon.keys_dir) if curve else None


def _clock(ts: float, fmt: str = "%H:%M:%S.%f") -> str:
    text = dt.datetime.fromtimestamp(ts).strftime(fmt)
    return text[:-3] if fmt.endswith("%f") else text


def one_line(text: str, n: int = 100) -> str:
    """A text memory on one line, cut at `n` characters."""
    flat = " / ".join(line.strip() for line in text.splitlines() if line.strip())
    return flat if len(flat) <= n else flat[: n - 1] + "…"


def cmd_tail(args: argparse.Namespace) -> int:
    from sinks.client import QueryError, subscribe

    cfg = _load(args)
    try:
        sub = subscribe(
            config_mod.bus_endpoint(cfg),
            args.prefix,
            since=args.since,
            query_endpoint=config_mod.query_endpoint(cfg),
            keys=client_keys(cfg, cfg.bus.curve),
            query_keys=client_keys(cfg, cfg.query.curve),
        )
    except KeysError as e:
        print(f"sensorium: {e}", file=sys.stderr)
        return 2
    n, gaps = 0, 0
    try:
        while args.count is None or n < args.count:
            msg = sub.recv(timeout=args.timeout)
            if msg is None:
                print(f"sensorium: no message within {args.timeout:g}s", file=sys.stderr)
                return 1
            n += 1
            if args.json:
                out = {"topic": msg.topic, **msg.header, "backfill": msg.backfill, "gaps": sub.gaps}
                if msg.vector is not None:
                    out["norm"] = round(float((msg.vector.astype("float64") ** 2).sum() ** 0.5), 5)
                print(json.dumps(out), flush=True)
                continue
            if sub.gaps > gaps:
                print(f"sensorium: missed {sub.gaps - gaps} message(s) (reading too slowly?)", file=sys.stderr)
                gaps = sub.gaps
            t = _clock(msg.header.get("ts", time.time()))
            seq = "stored" if msg.backfill else f"seq={msg.seq}"
            what = one_line(msg.text) if msg.text else ", ".join(msg.labels[:3])  # a text memory: its words
            if "watch" in msg.header:  # match.<NAME>: which memory, how close
                what = f"{msg.id} score={msg.header.get('score')} {what} {msg.thumb or ''}"
            what = what or (f"senses: {msg.extra['senses']}" if "senses" in msg.extra else "")  # a moment
            print(f"{t} {msg.topic:<22} {seq} {msg.space} {what}", flush=True)
    except KeyboardInterrupt:
        pass
    except QueryError as e:  # the backfill could not be read
        print(f"sensorium: backfill: {e}", file=sys.stderr)
        return 1
    finally:
        sub.close()
    return 0


def ask(call: Callable[[], T]) -> T:
    """The daemon's answer to `call`; else the reason on stderr and exit 2 when it refused (bad arguments, keys),
    1 when it did not answer."""
    from sinks.client import QueryError, Rejected

    try:
        return call()
    except (Rejected, KeysError) as e:
        print(f"sensorium: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except QueryError as e:
        print(f"sensorium: {e}", file=sys.stderr)
        raise SystemExit(1) from None


def window(args: argparse.Namespace) -> tuple[float | None, float | None]:
    """(since, until) from --since/--until or --between; a clock-time range that wraps midnight is fixed."""
    if args.between:
        since, until = args.between
        if until < since:  # "--between 23:00 01:00": the range crosses midnight
            until += 86400
        return since, until
    return args.since, args.until


def cmd_query(args: argparse.Namespace) -> int:
    from sinks.client import query

    cfg = _load(args)
    if args.between and args.until is not None:
        print("sensorium: give --between or --since/--until, not both", file=sys.stderr)
        return 2
    since, until = window(args)
    if since is not None and until is not None and since > until:
        print("sensorium: --since is after --until", file=sys.stderr)
        return 2
    image = None
    if args.image:
        image = read_image_file(args.image)  # bytes, not the path: the daemon may be elsewhere and opens no file
        if image is None:
            return 2
    hits = ask(
        lambda: query(
            config_mod.query_endpoint(cfg),
            args.text,
            k=args.k,
            since=since,
            until=until,
            modality=args.modality,
            source=args.source,
            timeout=args.timeout,
            image=image,
            like=args.like,
            keys=client_keys(cfg, cfg.query.curve),
            threshold=not args.all,
        )
    )
    if args.json:
        print(json.dumps(hits, indent=2))
        return 0
    if not hits:
        print(f"no memories match{_why_none(cfg, args, since, until)}")
    for h in hits:
        t = _clock(h["ts"], "%Y-%m-%d %H:%M:%S")
        labels = ", ".join(h["labels"][:3])
        print(f"{t}  {h['source']:<10} {h['score']:.3f}  {labels:<40} {h['thumb'] or ''}  [{' '.join(h['spaces'])}]")
        if h.get("snippet"):  # a text memory: the words around the query's, matched ones in [brackets]
            print(f"    {h['snippet']}")
        elif h["modality"] == "moment":  # a slice of time: until when, from which senses
            x = h.get("extra") or {}
            end = _clock(float(x["end"]), "%H:%M:%S") if x.get("end") else "?"
            print(f"    until {end}, senses: {x.get('senses') or '?'}")
    return 0


def read_image_file(path: str) -> bytes | None:
    """The file's bytes (read here, relative to this shell's cwd); None after printing why it cannot be read."""
    from sinks.client import MAX_IMAGE_BYTES

    p = Path(path).expanduser()
    try:
        if p.stat().st_size > MAX_IMAGE_BYTES:
            print(f"sensorium: {path}: larger than {MAX_IMAGE_BYTES >> 20} MB", file=sys.stderr)
            return None
        return p.read_bytes()
    except OSError as e:
        print(f"sensorium: cannot read {path}: {e.strerror or e}", file=sys.stderr)
        return None


def cmd_embed(args: argparse.Namespace) -> int:
    """The daemon's vector(s) for a text or an image file, one per space."""
    from sinks.client import embed

    cfg = _load(args)
    image = None
    if args.image:
        image = read_image_file(args.image)
        if image is None:
            return 2
    vectors = ask(
        lambda: embed(
            config_mod.query_endpoint(cfg), args.text, image, timeout=args.timeout,
            keys=client_keys(cfg, cfg.query.curve),
        )
    )  # fmt: skip
    if args.json:
        print(json.dumps({space: [round(float(x), 7) for x in v] for space, v in vectors.items()}))
        return 0
    for space, v in vectors.items():
        norm = float((v.astype("float64") ** 2).sum() ** 0.5)
        head = " ".join(f"{x:+.4f}" for x in v[:6])
        print(f"{space:<24} dim={v.shape[0]:<5} norm={norm:.4f}  [{head} …]")
    return 0


def _why_none(cfg: Config, args: argparse.Namespace, since: float | None, until: float | None) -> str:
    """Why a text query found nothing: the closest memory is under the daemon's no-answer threshold (named with
    the value the daemon applied), or the window holds nothing."""
    from sinks.client import QueryError, request

    if args.text is None:
        return ""
    body = {"op": "query", "text": args.text, "k": 1, "since": since, "until": until}
    body |= {"modality": args.modality, "source": args.source}
    try:
        keys = client_keys(cfg, cfg.query.curve)
        endpoint = config_mod.query_endpoint(cfg)
        applied = request(endpoint, body, timeout=args.timeout, keys=keys).get("threshold") or {}
        best = request(endpoint, body | {"threshold": False}, timeout=args.timeout, keys=keys)["results"]
    except QueryError:
        return ""
    if not best:
        return " (nothing in memory in this window)"
    h = best[0]
    limit = applied.get(h["modality"], 0.0)
    return (
        f": the closest, a {h['modality']} memory from {_clock(h['ts'], '%Y-%m-%d %H:%M:%S')}, scores {h['score']:.3f},"
        f" below the no-answer threshold query.min_score.{h['modality']} = {limit:g} (--all shows it)"
    )


def cmd_keys(args: argparse.Namespace) -> int:
    from sinks.bus.keys import generate

    cfg = _load(args)
    try:
        paths = generate(cfg.daemon.keys_dir, force=args.force)
    except FileExistsError as e:
        print(f"sensorium: {e}", file=sys.stderr)
        return 1
    d = cfg.daemon.keys_dir
    print(f"wrote CURVE keys to {d} (0700)")
    for name in ("server", "server_secret", "client", "client_secret"):
        print(f"  {name:<14} {paths[name]}")
    print(f"  authorized     {paths['authorized']}/ (public keys of the clients let in)")
    print(
        "Set curve = true under [bus] and [query] to use them. A client on another machine needs "
        "client.key_secret and server.key in its own keys dir; for a second client, run "
        '`python -c \'import zmq.auth; zmq.auth.create_certificates(".", "laptop2")\'` '
        f"there and copy its laptop2.key into {paths['authorized']}."
    )
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:

    t = sub.add_parser("tail", help="print live messages from the bus")
    t.add_argument("prefix", nargs="?", default="", help="topic prefix, e.g. emb.image")
    t.add_argument("--since", type=parse_time, help="first print what the store holds since then (10m, 14:00, ISO)")
    t.add_argument("--json", action="store_true")
    t.add_argument("-n", "--count", type=int, help="exit after this many messages")
    t.add_argument("--timeout", type=float, default=None, help="exit 1 if nothing arrives for this long (s)")
    t.set_defaults(fn=cmd_tail)

    q = sub.add_parser("query", help="search memory by text, by an image file, or for more like a memory")
    what = q.add_mutually_exclusive_group(required=True)
    what.add_argument("text", nargs="?", help='what to look for, e.g. "a cat"')
    what.add_argument("--image", metavar="FILE", help="an image file (its bytes are sent): memories that look like it")
    what.add_argument("--like", metavar="ID", help="a memory id (from a result or a bus header): more like it")
    when = q.add_mutually_exclusive_group()
    when.add_argument("--since", type=parse_time, help="10m, 2h, 1d (ago), 14:00 or an ISO time")
    when.add_argument("--between", nargs=2, type=parse_time, metavar=("START", "END"), help="e.g. 14:00 15:00")
    q.add_argument("--until", type=parse_time, help="end of the window (with --since)")
    q.add_argument(
        "--modality",
        choices=["image", "audio", "text", "moment"],
        help="text: screen text (and speech) only; moment: slices of time fused from every sense ([moments])",
    )
    q.add_argument("--source", help="e.g. cam0")
    q.add_argument("-k", type=int, default=5, help="how many results (1-1000)")
    q.add_argument("--json", action="store_true", help="results as JSON, for scripts")
    q.add_argument("--all", action="store_true", help="also hits below the no-answer threshold ([query.min_score])")
    q.add_argument("--timeout", type=float, default=10.0)
    q.set_defaults(fn=cmd_query)

    e = sub.add_parser("embed", help="the daemon's vector for a text or an image file, in each of its spaces")
    src = e.add_mutually_exclusive_group(required=True)
    src.add_argument("text", nargs="?", help='e.g. "a cat"')
    src.add_argument("--image", metavar="FILE", help="an image file (its bytes are sent to the daemon)")
    e.add_argument("--json", action="store_true", help="{space: [values]} as JSON, for scripts")
    e.add_argument("--timeout", type=float, default=30.0)
    e.set_defaults(fn=cmd_embed)

    keys = sub.add_parser("keys", help="CURVE keys for an off-host bus and query endpoint")
    keys.add_argument("action", choices=["generate"])
    keys.add_argument("--force", action="store_true", help="replace existing keys (clients need the new ones)")
    keys.set_defaults(fn=cmd_keys)
