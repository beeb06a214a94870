"""bench.keywords runs end to end at a small size and reports both stores."""

from __future__ import annotations

from bench import keywords


def test_small_keyword_bench_reports_both(capsys) -> None:
    assert keywords.main(["--n", "600", "--queries", "4", "--days", "2"]) == 0
    out = capsys.readouterr().out
    chroma = next(line for line in out.splitlines() if line.startswith("chroma $contains"))
    fts5 = next(line for line in out.splitlines() if line.startswith("sqlite fts5"))
    assert chroma.split()[-2] == "no" and fts5.split()[-2] == "yes"  # only FTS5 ranks
    assert float(fts5.split()[-1]) > 0  # the queries are words of the corpus: they find something
    assert "3 buckets" in out
