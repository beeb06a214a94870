"""`sensorium bench`: runs the benchmark suite in bench/ (the same as `python -m bench` / `make bench`).

A thin wrapper that starts `python -m bench` as a child process: the benchmarks import torch for their
PyTorch baselines and drive the demo's stand-ins, so they live outside the daemon's packages, and agent
never imports them (an import-linter contract checks it). The options mirror bench.runner's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    b = sub.add_parser("bench", help="measure throughput, latency, idle cost and memory (prints ratios)")
    b.add_argument("--quick", action="store_true", help="short windows: checks that every benchmark runs")
    b.add_argument("--only", help="comma list: pipeline, alternative, latency, idle, memory, query, scaling, profile")
    b.add_argument("--scale", type=float, help="multiply every measuring window")
    b.add_argument("--device", help="OpenVINO device (default CPU)")
    b.add_argument("--json", help="also write the tables and numbers to this file")
    b.set_defaults(fn=cmd_bench)


def bench_argv(args: argparse.Namespace) -> list[str]:
    """This command's options as `python -m bench` takes them (unset ones left to its defaults)."""
    argv = ["--quick"] if args.quick else []
    for opt in ("only", "scale", "device", "json"):
        if getattr(args, opt) is not None:
            argv += [f"--{opt}", str(getattr(args, opt))]
    return argv


def cmd_bench(args: argparse.Namespace) -> int:
    """The benchmarks' exit code (a child killed by signal N gives 128 + N, as a shell reports it)."""
    code = subprocess.run([sys.executable, "-m", "bench", *bench_argv(args)]).returncode
    return 128 - code if code < 0 else code
