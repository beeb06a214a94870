"""Shared fixtures: real components (Xvfb, feh, PulseAudio, built models), failing instead of skipping under CI.

The stand-ins themselves live in demo/standins.py, shared with `make demo`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from demo.standins import Display, Pulse
from tests.support.env import ROOT, require


@pytest.fixture(scope="session")
def model_cache() -> Path:
    """Built default models, shared by all tests and kept between runs (building takes a minute)."""
    from encoders.modelstore import ModelStore

    root = Path(os.environ.get("SENSORIUM_CACHE") or ROOT / ".cache" / "test-models")
    store = ModelStore(root)
    # the Whisper models take ~30 s (tiny.en), ~45 s (base) and ~2 min (base-int8, NNCF) to build on 2 cores
    speech = ("whisper-tiny-en", "whisper-base", "whisper-base-int8")
    for name in ("minilm-l6", "effnet-lite0", "silero-vad", "ppocr-v6", *speech):
        store.build(name)
    return root


@pytest.fixture
def home(tmp_path: Path, model_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private SENSORIUM_HOME per test, with the shared model cache."""
    monkeypatch.setenv("SENSORIUM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SENSORIUM_CACHE", str(model_cache))
    return tmp_path / "home"


@pytest.fixture
def xvfb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Display]:
    """A fresh Xvfb (1024×768) on a free display number; DISPLAY points at it."""
    require("Xvfb")
    require("feh")
    display = Display(tmp_path)
    try:
        display.start()
    except RuntimeError as e:
        pytest.fail(str(e))
    monkeypatch.setenv("DISPLAY", display.name)
    yield display
    display.close()


@pytest.fixture
def pulse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pulse]:
    """PulseAudio with a null sink; sounddevice's default input records what `play` plays."""
    require("pulseaudio")
    require("pactl")
    require("paplay")
    server = Pulse(tmp_path)
    try:
        server.start()
    except RuntimeError as e:
        pytest.fail(str(e))
    for k, v in server.env().items():
        monkeypatch.setenv(k, v)
    yield server
    server.stop()
