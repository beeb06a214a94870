"""`sensorium mcp`: an MCP server on stdin/stdout so AI assistants can search the running daemon's memory.

The assistant starts it as a subprocess (`sensorium --config FILE mcp`); it opens no network listener and talks to
the daemon only over the query endpoint (agent/mcp_tools.py). Tool docstrings are what the assistant reads.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Callable
from typing import Any

from agent import config as config_mod
from agent.cli.args import load_config as _load
from agent.cli.bus import client_keys
from agent.mcp_tools import Memory, ToolProblem

INSTRUCTIONS = (
    "sensorium remembers what this computer's screen, camera and microphone captured: image memories (labels, a "
    "thumbnail), screen text and speech (words), sounds. Search it by meaning with `search`, list a time range with "
    "`timeline`, see everything near one moment with `around`. Times are local; give them as '10m' (ago), '14:00' "
    "or ISO. Thumbnails are file paths on this machine."
)


def _tool_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A ToolProblem becomes an MCP tool error with its sentence (the server keeps running)."""
    from mcp.server.mcpserver.exceptions import ToolError

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ToolProblem as e:
            raise ToolError(str(e)) from None

    return call


def server(memory: Memory):  # -> MCPServer, imported here only (the CLI starts without it)
    from mcp.server.mcpserver import MCPServer

    app = MCPServer("sensorium", instructions=INSTRUCTIONS)

    @app.tool()
    @_tool_errors
    def search(
        query: str,
        since: str | None = None,
        until: str | None = None,
        modality: str | None = None,
        source: str | None = None,
        k: int = 10,
    ) -> dict:
        """Search the memory by meaning: what was seen on screen or camera, read on screen, said or heard.

        query: words describing it ("a cat", "the invoice from ACME", "someone talking about the budget").
        since/until: optional time window: "10m", "2h", "1d" (ago), a clock time "14:00", or ISO "2026-12-03T14:00".
        modality: optional "image" (screen/camera frames), "text" (screen text and speech), "audio" (sounds) or
        "moment" (slices of time fused from every sense). source: optional, e.g. "screen0", "cam0", "mic0".
        k: how many results (1-100). Results best first: time (local ISO), source, modality, score (cosine),
        labels, snippet/text for words, thumb (a JPEG path for frames) and id (for `around`).
        """
        return memory.search(query, since, until, modality, source, k)

    @app.tool()
    @_tool_errors
    def timeline(
        since: str,
        until: str | None = None,
        modality: str | None = None,
        source: str | None = None,
        limit: int = 100,
    ) -> dict:
        """What was captured in a time range, oldest first: one line per memory (time, source, modality, labels
        or words, thumb, id).

        since: start, "30m" (ago), "14:00" or ISO; until: end (default now). modality/source: optional filters as in
        `search`. limit: at most this many memories (1-1000); "more": true says the range holds more.
        """
        return memory.timeline(since, until, modality, source, limit)

    @app.tool()
    @_tool_errors
    def around(moment: str, window_s: float = 30.0) -> dict:
        """Everything captured near one moment, grouped by sense ("image:screen0", "text:screen0", "text:mic0", …),
        nearest first: what was on screen, what it said, what was heard.

        moment: a memory id (from `search` or `timeline`) or a time ("14:03", ISO, "5m" ago).
        window_s: seconds either side (at most 3600). dt_s is each memory's offset from the moment.
        """
        return memory.around(moment, window_s)

    @app.tool()
    @_tool_errors
    def status() -> dict:
        """Whether the sensorium daemon is running and recording: each source's state (running, paused, …), frames
        per second in and kept, errors, and memory counts."""
        return memory.status()

    return app


def cmd_mcp(args: argparse.Namespace) -> int:
    cfg = _load(args)
    keys = client_keys(cfg, cfg.query.curve)
    server(Memory(config_mod.query_endpoint(cfg), keys, timeout=args.timeout)).run("stdio")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    m = sub.add_parser(
        "mcp",
        help="an MCP server on stdio: AI assistants search memory (search, timeline, around, status)",
        description="Register with an assistant as the command `sensorium --config FILE mcp`; stdio only, no port.",
    )
    m.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for the daemon per call")
    m.set_defaults(fn=cmd_mcp)
