"""The bucket store in a child process, so that Chroma's writes do not stall the daemon.

Chroma 1.5's embedded upsert holds the GIL for its whole call, ~36 ms per 32 rows of 1280-d: py-spy on a
saturated daemon found 77 % of the samples holding the GIL in `RustBindingsAPI._upsert`, while inference
callbacks and the dispatcher waited and the model idled. Here the child owns the `BucketStore` (embedded
or a server's client) and the daemon calls it over a private socketpair: pickled (id, method, args) in,
(id, ok, result) out. Calls from several threads are in flight at once (the child runs each on a small
pool), so a query does not wait behind a write. The daemon then needs neither chromadb nor its memory.

If the child dies or hangs, pending and new calls raise `StoreDown` (a ConnectionError: the writer spools,
as for an unreachable server) and the next call starts a new child. The child ignores SIGINT/SIGTERM and
exits when the daemon closes its end (or dies): a Ctrl-C or `systemctl stop` reaches the whole process
group, and the daemon's final flush still needs its store.

    python -m sinks.memory.storeproc FD SPEC_JSON     (started by RemoteStore, not by hand)
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sinks.memory.buckets import split
from sinks.memory.spool import Record

log = logging.getLogger(__name__)
CALLS: set[str] = set()  # the BucketStore methods the child answers: RemoteStore's forwards (_forward)


class StoreDown(ConnectionError):
    """The store process exited, hung or could not be started."""


class StoreError(RuntimeError):
    """An error of the store's own libraries, carried as text (the daemon does not import them)."""


class _Child:
    """One running store process and the calls in flight to it."""

    def __init__(self, spec: dict[str, Any]) -> None:
        ours, theirs = socket.socketpair()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sinks.memory.storeproc", str(theirs.fileno()), json.dumps(spec)],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self.sock = ours
        self.conn = Connection(os.dup(ours.fileno()))
        self.pending: dict[int, Future] = {}
        self.lock = threading.Lock()  # pending, next id and the send side of conn
        self.next_id = 0
        self.alive = True
        threading.Thread(target=self._read, name="store-reader", daemon=True).start()

    def call(self, method: str, args: tuple, kwargs: dict) -> Future:
        fut: Future = Future()
        with self.lock:
            if not self.alive:
                raise StoreDown(f"store process exited (rc {self.proc.poll()})")
            self.next_id += 1
            self.pending[self.next_id] = fut
            try:
                self.conn.send((self.next_id, method, args, kwargs))
            except (OSError, ValueError) as e:
                del self.pending[self.next_id]
                raise StoreDown(f"store process unreachable: {e}") from e
        return fut

    def _read(self) -> None:
        while True:
            try:
                cid, ok, value = self.conn.recv()
            except (EOFError, OSError):
                break
            except Exception:  # a reply this side cannot unpickle: the channel is no longer trustworthy
                log.exception("unreadable reply from the store process; restarting it")
                self.proc.kill()
                break
            with self.lock:
                fut = self.pending.pop(cid, None)
            if fut is None:
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)
        with self.lock:
            self.alive = False
            pending, self.pending = self.pending, {}
        rc = self.proc.wait()
        self.conn.close()
        self.sock.close()
        for fut in pending.values():
            fut.set_exception(StoreDown(f"store process exited (rc {rc})"))

    def stop(self, timeout: float) -> None:
        """Let the child finish what it has, then exit; kill it if it does not."""
        try:
            self.sock.shutdown(socket.SHUT_WR)  # the child reads EOF; replies can still come back
        except OSError:
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        with self.lock:
            self.alive = False  # the next call starts a new child now, not once the reader has seen EOF
        self.proc.kill()
        self.proc.wait()


def _forward(name: str, wait: float | None = None) -> Callable[..., Any]:
    """A RemoteStore method that runs `BucketStore.<name>` in the child with the same arguments."""
    CALLS.add(name)

    def method(self: RemoteStore, *args: Any, **kwargs: Any) -> Any:
        return self._call(name, args, kwargs, wait=wait)

    method.__name__ = name
    return method


