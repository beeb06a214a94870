"""Query latency of bucketed memory vs one big collection with a ts filter, and batched ingest rate.

    .venv/bin/python -m bench.query                      # 10k, 100k, 300k rows (the last takes a while)
    .venv/bin/python -m bench.query --sizes 10000 --dim 1280

For each size N it inserts N random unit vectors with ts spread evenly over --days into (a) sinks.memory's
bucketed store (one collection per space and day, the daemon's write path) and (b) one embedded Chroma
collection, then times top-10 queries: unfiltered, a 1-hour window and a 1-day window at random places
(the big collection answers windows with a `ts` $gte/$lte filter). The buckets' row indexes are read
first with BucketStore.warm, as the store should do at start, and that read is reported on its own: a
bucket's first windowed query would otherwise pay it (~35 ms per 10k rows). Measures, never asserts.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import chromadb
import numpy as np
from chromadb.config import Settings

from sinks.memory import Memory
from sinks.memory.spool import Record

SPACE = "bench/{dim}"
WINDOWS = {"unfiltered": None, "1h window": 3600, "1d window": 86400}


def where(since: float | None, until: float | None) -> dict | None:
    """The one big collection's time filter (what sinks.memory avoids)."""
    conds = [c for c in ({"ts": {"$gte": since}} if since else None, {"ts": {"$lte": until}} if until else None) if c]
    return None if not conds else conds[0] if len(conds) == 1 else {"$and": conds}


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def pct(ms: list[float], q: float) -> float:
    return float(np.percentile(ms, q))


def ingest(n: int, dim: int, days: float, batch: int, root: Path, seed: int) -> tuple[Memory, object, dict]:
    rng = np.random.default_rng(seed)
    end = time.time()
    start = end - days * 86400
    mem = Memory(root / "bucketed", batch, 1.0, False, 8, 16)
    single = chromadb.PersistentClient(path=str(root / "single"), settings=Settings(anonymized_telemetry=False))
    col = single.get_or_create_collection(
        "all", embedding_function=None, configuration={"hnsw": {"space": "cosine"}}, metadata={"space": "bench"}
    )
    space = SPACE.format(dim=dim)
    took = {"bucketed": 0.0, "single": 0.0}
    for i in range(0, n, batch):
        m = min(batch, n - i)
        vecs = unit_rows(rng, m, dim)
        ts = start + (np.arange(i, i + m) + rng.random(m)) * (end - start) / n  # in time order, as captured
        ids = [f"bench-{round(t * 1e9)}" for t in ts]
        metas = [{"ts": float(t), "source": "bench", "modality": "image", "labels": "", "thumb": ""} for t in ts]
        t0 = time.perf_counter()
        for part in mem.store.split(Record(space, ids, vecs, metas)):  # the writer thread's path
            mem.store.upsert(part)
        t1 = time.perf_counter()
        col.upsert(ids=ids, embeddings=vecs, metadatas=metas)
        t2 = time.perf_counter()
        took["bucketed"] += t1 - t0
        took["single"] += t2 - t1
    rates = {k: n / v for k, v in took.items()}
    t0 = time.perf_counter()
    mem.store.warm(space)
    warm_s = time.perf_counter() - t0
    return mem, col, {"start": start, "end": end, "rates": rates, "space": space, "warm_s": warm_s}


def time_queries(mem: Memory, col, info: dict, dim: int, queries: int, seed: int) -> dict[tuple[str, str], list]:
    rng = np.random.default_rng(seed + 1)
    out: dict[tuple[str, str], list[float]] = {}
    for name, width in WINDOWS.items():
        for store in ("bucketed", "single"):
            out[(name, store)] = []
        for j in range(queries + 3):  # the first 3 warm caches and are not counted
            q = unit_rows(rng, 1, dim)[0]
            since = until = None
            if width is not None:
                since = float(rng.uniform(info["start"], info["end"] - width))
                until = since + width
            t0 = time.perf_counter()
            mem.search(info["space"], q, 10, since=since, until=until)
            t1 = time.perf_counter()
            col.query(query_embeddings=q[np.newaxis], n_results=10, where=where(since, until))
            t2 = time.perf_counter()
            if j >= 3:
                out[(name, "bucketed")].append((t1 - t0) * 1e3)
                out[(name, "single")].append((t2 - t1) * 1e3)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.query", description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10000,100000,300000", help="comma-separated row counts")
    p.add_argument("--dim", type=int, default=384, help="vector length (384 MiniLM, 1280 EfficientNet)")
    p.add_argument("--days", type=float, default=30.0, help="time span the rows are spread over")
    p.add_argument("--batch", type=int, default=1000, help="rows per write")
    p.add_argument("--queries", type=int, default=50, help="timed queries per kind")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    print(f"dim {args.dim}, ts over {args.days:g} days, 1-day buckets, top-10, {args.queries} queries per cell")
    head = f"{'rows':>8}  {'query':<11} {'bucketed p50':>12} {'p95':>7}  {'single p50':>10} {'p95':>7}  (ms)"
    lines, ingest_lines = [head], []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-query-") as tmp:
            mem, col, info = ingest(n, args.dim, args.days, args.batch, Path(tmp), args.seed)
            times = time_queries(mem, col, info, args.dim, args.queries, args.seed)
            buckets = len(mem.store.buckets())
        for name in WINDOWS:
            b, s = times[(name, "bucketed")], times[(name, "single")]
            lines.append(
                f"{n:>8}  {name:<11} {pct(b, 50):>12.1f} {pct(b, 95):>7.1f}  {pct(s, 50):>10.1f} {pct(s, 95):>7.1f}"
            )
        r = info["rates"]
        ingest_lines.append(
            f"{n:>8} rows: bucketed {r['bucketed']:,.0f} rows/s ({buckets} buckets), "
            f"single {r['single']:,.0f} rows/s (batches of {args.batch}); "
            f"row indexes read in {info['warm_s'] * 1e3:,.0f} ms"
        )
        print(f"{n} rows done", flush=True)
    print("\n".join(["", *lines, "", "ingest", *ingest_lines]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
