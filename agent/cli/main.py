"""`sensorium` command line: run the daemon, build models, tail the bus, query memory.

Exit codes: 0 ok, 1 runtime failure, 2 bad usage, bad config, or nothing to capture.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import signal
import sys
import threading
import time
from pathlib import Path

from agent import config as config_mod
from agent.cli import bench as bench_cli
from agent.cli import bus as bus_cli
from agent.cli import eval as eval_cli
from agent.cli import mcp as mcp_cli
from agent.cli import models as models_cli
from agent.cli import recall as recall_cli
from agent.cli import watch as watch_cli
from agent.cli.args import load_config as _load
from agent.cli.args import parse_duration, parse_time
from agent.config import ConfigError


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _load(args)
    from agent.telemetry import logs

    logs.setup(cfg.daemon.log_level)  # logfmt, one line per event
    from agent.daemon import Daemon
    from agent.lock import AlreadyRunning
    from agent.sources.available import NoSources, format_table
    from agent.telemetry.prom import MetricsError
    from agent.web.server import WebError
    from encoders.modelstore import ModelNotBuilt
    from encoders.runtime import DeviceError
    from sinks.bus.keys import KeysError

    try:
        daemon = Daemon(cfg)
    except NoSources as e:
        print(f"{e}\nsensorium: no sensor available on this machine; try `make demo`", file=sys.stderr)
        return 2
    except (ModelNotBuilt, DeviceError, AlreadyRunning, MetricsError, WebError, KeysError) as e:
        print(f"sensorium: {e}", file=sys.stderr)
        return 2
    print(format_table(daemon.table), file=sys.stderr)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    daemon.run(stop)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from sinks.bus.keys import KeysError
    from sinks.client import QueryError, request

    cfg = _load(args)
    try:
        keys = bus_cli.client_keys(cfg, cfg.query.curve)
        status = request(config_mod.query_endpoint(cfg), {"op": "status"}, timeout=args.timeout, keys=keys)["status"]
    except (QueryError, KeysError) as e:
        print(f"sensorium: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        from agent.cli.control import format_status
        from agent.status import Status

        print(format_status(Status.from_dict(status)))
        url = (status.get("web") or {}).get("url")
        if url:  # the link carries the token when this user can read it (the daemon's data dir)
            from agent.web.security import read_token

            token = cfg.web.token or read_token(cfg.daemon.data_dir)
            print(f"page: {url}" + (f"#token={token}" if token else ""))
    return 0


def cmd_pause(args: argparse.Namespace) -> int:
    from agent.cli import control

    cfg = _load(args)
    keys = bus_cli.client_keys(cfg, cfg.query.curve)
    return control.pause(config_mod.query_endpoint(cfg), args.source, getattr(args, "for"), args.timeout, keys)


def cmd_resume(args: argparse.Namespace) -> int:
    from agent.cli import control

    cfg = _load(args)
    keys = bus_cli.client_keys(cfg, cfg.query.curve)
    return control.resume(config_mod.query_endpoint(cfg), args.source, args.timeout, keys)


def cmd_forget(args: argparse.Namespace) -> int:
    """Delete memories (vectors and thumbnails) in a time range; the daemon announces it as sys.forget."""
    from sinks.client import QueryError, request

    cfg = _load(args)
    body: dict = {"op": "forget"}
    if args.older_than is not None:
        body["older_than"] = args.older_than
    elif args.last is not None:
        body["since"] = time.time() - args.last
    else:
        body["since"], body["until"] = args.since, args.until
    try:
        keys = bus_cli.client_keys(cfg, cfg.query.curve)
        reply = request(config_mod.query_endpoint(cfg), body, timeout=args.timeout, keys=keys)
    except QueryError as e:
        print(f"sensorium: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(reply))
        return 0

    def when(ts: float | None) -> str:
        return "the beginning" if ts is None else dt.datetime.fromtimestamp(ts).isoformat(" ", "seconds")

    until = "now" if reply["until"] is None else when(reply["until"])
    print(f"forgot {reply['count']} memories and {reply['thumbs']} thumbnails from {when(reply['since'])} to {until}")
    return 0


def cmd_service(args: argparse.Namespace) -> int:
    from agent.cli import unit

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
    models_cli.add_parser(sub)
    bus_cli.add_parsers(sub)  # tail, query, keys
    recall_cli.add_parser(sub)  # around
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
    fg = sub.add_parser("forget", help="delete memories and thumbnails in a time range (refuses without one)")
    rng = fg.add_mutually_exclusive_group(required=True)
    rng.add_argument("--older-than", type=parse_duration, metavar="DURATION", help="e.g. 30d: everything older")
    rng.add_argument("--last", type=parse_duration, metavar="DURATION", help="e.g. 10m: everything since then")
    rng.add_argument("--since", type=parse_time, help="10m, 2h, 1d ago or an ISO time (with --until)")
    fg.add_argument("--until", type=parse_time, help="end of the --since range (default: now)")
    fg.add_argument("--json", action="store_true")
    fg.add_argument("--timeout", type=float, default=60.0)
    fg.set_defaults(fn=cmd_forget)
    sv = sub.add_parser("service", help="run the daemon as a systemd user service")
    sv.add_argument("action", choices=["install"])
    sv.add_argument("--print", action="store_true", help="print the unit instead of writing it")
    sv.set_defaults(fn=cmd_service)
    bench_cli.add_parser(sub)
    watch_cli.add_parser(sub)  # watch add|list|remove
    eval_cli.add_parser(sub)
    mcp_cli.add_parser(sub)  # MCP server on stdio
    return p


def main(argv: list[str] | None = None) -> int:
    from sinks.bus.keys import KeysError

    args = parser().parse_args(argv)
    try:
        return args.fn(args)
    except ConfigError as e:
        print(f"sensorium: config error: {e}", file=sys.stderr)
        return 2
    except KeysError as e:  # CURVE is on and this machine's client key is missing
        print(f"sensorium: {e}", file=sys.stderr)
        return 2
