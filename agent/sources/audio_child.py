"""The microphone's capture process: PortAudio stream → stdout, nothing else.

PortAudio 19.6's ALSA host (Debian 12's) can spin forever in its callback thread, printing one
line per turn, when the PCM underneath fails, e.g. when PulseAudio is killed: its error path in
`PaAlsaStream_WaitForFrames` jumps back to itself and thread cancellation is disabled there, so no
stop, abort or close ever returns. Running the stream in a child process the daemon can kill is the
only reliable way out, and it also rescans devices on every reconnect for free.

Protocol on stdout: one JSON line {"rate", "name"}, then blocks of HEADER + float32 mono samples.
`--probe` prints the JSON line and exits. Errors go to stderr, one line, exit 1.
"""

from __future__ import annotations

import argparse
import json
import signal
import struct
import sys
import threading
from collections import deque

import numpy as np

HEADER = struct.Struct("<Iqq")  # samples in this block, overflows so far, samples dropped so far


class SampleQueue:
    """Blocks from the audio callback to the writer loop; bounded, oldest dropped and counted."""

    def __init__(self, max_samples: int) -> None:
        self._blocks: deque[np.ndarray] = deque()
        self._size = 0
        self._max = max_samples
        self._cond = threading.Condition()
        self.dropped = 0

    def push(self, block: np.ndarray) -> None:
        with self._cond:
            self._blocks.append(block)
            self._size += len(block)
            while self._size > self._max:
                old = self._blocks.popleft()
                self._size -= len(old)
                self.dropped += len(old)
            self._cond.notify()

    def pop_all(self, timeout: float) -> np.ndarray | None:
        with self._cond:
            if not self._cond.wait_for(lambda: self._size > 0, timeout):
                return None
            out = np.concatenate(self._blocks)
            self._blocks.clear()
            self._size = 0
            return out


def parse_device(text: str) -> str | int | None:
    if text == "":
        return None
    return int(text) if text.isdigit() else text


def _die_with_parent() -> None:
    """Linux: get SIGKILL when the daemon dies, so a stuck stream never outlives it."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="sensorium-audio-capture")
    ap.add_argument("--device", default="")
    ap.add_argument("--block-s", type=float, default=0.05)
    ap.add_argument("--probe", action="store_true")
    args = ap.parse_args(argv)
    _die_with_parent()
    out = sys.stdout.buffer
    try:
        import sounddevice as sd

        device = parse_device(args.device)
        info = sd.query_devices(device, "input")
        rate = int(info["default_samplerate"])
        out.write(json.dumps({"rate": rate, "name": info["name"]}).encode() + b"\n")
        out.flush()
        if args.probe:
            return 0
        queue = SampleQueue(max_samples=rate * 10)
        overflows = 0

        def callback(indata: np.ndarray, frames: int, t, status) -> None:
            nonlocal overflows
            if status.input_overflow:
                overflows += 1
            queue.push(indata[:, 0].copy())  # only copy

        block = round(rate * args.block_s)
        with sd.InputStream(
            device=device, channels=1, samplerate=rate, blocksize=block, dtype="float32", callback=callback
        ) as stream:
            while stream.active:
                samples = queue.pop_all(timeout=0.2)
                if samples is not None:
                    out.write(HEADER.pack(len(samples), overflows, queue.dropped))
                    out.write(samples.tobytes())
                    out.flush()
        print("audio stream stopped", file=sys.stderr)
        return 1
    except BrokenPipeError:  # the daemon went away
        return 0
    except Exception as e:  # PortAudioError, ValueError (unknown device), OSError (no libportaudio)
        print((str(e).strip().splitlines() or [type(e).__name__])[0], file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
