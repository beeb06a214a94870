"""The data dir is private (0700) and has one daemon: an exclusive flock on `<data_dir>/daemon.lock`, which
holds the owner's PID.

Chroma's embedded store is single-writer, and two daemons would also fight over the sockets, so the second
one must refuse to start. flock belongs to the open file, so the kernel drops it when the holder dies, even
by SIGKILL: a file left behind by a killed daemon never blocks the next start. The descriptor is
non-inheritable, so helper processes (the microphone capture) cannot keep the lock alive after the daemon.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_NAME = "daemon.lock"


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) and make it 0700: memories and sockets are personal."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


class AlreadyRunning(RuntimeError):
    """Another live process holds the data dir's lock."""

    def __init__(self, path: Path, pid: int | None) -> None:
        self.path = path
        self.pid = pid
        who = f"pid {pid}" if pid is not None else "another process"
        super().__init__(f"a daemon is already running on {path.parent} ({who} holds {path})")


def read_pid(path: Path) -> int | None:
    """The PID written in a lock file, or None if it is missing or not (yet) written."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> DataDirLock:
        """Take the lock without waiting and record our PID; raise AlreadyRunning if it is held."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AlreadyRunning(self.path, read_pid(self.path)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Clear the PID and drop the lock (the file stays: unlinking a lock file races with the next taker)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the only descriptor releases the flock

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> DataDirLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
