"""Virtual sensors for `make demo` and the tests: an Xvfb screen showing photos (feh), a private PulseAudio
server whose null sink's monitor is the microphone (fed by `paplay`, `espeak-ng`), and an MJPEG camera on
127.0.0.1.

They live in the package, not under tests/, because the demo runs them on machines without sensors. Each
starts real processes in their own session, so a Ctrl-C meant for the demo reaches only the demo, which
then stops them in order. A missing tool raises `MissingTool` naming the Debian package to install.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

# Tool → the Debian package that ships it (the Makefile's APT_TEST installs them all).
PACKAGES = {
    "Xvfb": "xvfb",
    "feh": "feh",
    "pulseaudio": "pulseaudio",
    "pactl": "pulseaudio-utils",
    "paplay": "pulseaudio-utils",
    "espeak-ng": "espeak-ng",
}


class MissingTool(RuntimeError):
    """A system tool a stand-in needs is not installed."""


def which(tool: str) -> str:
    """Path of a system tool, or `MissingTool` saying which apt package provides it."""
    path = shutil.which(tool)
    if path is None:
        pkg = PACKAGES.get(tool, tool)
        raise MissingTool(f"{tool} not found: install it with `sudo apt-get install {pkg}` (or run make as root)")
    return path


def stop_process(proc: subprocess.Popen | None, timeout: float = 5.0, sig: int = signal.SIGTERM) -> None:
    """Signal the process's whole group (our stand-ins lead their own session), kill it if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            proc.kill()
        proc.wait(timeout)


# --- screen -------------------------------------------------------------------------------------------------


