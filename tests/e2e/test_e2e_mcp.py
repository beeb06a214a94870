"""`sensorium mcp` as an assistant meets it: the MCP client library starts the server as a subprocess on stdio and
calls its tools, against a real daemon (Xvfb showing a cat → OpenVINO → Chroma in the store process)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import skimage.data
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from agent import config
from sinks.client import Subscriber
from tests.support.daemon import ONLY_SCREEN, start_daemon, stop_daemon, wait_for, wait_stored
from tests.support.env import ROOT

CONFIG = "[device]\nname = 'CPU'\n[screen]\nfps = 4.0\nforce_keep_s = 2.0\n[store]\nflush_s = 0.2\n" + ONLY_SCREEN
CATS = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat", "lynx"}


def answer(result) -> dict:
    """A tool's JSON answer (the text content an assistant reads)."""
    assert not result.is_error, result.content
    return json.loads(result.content[0].text)


def error(result) -> str:
    assert result.is_error, result.content
    return result.content[0].text


async def converse(cfg_path: Path, cat_id: str, cup_id: str, stop) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "agent", "--config", str(cfg_path), "mcp", "--timeout", "2"],
        env=env,
        cwd=ROOT,
    )
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = {t.name: t for t in (await session.list_tools()).tools}
        assert sorted(tools) == ["around", "search", "status", "timeline"]
        assert all(t.description for t in tools.values())

        found = answer(await session.call_tool("search", {"query": "a cat", "since": "10m", "k": 3}))["results"]
        top = found[0]
        assert top["source"] == "screen0" and top["modality"] == "image", found  # the cat frame (or a later keep)
        assert CATS & set(top["labels"]) and Path(top["thumb"]).is_file(), top
        assert "vector" not in json.dumps(found) and top["time"][:4].isdigit()

        line = answer(await session.call_tool("timeline", {"since": "5m", "source": "screen0"}))
        assert {cat_id, top["id"], cup_id} <= {m["id"] for m in line["memories"]}, line
        times = [m["time"] for m in line["memories"]]
        assert times == sorted(times) and len(set(m["id"] for m in line["memories"])) == len(times)

        near = answer(await session.call_tool("around", {"moment": cat_id, "window_s": 60}))
        assert near["id"] == cat_id and cup_id in [m["id"] for m in near["senses"]["image:screen0"]], near

        st = answer(await session.call_tool("status", {}))
        assert st["sources"]["screen0"]["state"] == "running", st

        bad = error(await session.call_tool("search", {"query": "a cat", "since": "yesterday-ish"}))
        assert "since" in bad and "'yesterday-ish'" in bad, bad
        bad = error(await session.call_tool("timeline", {"since": "5m", "modality": "smell"}))
        assert "modality" in bad and "smell" in bad, bad

        stop()  # the daemon goes away; the server stays and says so
        down = error(await session.call_tool("search", {"query": "a cat"}))
        assert "no answer from the daemon" in down, down
        assert "no answer from the daemon" in error(await session.call_tool("status", {}))
        assert [t.name for t in (await session.list_tools()).tools]  # still answering


def test_mcp_server_searches_the_running_daemon(xvfb, home, tmp_path):
    xvfb.show(skimage.data.chelsea())
    proc, cfg = start_daemon(tmp_path, CONFIG)
    sub = Subscriber(config.bus_endpoint(cfg), "emb.image.screen0")
    stopped = False

    def stop() -> None:
        nonlocal stopped
        stop_daemon(proc, tmp_path)
        stopped = True

    try:
        cat = wait_for(sub, lambda m: bool(CATS & set(m.header["labels"])), timeout=60)
        xvfb.show(skimage.data.coffee())  # a second frame, for `around` the cat to list
        cup = wait_for(sub, lambda m: not CATS & set(m.header["labels"]))
        wait_stored(cfg, [cat, cup])
        asyncio.run(converse(tmp_path / "cfg.toml", cat.header["id"], cup.header["id"], stop))
    finally:
        sub.close()
        if not stopped:
            stop_daemon(proc, tmp_path)
