"""Server mode and the spool against a real `chroma run` on 127.0.0.1, stopped and restarted mid-run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data

from agent import config
from sinks.client import request
from sinks.memory import Memory
from tests.support.chroma import ChromaServer, require_chroma, write_order
from tests.support.daemon import ONLY_SCREEN, start_daemon, status, stop_daemon
from tests.support.rows import MIDNIGHT, T0, at, balanced, item, unit
from tests.support.wait import wait_until

OPTS = {"batch_size": 4, "flush_s": 0.1, "thumbnails": False, "thumb_width": 8, "queue_size": 1000}


@pytest.fixture
def server(tmp_path: Path):
    require_chroma()
    srv = ChromaServer(tmp_path / "server", tmp_path / "chroma.log")
    yield srv
    srv.stop()


def test_server_stopped_and_restarted_mid_run_loses_nothing(server: ChromaServer, tmp_path: Path) -> None:
    data = tmp_path / "agent"
    rng = np.random.default_rng(0)
    # capture times in a shuffled order: the order the store takes rows in is then neither time nor id order
    rows = [item(i, unit(rng.standard_normal(4)), ts_ns=T0 + int(t) * 10**9) for i, t in enumerate(rng.permutation(65))]

    server.start()
    mem = Memory(data, **OPTS, url=server.url, retry_s=0.2)
    mem.start()
    for r in rows[:20]:
        mem.put(r)
    wait_until(lambda: mem.stats()["stored"] == 20)

    server.stop()  # mid-run: the next writes fail and go to the spool, counted
    for r in rows[20:50]:
        mem.put(r)
    wait_until(lambda: mem.stats()["queued"] == 0)
    st = mem.stats()
    assert (st["stored"], st["spool_rows"], st["lost"]) == (20, 30, 0) and st["failed"] > 0 and balanced(st), st
    assert st["spool_bytes"] > 30 * 16 and st["store_lag_s"] > 0
    mem.close()  # the daemon stops while the server is down: the spool stays on disk

    # started again while the server is still down: no crash, the spool is found, new rows join it
    mem = Memory(data, **OPTS, url=server.url, retry_s=0.2)
    assert mem.stats()["recovered"] == 30
    mem.start()
    for r in rows[50:60]:
        mem.put(r)
    wait_until(lambda: mem.stats()["queued"] == 0)
    assert mem.stats()["spool_rows"] == 40 and balanced(mem.stats())
    with pytest.raises(ValueError, match="Could not connect to a Chroma server"):  # the service answers this
        mem.search("t/4", unit([1, 0, 0, 0]), k=3)

    server.start()  # same data dir: the 20 stored rows are still there; the spool replays in order
    wait_until(lambda: mem.stats()["spool_rows"] == 0)
    for r in rows[60:]:
        mem.put(r)
    mem.close()
    st = mem.stats()
    assert st["recovered"] + st["received"] == 30 + 15 and st["stored"] == 45 and balanced(st), st
    assert st["store_lag_s"] == 0 and not list((data / "spool").glob("*.spool"))

    assert write_order(server.url) == [r.frame.id for r in rows]  # the store took every row once, as put
    check = Memory(tmp_path / "reader", **OPTS, url=server.url)
    assert check.count("t/4") == 65
    by_time = sorted(rows, key=lambda r: r.frame.ts_ns)
    assert [h.id for h, _ in check.range(None, limit=100)] == [r.frame.id for r in by_time]


def test_forget_reaches_rows_in_the_spool(server: ChromaServer, tmp_path: Path) -> None:
    """Rows spooled while the store was down and captured in the range are purged from the spool, counted, and
    never reach the store; the spooled rows outside it are replayed."""
    mem = Memory(tmp_path / "agent", **OPTS, url=server.url, retry_s=0.2)  # the writer runs when started below
    batches = [[at(MIDNIGHT + i, i) for i in b] for b in ((0, 1, 2, 3), (4, 5), (6, 7))]
    for b in batches:  # nothing listens at the url yet: each batch is one spool file
        mem.write(b)
    assert len(list((tmp_path / "agent" / "spool").glob("*.spool"))) == 3 and mem.stats()["spool_rows"] == 8

    server.start()
    out = mem.forget(MIDNIGHT + 3, MIDNIGHT + 5)  # one row of the first file, all of the second
    assert out["count"] == 3 and mem.stats()["purged"] == 3 and mem.stats()["spool_rows"] == 5
    mem.start()
    wait_until(lambda: mem.stats()["spool_rows"] == 0)
    mem.close()
    st = mem.stats()
    assert (st["stored"], st["purged"], st["lost"]) == (5, 3, 0), st
    assert write_order(server.url) == [at(MIDNIGHT + i, i).frame.id for i in (0, 1, 2, 6, 7)]


def test_daemon_starts_with_the_server_down_and_catches_up(server: ChromaServer, xvfb, home, tmp_path: Path) -> None:
    xvfb.show(skimage.data.chelsea())
    text = (
        "[device]\nname = 'CPU'\n[screen]\nfps = 5.0\ngate_threshold = 0.0\n"
        f"[store]\nbatch_size = 4\nflush_s = 0.2\nurl = '{server.url}'\nagent = 'desk'\n" + ONLY_SCREEN
    )
    proc, cfg = start_daemon(tmp_path, text)  # nothing listens at store.url yet: the daemon runs anyway
    try:
        wait_until(lambda: status(cfg)["memory"]["spool_rows"] >= 8, timeout=60)
        st = status(cfg)["memory"]
        assert st["stored"] == 0 and st["lost"] == 0 and balanced(st), st
        server.start()
        wait_until(lambda: status(cfg)["memory"]["stored"] >= st["spool_rows"] + 4, timeout=60)
        assert list(status(cfg)["sources"]) == ["desk.screen0"]  # this agent's rows are its own in a shared store
        request(config.query_endpoint(cfg), {"op": "pause", "source": "screen0"})  # the short name works too
        wait_until(lambda: status(cfg)["memory"]["queued"] == 0)
        st = status(cfg)["memory"]
        assert st["spool_rows"] == 0 and st["received"] == st["stored"] and balanced(st), st
        reader = Memory(tmp_path / "reader", 1, 0.1, False, 8, 1, url=server.url)
        assert sum(reader.count(s) for s in reader.spaces()) == st["stored"]  # every row in Chroma, once
        assert {hit.source for hit, _ in reader.range(0, limit=1000)} == {"desk.screen0"}
    finally:
        stop_daemon(proc, tmp_path)
