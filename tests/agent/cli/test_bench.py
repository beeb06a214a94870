"""`sensorium bench` runs `python -m bench` as a child: same options, same exit code, no import of bench."""

from __future__ import annotations

from agent.cli.main import parser
from tests.support.env import sensorium


def test_options_reach_the_benchmarks_as_given() -> None:
    args = parser().parse_args(["bench", "--quick", "--only", "pipeline,idle", "--scale", "0.2", "--json", "o.json"])
    assert args.fn.__name__ == "cmd_bench"
    from agent.cli.bench import bench_argv

    assert bench_argv(args) == ["--quick", "--only", "pipeline,idle", "--scale", "0.2", "--json", "o.json"]
    assert bench_argv(parser().parse_args(["bench"])) == []  # unset options keep bench.runner's defaults


def test_a_usage_error_in_the_benchmarks_is_exit_2() -> None:
    out = sensorium("bench", "--only", "nope", check=False)
    assert out.returncode == 2, out.stderr
    assert "unknown benchmark(s): nope" in out.stderr
