"""6. Query latency vs stored memories: runs bench/query.py (the memory code's own benchmark) and shows its output.

It runs as `python -m bench.query` (quick: `--sizes 2000 --queries 10`) in a child process, so its
interface is only its command line; its output is printed under this heading.
"""

from __future__ import annotations

import subprocess
import sys

from .common import ROOT, BenchError, Opts, Table


def run(opts: Opts) -> list[Table]:
    if not (ROOT / "bench" / "query.py").is_file():
        raise BenchError("bench/query.py is not there yet (it belongs to the memory benchmark)")
    # --quick: one small size so the call is checked, not the scaling (the full run does 10k/100k/300k)
    cmd = [sys.executable, "-m", "bench.query", *(["--sizes", "2000", "--queries", "10"] if opts.quick else [])]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    t = Table("6. Query latency vs stored memories (bench/query.py)", [])
    t.text = out.stdout.rstrip()
    if out.returncode != 0:
        t.notes.append(f"`{' '.join(cmd[1:])}` exited {out.returncode}: {out.stderr.strip()[-600:]}")
    return [t]
