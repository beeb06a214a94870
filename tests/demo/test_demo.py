"""`python -m demo` as `make demo` runs it: real stand-ins, the real daemon, answers found, nothing left.

Every process the demo starts inherits its environment, so a TMPDIR unique to this test marks them: after
the demo exits, no process may still carry it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.env import ROOT, require

TOOLS = ("Xvfb", "feh", "pulseaudio", "pactl", "paplay", "espeak-ng", "chromium", "chromedriver")
# the demo's spoken sentences (demo/__main__.py SAID) by their query: words of which at least one must be heard
HEARD = {"budget meeting": ("budget", "thursday"), "slides for Maria": ("slides", "maria")}


def answers(output: str, text: str) -> list[tuple[str, str]]:
    """(source, labels) of each answer the demo printed for `text`, best first."""
    lines = output.splitlines()
    i = lines.index(f'$ sensorium query "{text}" -k 3')
    rows = []  # date, time, source, score, labels… thumb; up to 3, fewer where the rest scored below the threshold
    for line in lines[i + 1 : i + 4]:
        if not line.strip() or "no memories match" in line:
            break
        rows.append(line.split(None, 4))
    return [(row[2], row[4] if len(row) > 4 else "") for row in rows]


def transcript(output: str, text: str) -> tuple[list[str], str]:
    """The demo's transcript answer for `text`: its row (date, time, source, score, …) and its snippet."""
    lines = output.splitlines()
    i = lines.index(f'$ sensorium query "{text}" --modality text --source mic0 -k 1')
    return lines[i + 1].split(), lines[i + 2].strip()


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
        timeout=240,
    )
    print(out.stdout)
    assert out.returncode == 0, out.stdout + out.stderr
    assert answers(out.stdout, "a cat")[0][0] == "screen0", out.stdout
    assert answers(out.stdout, "someone talking")[0][0] == "mic0", out.stdout
    # the slideshow shows the cup for one slide, the camera all the time: the camera must answer too
    coffee = answers(out.stdout, "a cup of coffee")
    cup = [("coffee mug" in labels or "espresso" in labels) for _, labels in coffee]
    assert "cam0" in [source for source, _ in coffee], out.stdout
    assert cup[0] and all(c for (source, _), c in zip(coffee, cup, strict=True) if source == "cam0"), out.stdout
    assert "emb.image.cam0" in out.stdout and "emb.audio.mic0" in out.stdout, out.stdout  # the live tail
    # what was said: each sentence's transcript, found by its words, with the time it was said
    for text, words in HEARD.items():
        row, snippet = transcript(out.stdout, text)
        assert row[2] == "mic0" and re.fullmatch(r"\d\d:\d\d:\d\d", row[1]), out.stdout
        assert any(w in snippet.lower() for w in words), out.stdout
    tail = out.stdout.split("$ sensorium tail emb.text.mic0", 1)[1].split("$ sensorium status", 1)[0]
    assert any(w in tail.lower() for words in HEARD.values() for w in words), out.stdout
    m = re.search(r"^  speech on \S+ \(whisper-[\w-]+\): (\d+) utterances transcribed", out.stdout, re.M)
    assert m and int(m.group(1)) >= len(HEARD), out.stdout
    # recall: the watch fired on the cat slide, and around the first sentence the screen and the sound were there
    assert re.search(r"match\.cat +seq=\d+ .*score=0\.\d+", out.stdout), out.stdout
    near = out.stdout.split("$ sensorium around", 1)[1].split("$ sensorium query", 1)[0]
    assert re.search(r"^  image:screen0$", near, re.M) and re.search(r"^  audio:mic0$", near, re.M), out.stdout
    assert "$ sensorium query" in out.stdout.split("$ sensorium around", 1)[1], out.stdout  # the moment query ran
    # an MCP client (as an assistant) lists the tools and finds the cat on screen through `sensorium mcp`
    assert "tools: search, timeline, around, status" in out.stdout, out.stdout
    assert re.search(r"search\('a cat'\) → \S+ screen0 .*cat", out.stdout), out.stdout
    # the web page: its link with the token, and a screenshot after the search (a PNG a person can open)
    assert re.search(r"^  page: http://127\.0\.0\.1:\d+/#token=\S{16,}$", out.stdout, re.M), out.stdout
    shot = re.search(r"opening its moment \(headless chromium\): (\S+\.png)$", out.stdout, re.M)
    assert shot and Path(shot.group(1)).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", out.stdout
    assert survivors(f"TMPDIR={tmp_path}") == []