class Display:
    """An Xvfb screen with `show(image)` putting a photo full-screen in a real X window (feh)."""

    def __init__(self, tmp: Path, size: str = "1024x768x24") -> None:
        self.tmp = tmp
        self.size = size
        self.name = ""
        self.proc: subprocess.Popen | None = None
        self._viewer: subprocess.Popen | None = None
        self._n = 0

    def start(self) -> None:
        """Xvfb on a free display number (it picks one and writes it to a pipe we read once it accepts
        clients); started again after the server died, it comes back on the same number."""
        binary = which("Xvfb")
        again = [self.name] if self.name else []
        r, w = os.pipe()
        self.proc = subprocess.Popen(
            [binary, *again, "-displayfd", str(w), "-screen", "0", self.size, "-nolisten", "tcp"],
            pass_fds=(w,),
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        os.close(w)
        with os.fdopen(r) as f:
            number = f.readline().strip()
        if not number:
            self.close()
            raise RuntimeError("Xvfb did not start")
        self.name = f":{number}"

    def show(self, rgb: np.ndarray, timeout: float = 10.0, title: str | None = None) -> None:
        """Put `rgb` full-screen; returns once its window is mapped, which is once it is drawn (feh makes the
        image the window's background before mapping it: a grab right after the map equals one taken later).
        The previous viewer goes only then, so the screen is never black in between. A viewer that dies or
        does not map within `timeout` raises RuntimeError, and the previous one stays up."""
        import Xlib.display  # here: only the screen stand-in needs it

        self._n += 1
        path = self.tmp / f"slide{self._n}.png"
        cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        x = Xlib.display.Display(self.name)
        viewer: subprocess.Popen | None = None
        try:
            root = x.screen().root
            before = {w.id for w in root.query_tree().children}
            viewer = subprocess.Popen(
                [which("feh"), "-F", "-Z", "--hide-pointer", *(["--title", title] if title else []), str(path)],
                env={**os.environ, "DISPLAY": self.name},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            deadline = time.monotonic() + timeout
            while not _new_viewable(root, before):
                if viewer.poll() is not None:
                    raise RuntimeError(f"feh exited {viewer.returncode} before showing {path}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"feh did not map its window on {self.name} within {timeout:g} s")
                time.sleep(0.01)
        except BaseException:
            stop_process(viewer)
            raise
        finally:
            x.close()
        old, self._viewer = self._viewer, viewer
        stop_process(old)

    def close(self) -> None:
        """The viewer, then the screen."""
        stop_process(self._viewer)
        self._viewer = None
        stop_process(self.proc)
        self.proc = None


def _new_viewable(root, before: set[int]) -> bool:
    """Whether a top-level window not in `before` is viewable (mapped, with mapped ancestors)."""
    from Xlib import X
    from Xlib.error import BadDrawable, BadMatch, BadWindow

    for win in root.query_tree().children:
        if win.id in before:
            continue
        try:
            if win.get_attributes().map_state == X.IsViewable:
                return True
        except (BadWindow, BadDrawable, BadMatch):  # gone meanwhile
            continue
    return False


# --- microphone ---------------------------------------------------------------------------------------------


class Pulse:
    """A private PulseAudio server (own socket, no user config) with a null sink whose monitor is the mic."""

    def __init__(self, tmp: Path, sink: str = "sensorium_test") -> None:
        self.dir = tmp / "pulse"
        self.dir.mkdir(exist_ok=True)
        self.socket = self.dir / "native"
        self.sink = sink
        self.proc: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        """What a client (sounddevice through ALSA's pulse plugin, paplay) needs to reach this server only."""
        return {"PULSE_SERVER": f"unix:{self.socket}", "PULSE_RUNTIME_PATH": str(self.dir)}

    def start(self) -> None:
        """Start the server and make the sink's monitor the default input; restartable after `stop()`."""
        self.proc = subprocess.Popen(
            [
                which("pulseaudio"),
                "-n",  # no default script: only what we load
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--use-pid-file=no",
                "--disallow-exit",
                f"--load=module-native-protocol-unix socket={self.socket} auth-anonymous=1",
                f"--load=module-null-sink sink_name={self.sink} rate=48000",
            ],
            env={**os.environ, **self.env(), "HOME": str(self.dir)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.pactl("set-default-source", f"{self.sink}.monitor", check=False).returncode == 0:
                self.pactl("set-default-sink", self.sink)
                return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("PulseAudio did not start")

    def pactl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [which("pactl"), *args], env={**os.environ, **self.env()}, capture_output=True, check=check, timeout=10
        )

    def play(self, wav: Path, wait: bool = True) -> subprocess.Popen:
        """Play into the null sink; with `wait=False` the caller owns (and must stop) the returned process."""
        p = subprocess.Popen([which("paplay"), str(wav)], env={**os.environ, **self.env()}, start_new_session=True)
        if wait:
            p.wait(60)
        return p

    def stop(self) -> None:
        """Kill, like a sound server crash (the microphone tests rely on that)."""
        stop_process(self.proc, sig=signal.SIGKILL)
        self.proc = None


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    """16-bit mono WAV with the standard library (what paplay reads)."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def tone(seconds: float, freq: float = 440.0, rate: int = 48000, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noise(seconds: float, rate: int = 48000, amp: float = 0.3) -> np.ndarray:
    return (amp * np.random.default_rng(0).uniform(-1, 1, int(seconds * rate))).astype(np.float32)


def speech(path: Path, text: str) -> Path:
    """Spoken English from espeak-ng, as a WAV file."""
    subprocess.run([which("espeak-ng"), "-w", str(path), text], check=True, timeout=30)
    return path


# --- camera -------------------------------------------------------------------------------------------------

BOUNDARY = "frame"


def encode(frames: list[np.ndarray]) -> list[bytes]:
    """JPEG bytes of RGB frames, encoded once up front so serving costs no CPU."""
    out = []
    for rgb in frames:
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise ValueError("JPEG encoding failed")
        out.append(buf.tobytes())
    return out


class _Server(ThreadingHTTPServer):
    allow_reuse_address = True  # rebind the same port at once after stop(), despite TIME_WAIT
    block_on_close = True  # server_close() joins the handler threads: nothing outlives stop()

    def __init__(self, port: int, owner: MjpegServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # keep demo and test output quiet
        pass

    def do_GET(self) -> None:
        if self.path.split("?")[0] != "/stream":
            self.send_error(404)
            return
        owner = self.server.owner
        owner._track(self.connection, True)
        try:
            self.send_response(200)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            i = 0
            while not owner._stopping.is_set():
                jpegs = owner._jpegs
                jpeg = jpegs[i % len(jpegs)]
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
                self.wfile.write(head.encode() + jpeg + b"\r\n")
                self.wfile.flush()
                i += 1
                owner._stopping.wait(owner.period)
        except OSError:  # client went away or stop() cut the connection
            pass
        finally:
            owner._track(self.connection, False)


class MjpegServer:
    """A network camera on 127.0.0.1: `GET /stream` serves `multipart/x-mixed-replace` JPEG parts.

    It can crash like one: `stop()` closes the listening socket and cuts every client connection, and
    `start()` brings it back on the same port, so reconnect logic is exercised for real.
    """

    def __init__(self, frames: list[np.ndarray], fps: float, port: int = 0) -> None:
        self.period = 1.0 / fps
        self.port = port
        self._jpegs = encode(frames)
        self._stopping = threading.Event()
        self._clients: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream"

    def set_frames(self, frames: list[np.ndarray]) -> None:
        """Change what every client sees from its next part on."""
        self._jpegs = encode(frames)

    def start(self) -> None:
        self._stopping.clear()
        self._httpd = _Server(self.port, self)
        self.port = self._httpd.server_address[1]  # keep the port so a restart comes back on it
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="mjpeg", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Crash like a camera: stop listening and cut every open stream."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        with self._lock:
            for conn in self._clients:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._httpd.server_close()  # closes the listening socket and joins handler threads
        if self._thread:
            self._thread.join(timeout=2)
        self._httpd = self._thread = None

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._clients.add(conn)
            else:
                self._clients.discard(conn)

    def __enter__(self) -> MjpegServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
