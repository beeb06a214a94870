"""The benchmark runner runs and prints its tables (no timing is asserted: benchmarks are not tests)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from bench.common import Table
from bench.profile import parse
from tests.support.env import ROOT, require


def test_quick_pipeline_prints_tables_and_ratios(model_cache: Path, tmp_path: Path) -> None:
    require("Xvfb")
    env = {**os.environ, "SENSORIUM_CACHE": str(model_cache), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--scale", "0.2", "--only", "pipeline"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        env=env,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    for title in ("## 1. Image pipeline", "## 1. Audio pipeline", "## 1. Text encoder", "## Summary"):
        assert title in text, text
    assert "not measured" not in text, text
    # each pipeline row carries a measured rate and a benchmark_app rate, and the summary their ratio
    row = re.search(r"^synthetic 1280x720\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", text, re.M)
    assert row and float(row.group(2)) > 0 and float(row.group(3)) > 0, text
    assert re.search(r"^screen \(Xvfb 1024x768\)\s+[\d.]+\s+[\d.]+", text, re.M), text
    assert re.search(r"^image pipeline / benchmark_app \(synthetic\)\s+[\d.]+", text, re.M), text


def test_unknown_benchmark_is_a_usage_error() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench", "--only", "nope"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert out.returncode == 2 and "unknown benchmark" in out.stderr


def test_profile_parse_attributes_samples_to_roles(tmp_path: Path) -> None:
    root = str(ROOT)
    raw = tmp_path / "raw.txt"
    raw.write_text(
        f"Thread.run (threading.py:982);Dispatcher._run ({root}/agent/dispatcher.py:69);"
        f"ImageEncoder.preprocess ({root}/encoders/image.py:92) 30\n"
        f"Thread.run (threading.py:982);Memory._run ({root}/sinks/memory.py:140) 10\n"
        "Thread.run (threading.py:982);Condition.wait (threading.py:331) 50\n"
    )
    leaf, roles, total = parse(raw)
    assert total == 40  # the waiting thread is not a cost
    assert leaf["ImageEncoder.preprocess (encoders/image.py:92)"] == 30
    assert roles["dispatcher (preprocess + start_async)"] == 30
    assert roles["memory writer (store calls)"] == 10


def test_table_renders_aligned_rows() -> None:
    t = Table("t", ["name", "value"])
    t.add("a", 1.23456)
    t.add("longer", None)
    lines = t.render().splitlines()
    assert lines[0] == "## t"
    assert lines[3].startswith("a ") and lines[3].endswith("1.23")
    assert lines[4].endswith("-") and len(lines[3]) == len(lines[4])
