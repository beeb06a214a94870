"""Argument helpers shared by the CLI modules: times, durations and the config a command runs with."""

from __future__ import annotations

import argparse
import datetime as dt
import re
import time
from pathlib import Path

from agent import config as config_mod
from agent.config import Config

DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_time(text: str, now: float | None = None) -> float:
    """'10m' (ago), '2h', '1d', an ISO time ('2026-11-23T15:00') or a clock time → unix seconds.

    A bare clock time ('15:00') is the latest one that has begun: today's, or yesterday's if today's is
    still ahead, so `--since 22:00` just after midnight means last night.
    """
    now = time.time() if now is None else now
    m = DURATION.match(text.strip())
    if m:
        return now - float(m.group(1)) * UNITS[m.group(2)]
    try:
        if re.fullmatch(r"\d{1,2}:\d{2}(:\d{2})?", text.strip()):
            day = dt.datetime.fromtimestamp(now).date().isoformat()
            t = dt.datetime.fromisoformat(f"{day}T{text.strip()}")
            return (t if t.timestamp() <= now else t - dt.timedelta(days=1)).timestamp()
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


def load_config(args: argparse.Namespace) -> Config:
    return config_mod.load(Path(args.config) if args.config else None)
