"""`python -m demo` as `make demo` runs it: real stand-ins, the real daemon, answers found, nothing left.

Every process the demo starts inherits its environment, so a TMPDIR unique to this test marks them: after
the demo exits, no process may still carry it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.env import ROOT, require

TOOLS = ("Xvfb", "feh", "pulseaudio", "pactl", "paplay", "espeak-ng")


def first_source(output: str, text: str) -> str:
    """Source column of the best answer the demo printed for `text`."""
    lines = output.splitlines()
    i = lines.index(f'$ sensorium query "{text}" -k 3')
    return lines[i + 1].split()[2]  # date, time, source, score, labels…, thumb


def survivors(marker: str) -> list[str]:
    """Command lines of processes whose environment holds `marker`."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if marker.encode() in (proc / "environ").read_bytes().split(b"\0"):
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:  # gone meanwhile, or not ours
            continue
    return found


def test_demo_answers_from_every_sense_and_cleans_up(model_cache: Path, tmp_path: Path) -> None:
    for tool in TOOLS:
        require(tool)
    pytest.importorskip("skimage")
    env = {**os.environ, "TMPDIR": str(tmp_path), "SENSORIUM_CACHE": str(model_cache)}
    env.pop("SENSORIUM_HOME", None)
    out = subprocess.run(
        [sys.executable, "-m", "demo", "--seconds", "10"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    print(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr
    assert first_source(out.stdout, "a cat") == "screen0", out.stdout
    assert first_source(out.stdout, "someone talking") == "mic0", out.stdout
    assert first_source(out.stdout, "a cup of coffee") in ("cam0", "screen0"), out.stdout
    assert "emb.image.cam0" in out.stdout and "emb.audio.mic0" in out.stdout, out.stdout  # the live tail
    assert survivors(f"TMPDIR={tmp_path}") == []
