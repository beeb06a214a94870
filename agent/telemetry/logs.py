"""Structured logs: one line per event, logfmt (`key=value`), so grep, journald and log shippers can read them.

    ts=2026-11-23T14:02:11Z level=warning logger=agent.sources.screen msg="screen screen0: reconnecting (no display)"

Fields passed as `extra=kv(source="cam0", n=3)` follow `msg`. A traceback stays on the event's line (as an
escaped `exc=` field), so one event is always one line.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

FIELDS = "kv"  # the LogRecord attribute that carries extra fields
_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@+,%")


def kv(**fields: Any) -> dict[str, dict[str, Any]]:
    """`log.info("paused", extra=kv(source="cam0"))`."""
    return {FIELDS: fields}


def quote(value: Any) -> str:
    """A value as logfmt: bare when it is a simple token, else double-quoted with escapes."""
    s = value if isinstance(value, str) else str(value)
    if s and all(c in _PLAIN for c in s):
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r") + '"'


class LogfmtFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        t = time.gmtime(record.created)
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(record.msecs):03d}Z"
        parts = [f"ts={ts}", f"level={record.levelname.lower()}", f"logger={record.name}"]
        parts.append(f"msg={quote(record.getMessage())}")
        for key, value in (getattr(record, FIELDS, None) or {}).items():
            parts.append(f"{key}={quote(value)}")
        if record.exc_info:
            parts.append(f"exc={quote(self.formatException(record.exc_info))}")
        return " ".join(parts)


def setup(level: str, stream: TextIO | None = None) -> None:
    """Route every logger (ours and libraries') through one logfmt handler at `level`."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level)
