"""`sensorium` command line: run the daemon, build models, tail the bus, query memory.

Exit codes: 0 ok, 1 runtime failure, 2 bad usage, bad config, or nothing to capture.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import re
import signal
import sys
import threading
import time
from pathlib import Path

from . import config as config_mod
from .config import Config, ConfigError

DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_time(text: str, now: float | None = None) -> float:
    """'10m' (ago), '2h', '1d', or an ISO time ('2026-11-23T15:00', '15:00' today) → unix seconds."""
    now = time.time() if now is None else now
    m = DURATION.match(text.strip())
    if m:
        return now - float(m.group(1)) * UNITS[m.group(2)]
    try:
        if re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", text.strip()):
            day = dt.datetime.fromtimestamp(now).date().isoformat()
            return dt.datetime.fromisoformat(f"{day}T{text.strip()}").timestamp()
        return dt.datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration (10m, 2h, 1d) or an ISO time") from None


def parse_duration(text: str) -> float:
    """'30s', '15m', '2h', '1d' or plain seconds ('90') → seconds, for `pause --for`."""
    m = DURATION.match(text.strip()) or re.fullmatch(r"(\d+(?:\.\d+)?)()", text.strip())
    seconds = float(m.group(1)) * UNITS.get(m.group(2), 1) if m else 0.0
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive duration (30s, 15m, 2h, 1d)")
    return seconds


def _load(args: argparse.Namespace) -> Config:
    return config_mod.load(Path(args.config) if args.config else None)


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _load(args)
    logging.basicConfig(
        level=cfg.daemon.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    from encoders.modelstore import ModelNotBuilt

    from .daemon import Daemon, NoSources, format_table
    from .lock import AlreadyRunning

    try:
        daemon = Daemon(cfg)
    except NoSources as e:
        print(f"{e}\nsensorium: no sensor available on this machine; try `make demo`", file=sys.stderr)
        return 2
    except (ModelNotBuilt, AlreadyRunning) as e:
        print(f"sensorium: {e}", file=sys.stderr)
        return 2
    print(format_table(daemon.table), file=sys.stderr)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    daemon.run(stop)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from encoders.modelstore import SPECS, ModelStore

    cfg = _load(args)
    store = ModelStore(cfg.daemon.cache_dir)
    if args.action == "list":
        for name in SPECS:
            print(f"{name:<14} {'built' if store.is_built(name) else 'not built':<10} {store.path(name)}")
        return 0
    names = args.names or [cfg.models.text, cfg.models.image, cfg.models.audio]
    for name in names:
        if name not in SPECS:
            print(f"sensorium: unknown model {name!r}; known: {', '.join(SPECS)}", file=sys.stderr)
            return 2
        was = store.is_built(name)
        t0 = time.monotonic()
        path = store.build(name, force=args.force)
        state = "already built" if was and not args.force else f"built in {time.monotonic() - t0:.1f}s"
        print(f"{name}: {state} → {path}")
    return 0


def cmd_tail(args: argparse.Namespace) -> int:
    from sinks.client import Subscriber

    cfg = _load(args)
    sub = Subscriber(config_mod.bus_endpoint(cfg), args.prefix)
    n = 0
    try:
        while args.count is None or n < args.count:
            msg = sub.recv(timeout=args.timeout)
            if msg is None:
                print(f"sensorium: no message within {args.timeout:g}s", file=sys.stderr)
                return 1
            n += 1
            h = msg.header
            if args.json:
                out = {"topic": msg.topic, **h, "gaps": sub.gaps}
                if msg.vector is not None:
                    out["norm"] = round(float((msg.vector.astype("float64") ** 2).sum() ** 0.5), 5)
                print(json.dumps(out), flush=True)
            else:
                t = dt.datetime.fromtimestamp(h.get("ts", time.time())).strftime("%H:%M:%S.%f")[:-3]
                labels = ", ".join(h.get("labels", [])[:3])
                print(f"{t} {msg.topic:<22} seq={h.get('seq')} {h.get('space', '')} {labels}", flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        sub.close()
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    from sinks.client import QueryError, query

    cfg = _load(args)
    try:
        hits = query(
            config_mod.query_endpoint(cfg),
            args.text,
            k=args.k,
            since=args.since,
            until=args.until,
            modality=args.modality,
            source=args.source,
            timeout=args.timeout,
        )
    except QueryError as e:
        print(f"sensorium: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(hits, indent=2))
        return 0
    if not hits:
        print("no memories match")
    for h in hits:
        t = dt.datetime.fromtimestamp(h["ts"]).strftime("%Y-%m-%d %H:%M:%S")
        print(f"{t}  {h['source']:<10} {h['score']:.3f}  {', '.join(h['labels'][:3]):<40} {h['thumb'] or ''}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from sinks.client import QueryError, request

    cfg = _load(args)
    try:
        status = request(config_mod.query_endpoint(cfg), {"op": "status"}, timeout=args.timeout)["status"]
    except QueryError as e:
        print(f"sensorium: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        from .control import format_status

        print(format_status(status))
    return 0


def cmd_pause(args: argparse.Namespace) -> int:
    from . import control

    endpoint = config_mod.query_endpoint(_load(args))
    return control.pause(endpoint, args.source, getattr(args, "for"), args.timeout)


def cmd_resume(args: argparse.Namespace) -> int:
    from . import control

    return control.resume(config_mod.query_endpoint(_load(args)), args.source, args.timeout)


def cmd_service(args: argparse.Namespace) -> int:
    from . import unit

    config = Path(args.config) if args.config else None
    if config is not None:
        _load(args)  # a unit pointing at a broken config would only fail later, under systemd
    text = unit.unit_text(config)
    if args.print:
        print(text, end="")
        return 0
    path = unit.install(text)
    print(f"wrote {path}\nstart it now and at every login: {unit.ENABLE_HINT}")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sensorium", description="Live embeddings of what this machine sees and hears.")
    p.add_argument("--config", help="TOML file overriding configs/default.toml")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("run", help="run the daemon on this machine's sensors").set_defaults(fn=cmd_run)
    m = sub.add_parser("models", help="build or list models")
    m.add_argument("action", choices=["build", "list"])
    m.add_argument("names", nargs="*", help="models to build (default: the configured ones)")
    m.add_argument("--force", action="store_true", help="rebuild even if built")
    m.set_defaults(fn=cmd_models)
    t = sub.add_parser("tail", help="print live messages from the bus")
    t.add_argument("prefix", nargs="?", default="", help="topic prefix, e.g. emb.image")
    t.add_argument("--json", action="store_true")
    t.add_argument("-n", "--count", type=int, help="exit after this many messages")
    t.add_argument("--timeout", type=float, default=None, help="exit 1 if nothing arrives for this long (s)")
    t.set_defaults(fn=cmd_tail)
    q = sub.add_parser("query", help="search memory by text")
    q.add_argument("text")
    q.add_argument("--since", type=parse_time, help="10m, 2h, 1d or an ISO time")
    q.add_argument("--until", type=parse_time)
    q.add_argument("--modality", choices=["image", "audio"])
    q.add_argument("--source")
    q.add_argument("-k", type=int, default=5)
    q.add_argument("--json", action="store_true")
    q.add_argument("--timeout", type=float, default=10.0)
    q.set_defaults(fn=cmd_query)
    st = sub.add_parser("status", help="state, rates and latency of the running daemon")
    st.add_argument("--json", action="store_true", help="the raw status object")
    st.add_argument("--timeout", type=float, default=5.0)
    st.set_defaults(fn=cmd_status)
    pa = sub.add_parser("pause", help="stop capturing (all sources, or one) until resumed or for a while")
    pa.add_argument("source", nargs="?", help="e.g. cam0 (default: every source)")
    pa.add_argument("--for", type=parse_duration, metavar="DURATION", help="30s, 15m, 2h; resumes by itself")
    pa.add_argument("--timeout", type=float, default=10.0)
    pa.set_defaults(fn=cmd_pause)
    re_ = sub.add_parser("resume", help="capture again after a pause")
    re_.add_argument("source", nargs="?", help="e.g. cam0 (default: every source)")
    re_.add_argument("--timeout", type=float, default=10.0)
    re_.set_defaults(fn=cmd_resume)
    sv = sub.add_parser("service", help="run the daemon as a systemd user service")
    sv.add_argument("action", choices=["install"])
    sv.add_argument("--print", action="store_true", help="print the unit instead of writing it")
    sv.set_defaults(fn=cmd_service)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except ConfigError as e:
        print(f"sensorium: config error: {e}", file=sys.stderr)
        return 2
