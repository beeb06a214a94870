"""Microphone capture: capture process → windows with a hop → silence gate → post.

The PortAudio stream lives in a child process (`audio_child` says why) whose callback only copies
samples; the daemon kills and respawns it when it stops delivering. The source thread cuts windows
at the device rate, resamples each to the model rate (soxr), and drops silent ones before any
inference. Window times come from the sample count since the stream opened, so consecutive windows
are exactly one hop apart unless samples were really lost, which is counted (overflows, drops).
Paused, the capture process is killed (the device is closed, nothing is recorded) and a new one is
spawned on resume. A lost device is respawned with a backoff of 0.2 s → 2 s (supervisor.py).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import numpy as np
import soxr

from encoders.records import Frame

from .audio_child import HEADER
from .supervisor import Lost, Supervisor

BLOCK_S = 0.05  # callback block length
FIRST_DATA_S = 5.0  # a new capture process may take this long to deliver its first block
STALL_S = 0.5  # then no samples for this long (10 blocks) means the device is gone


class _Pipe:
    """Exact-size reads from a child's stdout with a timeout (None when it passes)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buf = bytearray()

    def _fill(self, deadline: float) -> bool:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([self.fd], [], [], left)[0]:
            return False
        chunk = os.read(self.fd, 1 << 16)
        if not chunk:
            raise EOFError
        self.buf += chunk
        return True

    def read(self, n: int, timeout: float) -> bytes | None:
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            if not self._fill(deadline):
                return None
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def readline(self, timeout: float) -> bytes | None:
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            if not self._fill(deadline):
                return None
        line, _, rest = bytes(self.buf).partition(b"\n")
        self.buf = bytearray(rest)
        return line


def dbfs(x: np.ndarray) -> float:
    return 20.0 * float(np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))) + 1e-12))


