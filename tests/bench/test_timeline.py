"""bench.timeline runs end to end at a small size, through the store process and in this process."""

from __future__ import annotations

from bench import timeline


def test_small_timeline_bench_reports_both_stores(capsys) -> None:
    assert timeline.main(["--memories", "1000", "--calls", "3", "--batch", "100"]) == 0
    out = capsys.readouterr().out
    heads = [line for line in out.splitlines() if "the day in 120 bins = 5 lanes" in line]
    assert len(heads) == 2 and all("1096 memories counted" in line for line in heads), out  # + 3 writes of 32
    assert out.count("day, 500 bins") == 2 and out.count("after a write") == 2
