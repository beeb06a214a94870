"""`sensorium bench`: runs the benchmark suite in bench/ (the same as `python -m bench` / `make bench`).

A thin wrapper: the benchmarks import torch for their PyTorch baselines, so they live outside the
daemon's packages and are imported only when this command runs. The options mirror bench.runner's.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("bench", help="measure throughput, latency, idle cost and memory (prints ratios)")
    b.add_argument("--quick", action="store_true", help="short windows: checks that every benchmark runs")
    b.add_argument("--only", help="comma list: pipeline, alternative, latency, idle, memory, query, scaling, profile")
    b.add_argument("--scale", type=float, help="multiply every measuring window")
    b.add_argument("--device", help="OpenVINO device (default CPU)")
    b.add_argument("--json", help="also write the tables and numbers to this file")
    b.set_defaults(fn=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    argv = ["--quick"] if args.quick else []
    for opt in ("only", "scale", "device", "json"):
        if getattr(args, opt) is not None:
            argv += [f"--{opt}", str(getattr(args, opt))]
    try:
        from bench.runner import main as run
    except ImportError:  # an editable install made before bench/ existed: use the source tree
        sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
        from bench.runner import main as run
    return run(argv)