class RemoteStore:
    """`BucketStore`'s methods, run in a child process started on first use and restarted after a death."""

    def __init__(self, path: Path, url: str, bucket_s: int, index_ttl_s: float = 10.0, timeout_s: float = 120.0):
        self.spec = {"path": str(path), "url": url, "bucket_s": bucket_s, "index_ttl_s": index_ttl_s}
        self.url = url
        self.bucket_s = bucket_s
        self.timeout_s = timeout_s
        self.starts = 0  # child processes started (more than 1: it died or hung and was replaced)
        self._lock = threading.Lock()
        self._child: _Child | None = None
        self._closed = False
        self._running()  # chromadb takes ~1 s to import: start now, not on the first write

    def _running(self) -> _Child:
        with self._lock:
            if self._closed:
                raise StoreDown("store closed")
            if self._child is None or not self._child.alive:
                self._child = _Child(self.spec)
                self.starts += 1
            return self._child

    def _call(self, method: str, args: tuple, kwargs: dict, wait: float | None = None) -> Any:
        """`method` in the child. `wait`: a quick question (status) that gives up after that many seconds
        without declaring the store hung; otherwise no answer within timeout_s replaces the child."""
        child = self._running()
        fut = child.call(method, args, kwargs)
        try:
            return fut.result(wait or self.timeout_s)
        except FutureTimeout:
            if wait is not None:
                raise StoreDown(f"store process busy: no answer to {method} in {wait:g} s") from None
            log.error("store process did not answer %s in %.0f s; restarting it", method, self.timeout_s)
            child.kill()
            raise StoreDown(f"store process hung in {method}") from None

    @property
    def pid(self) -> int | None:
        child = self._child
        return child.proc.pid if child is not None and child.alive else None

    def close(self, timeout: float = 10.0) -> None:
        with self._lock:
            self._closed = True
            child, self._child = self._child, None
        if child is not None:
            child.stop(timeout)

    def split(self, rec: Record) -> list[Record]:
        return split(rec, self.bucket_s)

    # BucketStore's methods, same arguments, run in the child
    upsert = _forward("upsert")
    buckets = _forward("buckets")
    spaces = _forward("spaces")
    known_buckets = _forward("known_buckets", wait=1.0)  # for status, which must answer while the store is stuck
    search = _forward("search")
    range = _forward("range")
    vectors = _forward("vectors")
    near = _forward("near")
    timeline = _forward("timeline")
    span = _forward("span")
    count = _forward("count")
    bucket_count = _forward("bucket_count")
    drop = _forward("drop")
    trim = _forward("trim")
    warm = _forward("warm")


def portable(e: Exception) -> Exception:
    """`e` if the daemon can unpickle it without importing the store's libraries, else its text."""
    if type(e).__module__.split(".")[0] in ("builtins", "sinks"):
        try:
            pickle.loads(pickle.dumps(e))
            return e
        except Exception:
            pass
    return StoreError(f"{type(e).__name__}: {e}")


def serve(conn: Connection, store: Any, workers: int = 4) -> None:
    """Answer calls until the daemon closes its end, then finish the ones running."""
    send_lock = threading.Lock()

    def run(cid: int, method: str, args: tuple, kwargs: dict) -> None:
        try:
            if method not in CALLS:
                raise ValueError(f"unknown store call {method!r}")
            reply = (cid, True, getattr(store, method)(*args, **kwargs))
        except Exception as e:
            reply = (cid, False, portable(e))
        with send_lock:
            try:
                conn.send(reply)
            except (OSError, ValueError):  # the daemon is gone; nobody waits for this
                pass

    with ThreadPoolExecutor(workers, thread_name_prefix="store-call") as pool:
        while True:
            try:
                cid, method, args, kwargs = conn.recv()
            except (EOFError, OSError):
                break
            pool.submit(run, cid, method, args, kwargs)


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logging.basicConfig(level=logging.WARNING, format="level=%(levelname)s logger=%(name)s msg=%(message)r")
    from sinks.memory.store import BucketStore  # chromadb: only in this process

    fd, spec = int(argv[0]), json.loads(argv[1])
    store = BucketStore(Path(spec["path"]), spec["url"], int(spec["bucket_s"]), float(spec["index_ttl_s"]))
    try:
        serve(Connection(fd), store)
    finally:
        store.close()
    return 0


if __name__ == "__main__":
    # run as sinks.memory.storeproc, not __main__: errors are pickled by class path, and the daemon has no
    # __main__.StoreError to unpickle them into
    from sinks.memory.storeproc import main as _main

    sys.exit(_main(sys.argv[1:]))
