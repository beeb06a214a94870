"""bench/ocr.py: a quick run against rapidocr on real ONNX files, offline; the network guard; its goal rows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.runner import goals
from tests.support.env import ROOT
from tests.support.net import free_port


def test_quick_run_reads_the_pages_offline_and_prints_cer_speed_and_memory() -> None:
    pytest.importorskip("rapidocr", reason="rapidocr is installed by `make install` (see the Makefile)")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "bench.ocr", "--quick", "--engines", "rapidocr", "--pages", "slide,spreadsheet"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    # the truth boxes line up with what a real OCR engine reads: both pages come out nearly right at both sizes
    for page, chars in (("slide", 251), ("spreadsheet", 464)):
        for screen in ("1280x720", "1920x1080"):
            row = re.search(rf"^{page}\s+{screen}\s+{chars}\s+([\d.]+)\s*$", text, re.M)
            assert row and float(row.group(1)) < 5, text
    assert re.search(r"^all, <14px\s+1280x720\s+\d+\s+[\d.]+", text, re.M), text
    speed = re.search(r"^1920x1080\s+rapidocr\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$", text, re.M)
    assert speed and min(float(v) for v in speed.groups()) > 0, text  # ms, CPU ms, 1st read, again
    assert re.search(r"^1920x1080\s+speed ours/rapidocr\s+-\s+-", text, re.M), text  # no ratio without ours
    mem = re.search(r"^rapidocr\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s*$", text, re.M)
    assert mem and float(mem.group(4)) > 0, text  # reading costs memory
    assert mem.group(6) == "0", text  # no connection beyond loopback was even attempted


def test_quick_run_of_our_engine_reads_a_page_offline(model_cache: Path) -> None:
    from encoders.modelstore import ModelStore

    ModelStore(model_cache).build("ppocr-v6")  # from the rapidocr wheel's ONNX files, no download
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SENSORIUM_CACHE": str(model_cache)}
    cmd = [sys.executable, "-m", "bench.ocr", "--quick", "--engines", "ours", "--pages", "invoice"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    for screen in ("1280x720", "1920x1080"):
        row = re.search(rf"^invoice\s+{screen}\s+527\s+([\d.]+)\s*$", out.stdout, re.M)
        assert row and float(row.group(1)) < 5, out.stdout
    mem = re.search(r"^ours\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s*$", out.stdout, re.M)
    assert mem and mem.group(6) == "0", out.stdout


def test_the_child_refuses_and_counts_connections_beyond_loopback() -> None:
    """Run in a child: an audit hook cannot be removed, and this one must not outlive the check."""
    port = free_port()
    code = f"""
import socket
from bench.ocr import guard_network
seen = []
guard_network(seen)
with socket.socket() as s:  # TEST-NET-1: the hook refuses before any packet is sent
    try:
        s.connect(("192.0.2.1", 443))
        print("connected")
    except PermissionError:
        print("refused 192.0.2.1")
try:
    socket.create_connection(("pypi.org", 443), timeout=1)
    print("connected")
except PermissionError:
    print("refused pypi.org")
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=1)
except ConnectionRefusedError:
    print("loopback tried")
print(seen)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[:3] == ["refused 192.0.2.1", "refused pypi.org", "loopback tried"], out.stdout
    assert lines[3] == "['connect 192.0.2.1:443', 'lookup pypi.org']", out.stdout


def test_unknown_pages_and_engines_are_usage_errors() -> None:
    for args in (["--pages", "nope"], ["--engines", "tesseract"]):
        out = subprocess.run([sys.executable, "-m", "bench.ocr", *args], capture_output=True, text=True, cwd=ROOT)
        assert out.returncode == 2 and "unknown" in out.stderr, out.stderr


def test_the_runner_lists_the_ocr_goals() -> None:
    t = goals(
        {"ocr.ours.cer_ge14_pct": 3.5, "ocr.ours.ms_720p": 640.0, "ocr.speed_720p": 1.3, "ocr.ours.rss_added_mb": 90}
    )
    met = {row[0]: row[3] for row in t.rows}
    assert met["OCR character error rate % at >= 14 px"] == "NO"
    assert met["OCR ms per changed 720p frame, 1 thread"] == "yes"
    assert met["OCR speed ours / rapidocr-onnxruntime (720p)"] == "yes"
    assert met["OCR ms per changed 1080p frame, 1 thread"] == "-"  # not measured
    assert met["OCR RSS added MB (load + reads, peak)"] == "yes"
