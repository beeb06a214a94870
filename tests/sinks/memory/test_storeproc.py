"""The store in a child process (sinks/storeproc.py), as the daemon runs it: the same answers as in-process,
nothing lost when the child is killed or hangs, signals left to the daemon, no chromadb in the daemon."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sinks.memory import Memory
from sinks.memory.rows import Refused
from sinks.memory.spool import Record
from sinks.memory.storeproc import RemoteStore, StoreDown, StoreError, portable
from tests.support.chroma import write_order
from tests.support.rows import MIDNIGHT, T0, at, balanced, item, unit
from tests.support.wait import wait_until

ROOT = Path(__file__).resolve().parents[3]


def memory(path: Path, **kw) -> Memory:
    args = {"batch_size": 4, "flush_s": 0.1, "thumbnails": False, "thumb_width": 40, "queue_size": 100}
    return Memory(path, **(args | kw), process=True)


def test_reads_and_writes_through_the_child_match_in_process(tmp_path):
    rng = np.random.default_rng(3)
    rows = [at(MIDNIGHT - 7200 + 60 * i, i, vec=rng.standard_normal(4)) for i in range(200)]
    here = Memory(tmp_path / "here", 4, 0.1, False, 40, 100)
    there = memory(tmp_path / "there")
    try:
        here.write(rows)
        there.write(rows)
        assert there.stats()["store_process"] not in (None, os.getpid())
        q = unit(rng.standard_normal(4))
        for since, until in ((None, None), (MIDNIGHT - 3600, MIDNIGHT + 1800), (MIDNIGHT + 60, None)):
            assert there.search("t/4", q, 7, since, until) == here.search("t/4", q, 7, since, until)
            assert there.count("t/4", since, until) == here.count("t/4", since, until)
        got, want = there.range(MIDNIGHT - 600, limit=20), here.range(MIDNIGHT - 600, limit=20)
        assert [h for h, _ in got] == [h for h, _ in want] and all(
            np.array_equal(a, b) for (_, a), (_, b) in zip(got, want, strict=True)
        )
        first = rows[0].frame.id
        assert there.vectors(first).keys() == {"t/4"} and np.allclose(
            there.vectors(first)["t/4"], here.vectors(first)["t/4"]
        )
        assert there.forget(MIDNIGHT, None)["count"] == here.forget(MIDNIGHT, None)["count"] == 80
        assert there.count("t/4") == 120 and there.spaces() == ["t/4"]
    finally:
        there.close()


def test_refused_rows_are_counted_not_retried(tmp_path):
    mem = memory(tmp_path)
    mem.start()
    mem.put(item(0, unit([1, 0, 0, 0])))
    mem.put(item(1, unit([1, 0, 0])))  # another length than the collection's: Chroma refuses, in the child
    mem.close()
    st = mem.stats()
    assert (st["stored"], st["rejected"], st["failed"], st["spool_rows"]) == (1, 1, 0, 0) and balanced(st)


def test_a_killed_store_process_loses_nothing(tmp_path):
    # capture times in a shuffled order: the order the store takes rows in is then neither time nor id order
    shuffled = np.random.default_rng(4).permutation(40)
    rows = [item(i, unit([1, 0, 0, i]), ts_ns=T0 + int(t) * 10**9) for i, t in enumerate(shuffled)]
    mem = memory(tmp_path, retry_s=0.1)
    mem.start()
    try:
        for r in rows[:8]:
            mem.put(r)
        wait_until(lambda: mem.stats()["stored"] == 8)
        first = mem.stats()["store_process"]
        os.kill(first, signal.SIGKILL)
        for r in rows[8:]:
            mem.put(r)
            time.sleep(0.01)
        wait_until(lambda: mem.stats()["stored"] == 40)
        st = mem.stats()
        assert st["store_starts"] == 2 and st["store_process"] != first and balanced(st)
        by_time = sorted(rows, key=lambda r: r.frame.ts_ns)
        assert [h.id for h, _ in mem.range(None, limit=100)] == [r.frame.id for r in by_time]  # each once
    finally:
        mem.close()
    assert write_order(tmp_path / "chroma") == [r.frame.id for r in rows]  # in the order they were put


def test_rows_of_a_store_process_hung_mid_write_are_spooled_and_replayed_in_order(tmp_path):
    shuffled = np.random.default_rng(5).permutation(24)
    rows = [item(i, unit([1, 0, 0, i]), ts_ns=T0 + int(t) * 10**9) for i, t in enumerate(shuffled)]
    mem = memory(tmp_path, retry_s=0.1)
    mem.start()
    try:
        for r in rows[:8]:
            mem.put(r)
        wait_until(lambda: mem.stats()["stored"] == 8)
        mem.store.timeout_s = 5.0  # a call unanswered for this long: the child is killed and replaced
        hung = mem.stats()["store_process"]
        os.kill(hung, signal.SIGSTOP)  # the next write waits, times out, and goes to the spool
        for r in rows[8:]:
            mem.put(r)
            time.sleep(0.05)
        wait_until(lambda: mem.stats()["stored"] == 24, timeout=90)
        st = mem.stats()
        # (a new child slower than timeout_s to import chromadb, on a loaded machine, is replaced too)
        assert st["store_starts"] >= 2 and st["failed"] > 0 and st["spool_rows"] == st["lost"] == 0 and balanced(st)
    finally:
        mem.close()
    assert write_order(tmp_path / "chroma") == [r.frame.id for r in rows]  # spooled rows replayed in order


def test_a_hung_store_process_is_replaced(tmp_path):
    store = RemoteStore(tmp_path / "chroma", "", 86400)
    try:
        meta = {"ts": MIDNIGHT + 1.0, "source": "a", "modality": "image"}
        store.upsert(Record("t/4", ["a-1"], np.eye(4, dtype=np.float32)[:1], [meta]))
        store.timeout_s = 2.0  # now that the child runs (its start imports chromadb: seconds on a loaded machine)
        hung = store.pid
        os.kill(hung, signal.SIGSTOP)
        with pytest.raises(StoreDown, match="busy"):  # what status asks: it gives up early and kills nothing
            store.known_buckets()
        assert store.pid == hung
        with pytest.raises(StoreDown, match="hung"):
            store.count()
        store.timeout_s = 120.0  # the new child starts
        assert store.count() == 1 and store.pid != hung and store.starts == 2
    finally:
        store.close()


def test_the_child_leaves_signals_to_the_daemon_and_exits_with_it(tmp_path):
    store = RemoteStore(tmp_path / "chroma", "", 86400)
    pid = store.pid
    assert store.count() == 0
    for sig in (signal.SIGTERM, signal.SIGINT):  # what `systemctl stop` / Ctrl-C send to the whole group
        os.kill(pid, sig)
    assert store.count() == 0 and store.pid == pid
    store.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(StoreDown):
        store.count()


def test_errors_cross_as_themselves_or_as_text():
    from chromadb.errors import NotFoundError

    assert isinstance(portable(Refused("dim")), Refused)
    assert isinstance(portable(ValueError("bad")), ValueError)
    e = portable(NotFoundError("gone"))
    assert type(e) is StoreError and "NotFoundError: gone" in str(e)


def test_the_daemon_side_imports_no_chromadb(tmp_path):
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "import numpy as np\n"
        "from sinks.memory import Memory\n"
        "from tests.support.rows import item, unit\n"
        f"m = Memory(Path({str(tmp_path)!r}), 4, 0.1, False, 40, 10, process=True)\n"
        "m.write([item(i, unit([1, 0, 0, i])) for i in range(3)])\n"
        "print(m.count('t/4'), len(m.search('t/4', unit([1, 0, 0, 0]), 2)))\n"
        "m.close()\n"
        "print(sorted(k for k in sys.modules if k.split('.')[0] in ('chromadb', 'onnxruntime', 'torch')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:2] == ["3 2", "[]"]
