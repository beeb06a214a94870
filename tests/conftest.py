"""Shared fixtures: real components (Xvfb, feh, built models), failing instead of skipping under CI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(tool: str) -> str:
    """Path of a system tool; a missing one skips locally but fails under CI (make test installs them)."""
    path = shutil.which(tool)
    if path is None:
        msg = f"{tool} not installed (make test installs it when run as root)"
        if IN_CI:
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def model_cache() -> Path:
    """Built default models, shared by all tests and kept between runs (building takes a minute)."""
    from encoders.modelstore import ModelStore

    root = Path(os.environ.get("SENSORIUM_CACHE") or ROOT / ".cache" / "test-models")
    store = ModelStore(root)
    for name in ("minilm-l6", "effnet-lite0", "silero-vad"):
        store.build(name)
    return root


@pytest.fixture
def home(tmp_path: Path, model_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private SENSORIUM_HOME per test, with the shared model cache."""
    monkeypatch.setenv("SENSORIUM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SENSORIUM_CACHE", str(model_cache))
    return tmp_path / "home"


class Display:
    """An Xvfb screen with `show(image)` putting a photo full-screen in a real X window (feh)."""

    def __init__(self, name: str, tmp: Path) -> None:
        self.name = name
        self.tmp = tmp
        self._viewer: subprocess.Popen | None = None
        self._n = 0

    def show(self, rgb: np.ndarray) -> None:
        self._n += 1
        path = self.tmp / f"slide{self._n}.png"
        cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        old = self._viewer
        env = {**os.environ, "DISPLAY": self.name}
        self._viewer = subprocess.Popen(
            [require("feh"), "-F", "-Z", "--hide-pointer", str(path)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.7)  # let the new window map before the old one goes, so no black frame is shown
        if old:
            old.terminate()
            old.wait()

    def close(self) -> None:
        if self._viewer:
            self._viewer.terminate()
            self._viewer.wait()


@pytest.fixture
def xvfb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Display]:
    """A fresh Xvfb (1024×768) on a free display number; DISPLAY points at it."""
    binary = require("Xvfb")
    r, w = os.pipe()
    proc = subprocess.Popen(
        [binary, "-displayfd", str(w), "-screen", "0", "1024x768x24", "-nolisten", "tcp"],
        pass_fds=(w,),
        stderr=subprocess.DEVNULL,
    )
    os.close(w)
    with os.fdopen(r) as f:
        number = f.readline().strip()
    if not number:
        proc.kill()
        pytest.fail("Xvfb did not start")
    display = Display(f":{number}", tmp_path)
    monkeypatch.setenv("DISPLAY", display.name)
    yield display
    display.close()
    proc.terminate()
    proc.wait(5)


def sensorium(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    """Run the CLI in a separate process, as a user would."""
    out = subprocess.run(
        [sys.executable, "-m", "agent", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )
    if check and out.returncode != 0:
        raise AssertionError(f"sensorium {' '.join(args)} exited {out.returncode}:\n{out.stderr}")
    return out


class Pulse:
    """A private PulseAudio server (own socket, no user config) with a null sink whose monitor is the mic."""

    def __init__(self, tmp: Path) -> None:
        self.dir = tmp / "pulse"
        self.dir.mkdir(exist_ok=True)
        self.socket = self.dir / "native"
        self.proc: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        return {"PULSE_SERVER": f"unix:{self.socket}", "PULSE_RUNTIME_PATH": str(self.dir)}

    def start(self) -> None:
        binary = require("pulseaudio")
        self.proc = subprocess.Popen(
            [
                binary,
                "-n",  # no default script: only what we load
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--use-pid-file=no",
                "--disallow-exit",
                f"--load=module-native-protocol-unix socket={self.socket} auth-anonymous=1",
                "--load=module-null-sink sink_name=sensorium_test rate=48000",
            ],
            env={**os.environ, **self.env(), "HOME": str(self.dir)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.pactl("set-default-source", "sensorium_test.monitor", check=False).returncode == 0:
                self.pactl("set-default-sink", "sensorium_test")
                return
            time.sleep(0.1)
        pytest.fail("PulseAudio did not start")

    def pactl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            [require("pactl"), *args], env={**os.environ, **self.env()}, capture_output=True, check=check, timeout=10
        )

    def play(self, wav: Path, wait: bool = True) -> subprocess.Popen:
        p = subprocess.Popen([require("paplay"), str(wav)], env={**os.environ, **self.env()})
        if wait:
            p.wait(60)
        return p

    def stop(self) -> None:
        if self.proc:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None


@pytest.fixture
def pulse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pulse]:
    """PulseAudio with a null sink; sounddevice's default input records what `play` plays."""
    server = Pulse(tmp_path)
    server.start()
    for k, v in server.env().items():
        monkeypatch.setenv(k, v)
    yield server
    server.stop()


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    """16-bit mono WAV with the standard library (what paplay reads)."""
    import wave

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
    subprocess.run([require("espeak-ng"), "-w", str(path), text], check=True, timeout=30)
    return path
