"""bench.web --quick fills a data dir, serves it from a real daemon and prints both tables (no timing asserted)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.env import ROOT


def test_quick_run_prints_page_load_search_and_stream_tables(model_cache: Path) -> None:
    env = {**os.environ, "SENSORIUM_CACHE": str(model_cache), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "bench.web", "--quick"], capture_output=True, text=True, timeout=180, cwd=ROOT, env=env
    )
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert "not measured" not in text, text
    assert "2,000 memories (image 800, audio 800, text 400): 3,600 rows written" in text, text
    for step in (
        r"GET /",
        r"GET /static/: \d+ files",
        r"GET /api/status",
        r"page load \(all of the above\)",
        r"search: POST /api/query k=20",
    ):
        assert re.search(rf"^{step}\s+5\s+[\d.]+\s+[\d.]+\s+[\d.]+", text, re.M), text
    # the timeline op is timed once the daemon has it, and said to be missing until then
    assert re.search(r"^GET /api/timeline \(120 bins\)\s+5\s+[\d.]+", text, re.M) or "unknown op (404)" in text, text
    # every reading client got events; the pipeline ran in all three windows
    row = re.search(r"^10 reading \+ 1 stalled\s+([\d.]+)\s+[\d.]+\s+[\d.]+\s+(\d+)\s+(\d+)-(\d+)", text, re.M)
    assert row and float(row.group(1)) > 0 and int(row.group(3)) > 0, text
    assert re.search(r"^none\s+[\d.]+", text, re.M) and re.search(r"^none, after\s+[\d.]+", text, re.M), text
