"""Only the audio row of bench/pipeline.py (`python -m bench --only audio`): a quick A/B of the audio path."""

from __future__ import annotations

from .common import Opts, Table, bench_home, guarded
from .harness import device_config
from .pipeline import audio_table


def run(opts: Opts) -> list[Table]:
    with bench_home() as tmp:
        return [guarded("1. Audio pipeline vs benchmark_app", audio_table, tmp, opts, device_config(opts.device))]