class MicrophoneSource(Supervisor):
    modality = "audio"
    kind = "microphone"
    backoff = (0.2, 2.0)
    join_s = 3.0

    def __init__(
        self,
        name: str,
        device: str | int | None,
        target_rate: int,
        window_samples: int,
        hop_s: float,
        silence_dbfs: float,
        post: Callable[[Frame], None],
    ) -> None:
        super().__init__()
        self.name = name
        self.device = device
        self.target_rate = target_rate
        self.window_samples = window_samples
        self.window_s = window_samples / target_rate
        self.hop_s = hop_s
        self.silence_dbfs = silence_dbfs
        self._post = post
        self._proc_lock = threading.Lock()  # a pause never misses a capture process being spawned
        self.counts = {"windows": 0, "kept": 0, "gated": 0, "bad": 0, "overflows": 0}
        self.samples_in = self.samples_dropped = 0
        self._child_error = ""
        self._info: dict = {}
        self._proc: subprocess.Popen | None = None

    # -- capture process --------------------------------------------------------------------------
    def _spawn(self, *extra: str) -> subprocess.Popen:
        device = "" if self.device is None else str(self.device)
        cmd = [sys.executable, "-m", "agent.sources.audio_child", "--device", device, "--block-s", str(BLOCK_S)]
        pipe = subprocess.PIPE
        return subprocess.Popen([*cmd, *extra], stdin=subprocess.DEVNULL, stdout=pipe, stderr=pipe)

    def probe(self) -> str | None:
        proc = self._spawn("--probe")
        try:
            out, err = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        if proc.returncode == 0 and out:
            self._info = json.loads(out.splitlines()[0])
            return None
        reason = (err.decode(errors="replace").strip().splitlines() or ["capture process failed"])[-1]
        return f"no input device {self.device if self.device is not None else '(default)'}: {reason}"

    def describe(self) -> str:
        name, rate = self._info.get("name", "?"), self._info.get("rate", 0)
        return f"{name} at {rate} Hz → {self.target_rate} Hz, {self.window_s:.2f} s windows every {self.hop_s:.2f} s"

    # -- supervised session ---------------------------------------------------------------------------
    def _release(self) -> None:
        with self._proc_lock:
            proc = self._proc  # read once: the capture thread clears it when its session ends
            if proc is not None:
                proc.kill()  # the device closes now, not at the reader's next block

    def _session(self) -> bool:
        with self._proc_lock:  # a pause or stop set before this check finds no process; after it, kills this one
            if not self._capturing():
                return False
            self._proc = proc = self._spawn()
        errors = threading.Thread(target=self._read_stderr, args=(proc,), daemon=True)
        errors.start()
        try:
            self._capture(proc)
        except Exception as e:  # lost, ended, garbled
            if self._capturing():
                errors.join(timeout=0.5)  # let the child's own last words arrive
                raise Lost(self._child_error or str(e) or "capture process exited") from e
            raise  # killed by stop() or pause(): not a fault
        finally:
            proc.kill()
            proc.wait()
            self._proc = None
        return False

    def _read_stderr(self, proc: subprocess.Popen) -> None:
        """Keep the child's last distinct line as the error; PortAudio may repeat one line endlessly."""
        self._child_error = ""
        for raw in proc.stderr:
            line = raw.decode(errors="replace").strip()
            if line and line != self._child_error:
                self._log.debug("%s capture process: %s", self._who, line)
                self._child_error = line

    def _capture(self, proc: subprocess.Popen) -> None:
        pipe = _Pipe(proc.stdout.fileno())
        hello = pipe.readline(FIRST_DATA_S)
        if hello is None:
            raise Lost(f"capture process did not start within {FIRST_DATA_S:g}s")
        rate = int(json.loads(hello)["rate"])
        win = round(self.window_s * rate)
        hop = max(1, round(self.hop_s * rate))
        pending = np.zeros(0, np.float32)
        start_sample = 0  # index (since the stream opened) of pending[0]
        t0_ns = t0_mono = None
        patience = FIRST_DATA_S
        seen_overflows = seen_dropped = 0
        while self._capturing():  # blocks the killed process wrote before it died are not used
            head = pipe.read(HEADER.size, patience)
            if head is None:
                raise Lost(f"no samples for {patience:g}s")
            n, overflows, dropped = HEADER.unpack(head)
            block = np.frombuffer(pipe.read(n * 4, STALL_S) or b"", np.float32)
            if len(block) != n:
                raise Lost("truncated block from capture process")
            self.counts["overflows"] += overflows - seen_overflows
            self.samples_dropped += dropped - seen_dropped
            seen_overflows, seen_dropped = overflows, dropped
            if t0_ns is None:  # anchor sample 0 to the clocks at the first block
                t0_ns = time.time_ns() - int(n / rate * 1e9)
                t0_mono = time.monotonic_ns() - int(n / rate * 1e9)
                patience = STALL_S
                self._running()
            self.samples_in += n
            pending = np.concatenate([pending, block])
            while len(pending) >= win:
                offset_ns = int(start_sample / rate * 1e9)
                self._window(pending[:win], rate, t0_ns + offset_ns, t0_mono + offset_ns)
                pending = pending[hop:]
                start_sample += hop

    def _window(self, samples: np.ndarray, rate: int, ts_ns: int, mono_ns: int) -> None:
        self.counts["windows"] += 1
        if not np.isfinite(samples).all():
            self.counts["bad"] += 1
            return
        if dbfs(samples) < self.silence_dbfs:
            self.counts["gated"] += 1
            return
        audio = samples if rate == self.target_rate else soxr.resample(samples, rate, self.target_rate)
        audio = _fit(audio.astype(np.float32, copy=False), self.window_samples)
        self.counts["kept"] += 1
        self._post(Frame(self.name, self.modality, audio, ts_ns, mono_ns))

    def _counters(self) -> dict[str, int]:
        return {
            **self.counts,
            "reconnects": self.errors,  # every error respawns the capture process
            "captured": self.counts["windows"],
            "samples_in": self.samples_in,
            "samples_dropped": self.samples_dropped,
        }


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    """Exactly n samples: resampling may be off by one."""
    if len(x) >= n:
        return x[:n]
    return np.pad(x, (0, n - len(x)))
