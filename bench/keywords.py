"""Keyword search over text memories: Chroma's own full-text filter against SQLite FTS5 (sinks/memory/keywords.py).

    .venv/bin/python -m bench.keywords                   # 100k text blocks over 30 days (1-day buckets)
    .venv/bin/python -m bench.keywords --n 20000 --queries 30

It makes N synthetic screen-text blocks (invoices, mails, chat, terminal errors, documents: 8-40 words, with
numbers, names and accented words), spread over --days, and writes them (a) through sinks.memory's bucketed
store with the words as Chroma documents and random 384-d vectors, as the memory writer does, and (b)
into the FTS5 keyword index. Then it times the same queries on both: Chroma answers with
`get(where_document={"$contains": word})` on every bucket (an `$and` of `$contains` for two words; exact,
case-sensitive substrings, in insertion order: no ranking), FTS5 with the index's bm25-ranked MATCH (case
and accents folded). Insert rates: Chroma's includes its vector index (it cannot store documents without
vectors), so it is also shown without documents (--baseline) to isolate what the words cost it.
Measures, never asserts; numbers are from whatever machine runs it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from sinks.memory.keywords import Keywords, Row
from sinks.memory.spool import Record
from sinks.memory.store import BucketStore

SPACE = "minilm-l6/384"
NAMES = ["Müller", "Schmidt", "García", "Dubois", "Nowak", "Rossi", "Jensen", "Okafor", "Tanaka", "Lefèvre", "Öztürk"]
FIRST = ["Anna", "Jörg", "Chloé", "Mateo", "Priya", "Lars", "Zoë", "Tomás", "Mei", "Sven", "Amélie", "Kofi"]
COMPANIES = ["GmbH", "AG", "Ltd", "S.A.", "Inc", "SARL", "Oy", "B.V."]
THINGS = [
    "garden furniture", "office chairs", "cloud hosting", "consulting hours", "laptop repair", "train tickets",
    "conference booth", "software licences", "printer toner", "catering", "translation", "legal advice",
]  # fmt: skip
TOPICS = [
    "the Q3 numbers", "the release plan", "onboarding", "the budget review", "the security audit", "hiring",
    "the roadmap", "customer churn", "the migration", "pricing", "the quarterly report", "the offsite",
]  # fmt: skip
ERRORS = [
    "certificate has expired", "connection refused", "permission denied", "no such file or directory",
    "segmentation fault", "out of memory", "timeout waiting for lock", "invalid token", "disk quota exceeded",
]  # fmt: skip
FILES = ["main.py", "server.go", "index.ts", "Makefile", "config.yaml", "lib.rs", "app.js", "schema.sql"]
FILLER = (
    "please find attached the details we discussed yesterday and let me know if anything is missing "
    "thanks again for your help with this we will follow up next week after the meeting with the team "
    "the document was updated with the latest figures and comments from everyone involved in the review"
).split()


def block(rng: np.random.Generator, i: int) -> str:
    """One screen-text block, as OCR would read it from a window."""

    def pick(xs: list[str]) -> str:
        return xs[int(rng.integers(len(xs)))]

    name, first = pick(NAMES), pick(FIRST)
    n = int(rng.integers(1000, 99999))
    filler = " ".join(pick(FILLER) for _ in range(int(rng.integers(3, 20))))
    kind = i % 6
    if kind == 0:
        total = f"{rng.integers(10, 9999)}.{rng.integers(10, 99)}"
        due = rng.integers(7, 60)
        return (
            f"Invoice #{n} {name} {pick(COMPANIES)} for {pick(THINGS)}, total {total} EUR, due in {due} days. {filler}"
        )
    if kind == 1:
        return f"From: {first} {name} Subject: {pick(TOPICS)} Hi, {filler}"
    if kind == 2:
        return f"{first}: are we still on for {pick(TOPICS)} at {rng.integers(8, 18)}:{rng.integers(10, 59)}? {filler}"
    if kind == 3:
        return f"error: {pick(ERRORS)} at {pick(FILES)}:{rng.integers(1, 999)} (exit code {rng.integers(1, 255)})"
    if kind == 4:
        return f"Ticket {n} assigned to {first} {name}: {pick(ERRORS)} when {filler}"
    return f"{pick(TOPICS).capitalize()} — notes by {first} {name}. {filler}"


def queries(rng: np.random.Generator, texts: list[str], count: int) -> list[tuple[str, list[str]]]:
    """(FTS5 query, Chroma $contains terms): a rare number, a name, a common word, two words."""
    out: list[tuple[str, list[str]]] = []
    kinds = ["number", "name", "common", "two words"]
    for j in range(count):
        t = texts[int(rng.integers(len(texts)))]
        words = [w.strip(".,:?#()") for w in t.split()]
        words = [w for w in words if len(w) >= 4 and w.isalnum()]
        kind = kinds[j % len(kinds)]
        if kind == "number" and (nums := [w for w in words if w.isdigit()]):
            out.append((nums[0], [nums[0]]))
        elif kind == "name":
            name = NAMES[int(rng.integers(len(NAMES)))]
            out.append((name, [name]))
        elif kind == "common":
            w = FILLER[int(rng.integers(len(FILLER)))]
            out.append((w, [w]))
        elif len(words) >= 2:
            out.append((f"{words[0]} {words[-1]}", [words[0], words[-1]]))
        else:
            out.append((words[0], [words[0]]))
    return out


def contains(terms: list[str]) -> dict:
    conds = [{"$contains": t} for t in terms]
    return conds[0] if len(conds) == 1 else {"$and": conds}


def ms(samples: list[float], q: float) -> float:
    return float(np.percentile(samples, q)) * 1e3


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.keywords", description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000, help="text blocks")
    p.add_argument("--days", type=float, default=30.0)
    p.add_argument("--batch", type=int, default=1000, help="rows per write")
    p.add_argument("--queries", type=int, default=60)
    p.add_argument("--k", type=int, default=50, help="results wanted (the query's RRF depth)")
    p.add_argument("--baseline", action="store_true", help="also time Chroma's insert without documents")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    texts = [block(rng, i) for i in range(args.n)]
    end = time.time()
    ts = end - args.days * 86400 + (np.arange(args.n) + 0.5) * args.days * 86400 / args.n
    ids = [f"screen0#text-{round(t * 1e9)}" for t in ts]
    words = sum(len(t.split()) for t in texts) / args.n
    print(f"{args.n} text blocks ({words:.0f} words each on average) over {args.days:g} days, 1-day buckets")
    with tempfile.TemporaryDirectory(prefix="bench-keywords-") as tmp:
        root = Path(tmp)
        store = BucketStore(root / "chroma", "", 86400)
        kw = Keywords(root / "keywords")
        took = {"chroma": 0.0, "fts5": 0.0, "chroma, no documents": 0.0}
        base = BucketStore(root / "chroma-base", "", 86400) if args.baseline else None
        for i in range(0, args.n, args.batch):
            sl = slice(i, min(i + args.batch, args.n))
            vecs = rng.standard_normal((sl.stop - sl.start, 384)).astype(np.float32)
            vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
            metas = [
                {"ts": float(t), "source": "screen0", "modality": "text", "labels": "", "thumb": ""} for t in ts[sl]
            ]
            rec = Record(SPACE, ids[sl], vecs, metas, texts[sl])
            t0 = time.perf_counter()
            for part in store.split(rec):
                store.upsert(part)
            t1 = time.perf_counter()
            rows = zip(ids[sl], ts[sl], texts[sl], strict=True)
            kw.add(Row(id_, float(t), "screen0", "text", SPACE, x) for id_, t, x in rows)
            t2 = time.perf_counter()
            took["chroma"] += t1 - t0
            took["fts5"] += t2 - t1
            if base is not None:
                t3 = time.perf_counter()
                for part in base.split(Record(SPACE, ids[sl], vecs, metas)):
                    base.upsert(part)
                took["chroma, no documents"] += time.perf_counter() - t3
        cols = [store._col(b) for b in store.buckets(SPACE)]
        asked = queries(rng, texts, args.queries + 4)
        times: dict[str, list[float]] = {"chroma": [], "fts5": []}
        found: dict[str, list[int]] = {"chroma": [], "fts5": []}
        for j, (text, terms) in enumerate(asked):
            t0 = time.perf_counter()
            n_chroma = 0
            for col in cols:  # every bucket: $contains cannot skip one
                n_chroma += len(col.get(where_document=contains(terms), limit=args.k - n_chroma, include=[])["ids"])
                if n_chroma >= args.k:
                    break
            t1 = time.perf_counter()
            hits = kw.search(text, args.k)
            t2 = time.perf_counter()
            if j >= 4:  # the first ones warm caches
                times["chroma"].append(t1 - t0)
                times["fts5"].append(t2 - t1)
                found["chroma"].append(n_chroma)
                found["fts5"].append(len(hits))
        disk = sum(f.stat().st_size for f in (root / "keywords").iterdir())
        print(f"\n{'':<22}{'query p50':>10}{'p95':>8}  {'insert rows/s':>14}  {'ranks':<6} found (mean of k={args.k})")
        rate = args.n / took["chroma"]
        print(
            f"{'chroma $contains':<22}{ms(times['chroma'], 50):>10.1f}{ms(times['chroma'], 95):>8.1f}"
            f"  {rate:>14,.0f}  {'no':<6} {np.mean(found['chroma']):.1f}"
        )
        rate = args.n / took["fts5"]
        print(
            f"{'sqlite fts5 (bm25)':<22}{ms(times['fts5'], 50):>10.1f}{ms(times['fts5'], 95):>8.1f}"
            f"  {rate:>14,.0f}  {'yes':<6} {np.mean(found['fts5']):.1f}"
        )
        if base is not None:
            print(f"chroma without documents: {args.n / took['chroma, no documents']:,.0f} rows/s")
        print(f"({len(cols)} buckets; {args.queries} queries; ms; FTS5 index on disk {disk / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
