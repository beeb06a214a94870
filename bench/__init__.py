"""Benchmarks (issue 7): `python -m bench`, `make bench` or `sensorium bench`; they print tables and ratios.

Not tests: nothing here asserts a timing. Each module has `run(opts) -> list[Table]`; `bench.runner`
runs them in one process, one after the other, and prints the ratios against the goals at the end.
"""
