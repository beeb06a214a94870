"""A real `chroma run` server on 127.0.0.1, and the order in which a Chroma store took its rows."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.env import IN_CI, ROOT
from tests.support.net import free_port

CHROMA = ROOT / ".venv" / "bin" / "chroma"


class ChromaServer:
    """`chroma run` on a free loopback port; start and stop it as often as a test needs (same data dir)."""

    def __init__(self, path: Path, log: Path) -> None:
        self.path, self.log, self.port = path, log, free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = [str(CHROMA), "run", "--path", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-2000:]
            try:
                urllib.request.urlopen(self.url + "/api/v2/heartbeat", timeout=1).read()
                return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("chroma run did not answer within 30 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def require_chroma() -> None:
    if not CHROMA.exists():
        if IN_CI:
            pytest.fail(f"{CHROMA} missing")
        pytest.skip(f"{CHROMA} missing")


def write_order(where: Path | str) -> list[str]:
    """Ids in the order the store first took them, bucket by bucket (oldest bucket first).

    `where` is an embedded store's folder (no other client may have it open) or a server's URL. Chroma
    returns a collection's rows in insertion order (an upsert of an id it has keeps its place), unlike
    Memory.range, which sorts by capture time: this is what shows the order of the writes.
    """
    from sinks.memory.store import open_client  # chromadb: not at import time

    client = open_client(where, "") if isinstance(where, Path) else open_client(Path(), where)
    cols = sorted(client.list_collections(), key=lambda c: float((c.metadata or {}).get("start", 0)))
    return [i for c in cols for i in c.get(include=[])["ids"]]
