"""`sensorium eval`: how well memory answers a labelled question set (Recall@1/5/10, MRR, no-answer rate).

`--set FILE` asks the running daemon a user's own set (absolute ISO times) about its memory; `--scenario`
plays the built-in scenario on virtual sensors with a daemon of its own (bench/eval.py, in a child process:
the agent package never imports the benchmarks) and asks configs/eval/scenario.yaml.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from agent import config as config_mod
from agent.cli.args import load_config as _load
from agent.cli.args import parse_time


def cmd_eval(args: argparse.Namespace) -> int:
    from agent.cli.bus import client_keys
    from agent.eval import questions
    from agent.eval.run import memory_span, run
    from agent.eval.score import table
    from sinks.client import QueryError

    if args.scenario:
        cmd = [sys.executable, "-m", "bench.eval", *(["--json", args.json_out] if args.json_out else [])]
        return subprocess.run(cmd).returncode
    if not args.set:
        print("sensorium: give --set FILE (your labelled questions) or --scenario (the built-in one)", file=sys.stderr)
        return 2
    cfg = _load(args)
    endpoint, keys = config_mod.query_endpoint(cfg), client_keys(cfg, cfg.query.curve)
    try:
        qset = questions.load(args.set)
        if qset.relative:
            if args.start is None:
                print(f"sensorium: {args.set} gives times in seconds from a start: add --start TIME", file=sys.stderr)
                return 2
            qset = qset.at(args.start)
        span = memory_span(endpoint, keys, args.timeout)
        if span is None:
            print("sensorium: memory is empty: nothing to evaluate", file=sys.stderr)
            return 1
        qset.check_times(*span)
        report = run(endpoint, qset, keys, args.timeout)
    except questions.SetError as e:
        print(f"sensorium: {e}", file=sys.stderr)
        return 2
    except QueryError as e:
        print(f"sensorium: {e}", file=sys.stderr)
        return 1
    print(json.dumps(report.to_json(), indent=2) if args.json else table(report))
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(report.to_json(), f, indent=2)
    return 0


EXAMPLE = """\
a question set (YAML; kinds: object_screen, object_camera, text_screen, speech, sound, cross_sense, around, none):
  slack: 1.5                 # seconds of tolerance around every truth interval
  questions:
    - id: budget-call
      kind: speech
      query: the budget for next year
      modality: text         # optional filters, as --modality / --source of `sensorium query`
      source: mic0
      truth: [["2026-11-23T14:02:00", "2026-11-23T14:03:30"]]   # when it was captured
    - {id: giraffe, kind: none, query: a giraffe}                # right answer: "no memories match"
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser(
        "eval",
        help="score recall on a labelled question set (R@1/5/10, MRR per kind, no-answer rate, misses)",
        description=__doc__.split("\n\n")[1].replace("\n", " "),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = e.add_mutually_exclusive_group()
    what.add_argument("--set", metavar="FILE", help="a YAML question set (format: configs/eval/scenario.yaml)")
    what.add_argument("--scenario", action="store_true", help="play the built-in scenario and ask its questions")
    e.add_argument("--start", type=parse_time, help="with a set whose times are seconds: when its timeline began")
    e.add_argument("--json", action="store_true", help="the report as JSON instead of the table")
    e.add_argument("--json-out", metavar="FILE", help="also write the JSON report to FILE")
    e.add_argument("--timeout", type=float, default=30.0, help="seconds per request")
    e.set_defaults(fn=cmd_eval)
